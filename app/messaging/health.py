"""What the Graph API says about the sender's account, read into small typed values.

Every reader is defensive like the webhook's: a field Meta leaves out or shapes differently
reads as None, so a changed answer degrades a check instead of failing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.messaging.tiers import throughput_of, tier_word
from app.messaging.values import graph_id, sub, text_id

# What GET /{phone-number-id} is asked for: the messaging limit, throughput and quality the
# sender plans with, and the registration, name and coexistence facts the pre-flight checks.
PHONE_FIELDS = (
    "whatsapp_business_manager_messaging_limit",
    "messaging_limit_tier",
    "throughput",
    "quality_rating",
    "name_status",
    "code_verification_status",
    "verified_name",
    "status",
    "platform_type",
    "is_on_biz_app",
)
# Permissions a token needs to send (messaging) and to read and manage the account and its
# templates (management).
REQUIRED_PERMISSIONS = ("whatsapp_business_messaging", "whatsapp_business_management")
# Webhook fields the service acts on.
WEBHOOK_FIELDS = (
    "messages",
    "message_template_status_update",
    "template_category_update",
    "message_template_quality_update",
    "phone_number_quality_update",
    "account_update",
    "business_capability_update",
)


@dataclass(frozen=True, slots=True)
class PhoneHealth:
    """The business number as Meta describes it now."""

    messaging_limit_tier: str | None  # TIER_250 … TIER_UNLIMITED
    throughput_level: str | None  # STANDARD, HIGH, NOT_APPLICABLE
    quality_rating: str | None  # GREEN, YELLOW, RED, NA
    name_status: str | None  # APPROVED, AVAILABLE_WITHOUT_REVIEW, DECLINED, EXPIRED …
    code_verification_status: str | None  # VERIFIED, UNVERIFIED
    verified_name: str | None  # the business's display name
    registration_status: str | None  # CONNECTED, PENDING, DISCONNECTED, MIGRATED …
    platform_type: str | None  # CLOUD_API, ON_PREMISE, NOT_APPLICABLE
    coexistence: bool  # also used in the WhatsApp Business app

    @property
    def throughput_per_second(self) -> int:
        """Messages per second this number may send."""
        return throughput_of(self.throughput_level, coexistence=self.coexistence)


@dataclass(frozen=True, slots=True)
class Permissions:
    """Which permissions the token's user granted (GET /me/permissions)."""

    granted: frozenset[str]
    declined: frozenset[str]

    @property
    def missing(self) -> tuple[str, ...]:
        """Required permissions not granted, in a stable order."""
        return tuple(p for p in REQUIRED_PERMISSIONS if p not in self.granted)


@dataclass(frozen=True, slots=True)
class AppSubscription:
    """The app's webhook subscription for WhatsApp Business Accounts."""

    callback_url: str | None
    active: bool
    fields: frozenset[str]

    @property
    def missing_fields(self) -> tuple[str, ...]:
        """Webhook fields the service acts on that the app is not subscribed to."""
        return tuple(f for f in WEBHOOK_FIELDS if f not in self.fields)


@dataclass(frozen=True, slots=True)
class TemplateCreated:
    """Meta's answer to a template submission."""

    template_id: str | None
    status: str | None  # PENDING, APPROVED, REJECTED
    category: str | None  # may differ from the one asked for (UTILITY judged MARKETING)


def _limit_word(item: Mapping[str, Any]) -> str | None:
    current = item.get("whatsapp_business_manager_messaging_limit")
    if isinstance(current, Mapping):
        # Reported both as a bare tier word and wrapped in an object.
        current = current.get("current_limit") or current.get("messaging_limit")
    return tier_word(current) or tier_word(item.get("messaging_limit_tier"))


def read_phone_health(item: Any) -> PhoneHealth:
    """GET /{phone-number-id}?fields=PHONE_FIELDS, read."""
    if not isinstance(item, Mapping):
        item = {}
    on_app = item.get("is_on_biz_app")
    return PhoneHealth(
        messaging_limit_tier=_limit_word(item),
        throughput_level=text_id(sub(item, "throughput").get("level")),
        quality_rating=text_id(item.get("quality_rating")),
        name_status=text_id(item.get("name_status")),
        code_verification_status=text_id(item.get("code_verification_status")),
        verified_name=text_id(item.get("verified_name")),
        registration_status=text_id(item.get("status")),
        platform_type=text_id(item.get("platform_type")),
        coexistence=on_app is True,
    )


def read_permissions(payload: Any) -> Permissions:
    """GET /me/permissions: {"data": [{"permission": …, "status": "granted"|"declined"}]}."""
    granted: set[str] = set()
    declined: set[str] = set()
    data = payload.get("data") if isinstance(payload, Mapping) else None
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, Mapping) or not (name := text_id(item.get("permission"))):
            continue
        (granted if item.get("status") == "granted" else declined).add(name)
    return Permissions(granted=frozenset(granted), declined=frozenset(declined))


def read_subscribed_app_ids(payload: Any) -> list[str]:
    """GET /{WABA-ID}/subscribed_apps: the ids of the apps receiving the WABA's webhooks."""
    ids: list[str] = []
    data = payload.get("data") if isinstance(payload, Mapping) else None
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, Mapping):
            continue
        # Meta's examples nest the app under whatsapp_business_api_data; its schema does not.
        app_id = graph_id(sub(item, "whatsapp_business_api_data").get("id")) or graph_id(
            item.get("id")
        )
        if app_id is not None:
            ids.append(app_id)
    return ids


def read_app_subscription(payload: Any) -> AppSubscription | None:
    """GET /{App-ID}/subscriptions: the entry for object whatsapp_business_account, if any."""
    data = payload.get("data") if isinstance(payload, Mapping) else None
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, Mapping) or item.get("object") != "whatsapp_business_account":
            continue
        fields = item.get("fields")
        names = {
            name
            for f in (fields if isinstance(fields, list) else [])
            if (name := text_id(f.get("name") if isinstance(f, Mapping) else f))
        }
        callback = item.get("callback_url")
        return AppSubscription(
            callback_url=callback if isinstance(callback, str) and callback else None,
            active=item.get("active") is True,
            fields=frozenset(names),
        )
    return None


def read_template_created(payload: Any) -> TemplateCreated:
    """POST /{WABA-ID}/message_templates: {"id", "status", "category"}."""
    item = payload if isinstance(payload, Mapping) else {}
    return TemplateCreated(
        template_id=graph_id(item.get("id")),
        status=text_id(item.get("status")),
        category=text_id(item.get("category")),
    )
