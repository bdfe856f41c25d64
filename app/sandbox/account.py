"""The sandbox's business account: the number's limits and health, the token, the webhook
subscription and the templates, served as Meta's Graph API serves them.

Every field can be changed at run time (`POST /sandbox/account`, or the events of
`app.sandbox.events`), so that each pre-flight check can be made to fail on purpose. Answers
are checked against Meta's spec where it has a schema (tests/sandbox).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, fields
from typing import Any

from app.messaging.health import REQUIRED_PERMISSIONS, WEBHOOK_FIELDS
from app.messaging.tiers import HIGH_THROUGHPUT, HIGH_THROUGHPUT_LEVEL, tier_word
from app.sandbox.identity import SANDBOX_DISPLAY_NUMBER

SANDBOX_APP_ID = "100000000000003"
# What a submitted template becomes after review: APPROVED, REJECTED, or MARKETING (approved,
# but as a marketing template, as Meta does with a "utility" it judges promotional).
REVIEW_OUTCOMES = ("APPROVED", "REJECTED", "MARKETING")


@dataclass
class SandboxTemplate:
    """A template submitted to the sandbox."""

    template_id: str
    name: str
    language: str
    category: str
    status: str
    body: str
    components: list[dict[str, Any]]
    ttl_seconds: int | None
    quality: str = "UNKNOWN"

    def listing(self) -> dict[str, Any]:
        """As GET /{WABA-ID}/message_templates lists it."""
        return {
            "id": self.template_id,
            "name": self.name,
            "language": self.language,
            "category": self.category,
            "status": self.status,
            "components": self.components,
        }


@dataclass
class SandboxAccount:
    """The account as the sandbox plays it; defaults are a healthy new portfolio."""

    messaging_limit: int = 250  # unique people per moving 24 h; 0 = unlimited
    throughput_per_second: int = 80
    quality_rating: str = "GREEN"
    name_status: str = "APPROVED"
    registration_status: str = "CONNECTED"
    code_verification_status: str = "VERIFIED"
    verified_name: str = "Pengingat SPI (sandbox)"
    coexistence: bool = False
    token_valid: bool = True
    permissions: list[str] = field(default_factory=lambda: list(REQUIRED_PERMISSIONS))
    subscribed: bool = True
    webhook_fields: list[str] = field(default_factory=lambda: list(WEBHOOK_FIELDS))
    callback_url: str | None = None
    template_review: str = "APPROVED"
    review_delay_seconds: float = 1.0
    templates: dict[tuple[str, str], SandboxTemplate] = field(default_factory=dict)

    @property
    def tier(self) -> str:
        """The messaging limit as Meta's tier word."""
        return tier_word(self.messaging_limit if self.messaging_limit > 0 else -1) or "TIER_250"

    @property
    def throughput_level(self) -> str:
        return (
            HIGH_THROUGHPUT_LEVEL if self.throughput_per_second >= HIGH_THROUGHPUT else "STANDARD"
        )

    def update(self, changes: dict[str, Any]) -> None:
        """Apply known fields from a JSON object; unknown or wrongly typed ones raise ValueError."""
        known = {f.name: f for f in fields(self) if f.name != "templates"}
        for key, value in changes.items():
            current = getattr(self, key) if key in known else None
            if key not in known:
                raise ValueError(f"unknown account field {key!r}")
            if isinstance(current, bool) and not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false")
            if isinstance(current, list) and not (
                isinstance(value, list) and all(isinstance(v, str) for v in value)
            ):
                raise ValueError(f"{key} must be a list of strings")
            if isinstance(current, int | float) and not isinstance(current, bool):
                value = type(current)(value)
            if key == "template_review" and value not in REVIEW_OUTCOMES:
                raise ValueError(f"template_review must be one of {REVIEW_OUTCOMES}")
            setattr(self, key, value)

    def public(self) -> dict[str, Any]:
        """The settable fields and their values (templates listed by name)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "templates"}
        data["templates"] = [t.listing() for t in self.templates.values()]
        return data

    # --- Graph answers ------------------------------------------------------------------

    def phone_number(self, phone_number_id: str) -> dict[str, Any]:
        """GET /{phone-number-id}?fields=…: Meta's PhoneNumberInfo plus the limit fields."""
        return {
            "id": phone_number_id,
            "display_phone_number": SANDBOX_DISPLAY_NUMBER,
            "verified_name": self.verified_name,
            "quality_rating": self.quality_rating,
            "name_status": self.name_status,
            "code_verification_status": self.code_verification_status,
            "status": self.registration_status,
            "platform_type": "CLOUD_API",
            "is_on_biz_app": self.coexistence,
            "throughput": {"level": self.throughput_level},
            "whatsapp_business_manager_messaging_limit": self.tier,
        }

    def permissions_answer(self) -> dict[str, Any]:
        """GET /me/permissions."""
        return {"data": [{"permission": p, "status": "granted"} for p in self.permissions]}

    def subscribed_apps(self) -> dict[str, Any]:
        """GET /{WABA-ID}/subscribed_apps, in the nested shape of Meta's examples."""
        if not self.subscribed:
            return {"data": []}
        app = {"id": SANDBOX_APP_ID, "name": "Pengingat SPI (sandbox)", "link": "http://localhost"}
        return {"data": [{"whatsapp_business_api_data": app}]}

    def app_subscriptions(self) -> dict[str, Any]:
        """GET /{App-ID}/subscriptions."""
        return {
            "data": [
                {
                    "object": "whatsapp_business_account",
                    "callback_url": self.callback_url or "",
                    "active": self.subscribed,
                    "fields": [{"name": name, "version": "v23.0"} for name in self.webhook_fields],
                }
            ]
        }

    def submit(self, body: dict[str, Any]) -> SandboxTemplate:
        """Register a validated submission as PENDING (or MARKETING when review says so)."""
        body_text = next(
            (str(c.get("text", "")) for c in body["components"] if c.get("type") == "BODY"), ""
        )
        category = "MARKETING" if self.template_review == "MARKETING" else body["category"]
        template = SandboxTemplate(
            template_id=str(10**14 + secrets.randbelow(10**14)),
            name=body["name"],
            language=body["language"],
            category=category,
            status="PENDING",
            body=body_text,
            components=body["components"],
            ttl_seconds=body.get("message_send_ttl_seconds"),
        )
        self.templates[(template.name, template.language)] = template
        return template

    def template_named(self, name: str, language: str) -> SandboxTemplate:
        """A submitted template, or a stand-in for one the service registered by hand."""
        found = self.templates.get((name, language))
        if found is not None:
            return found
        # Stable per name, so repeated events about a hand-registered template agree.
        stand_in = str(10**14 + int.from_bytes(f"{name}/{language}".encode()[:6], "big"))
        return SandboxTemplate(stand_in, name, language, "UTILITY", "APPROVED", "", [], None)
