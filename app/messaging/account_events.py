"""Template, phone-number and account notices from Meta's webhook, as small typed events.

Meta sends these on their own `field` of the envelope (one notice per change). Every value
is optional here: a notice with an unexpected shape still parses, with None where a value
could not be read, so a new Meta field never fails a webhook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.messaging.tiers import tier_word
from app.messaging.values import graph_id, integer, sub, text_id, timestamp


@dataclass(frozen=True, slots=True)
class TemplateRef:
    """Which template a notice is about, as Meta names it."""

    template_id: str | None
    name: str | None
    language: str | None


@dataclass(frozen=True, slots=True)
class TemplateStatusUpdate:
    """A template was approved, rejected, paused, disabled … (`message_template_status_update`)."""

    template: TemplateRef
    event: str | None  # APPROVED, REJECTED, PENDING, PAUSED, DISABLED, IN_APPEAL, FLAGGED …
    reason: str | None  # e.g. NONE, INVALID_FORMAT, INCORRECT_CATEGORY
    at: datetime | None = None  # when Meta sent the notice (the envelope's entry.time)


@dataclass(frozen=True, slots=True)
class TemplateCategoryUpdate:
    """Meta moved (or will move in a day) a template to another category, which changes its
    price and its marketing opt-out rules (`template_category_update`)."""

    template: TemplateRef
    previous_category: str | None  # set once the change is done
    new_category: str | None
    correct_category: str | None  # set when the change is announced, 24 h ahead
    takes_effect_at: datetime | None
    at: datetime | None = None  # when Meta sent the notice (the envelope's entry.time)


@dataclass(frozen=True, slots=True)
class TemplateQualityUpdate:
    """A template's quality score changed (`message_template_quality_update`)."""

    template: TemplateRef
    previous_score: str | None  # GREEN, YELLOW, RED, UNKNOWN
    new_score: str | None
    at: datetime | None = None  # when Meta sent the notice (the envelope's entry.time)


@dataclass(frozen=True, slots=True)
class PhoneQualityUpdate:
    """The business number's quality or messaging limit changed (`phone_number_quality_update`)."""

    event: str | None  # FLAGGED, UNFLAGGED, DOWNGRADE, UPGRADE, THROUGHPUT_UPGRADE, ONBOARDING
    current_limit: str | None  # TIER_250, TIER_2K, TIER_10K, TIER_100K, TIER_UNLIMITED …
    old_limit: str | None
    business_limit: str | None  # the portfolio's cap, replacing current_limit from 2026
    at: datetime | None = None  # when Meta sent the notice (the envelope's entry.time)


@dataclass(frozen=True, slots=True)
class AccountUpdate:
    """The business account was restricted, banned, reinstated … (`account_update`)."""

    event: str | None  # ACCOUNT_VIOLATION, ACCOUNT_RESTRICTION, DISABLED_UPDATE, VERIFIED_ACCOUNT …
    ban_state: str | None  # SCHEDULE_FOR_DISABLE, DISABLE, REINSTATE
    violation: str | None
    restrictions: tuple[str, ...]  # e.g. RESTRICTED_BIZ_INITIATED_MESSAGING
    at: datetime | None = None  # when Meta sent the notice (the envelope's entry.time)


@dataclass(frozen=True, slots=True)
class CapabilityUpdate:
    """The business's sending capacity changed (`business_capability_update`)."""

    daily_limit_per_phone: int | None
    max_phone_numbers: int | None
    business_limit: str | None  # e.g. TIER_2K, for the whole portfolio
    at: datetime | None = None  # when Meta sent the notice (the envelope's entry.time)


AccountEvent = (
    TemplateStatusUpdate
    | TemplateCategoryUpdate
    | TemplateQualityUpdate
    | PhoneQualityUpdate
    | AccountUpdate
    | CapabilityUpdate
)


def _template(value: Mapping[str, Any]) -> TemplateRef:
    return TemplateRef(
        template_id=graph_id(value.get("message_template_id")),
        name=text_id(value.get("message_template_name")),
        language=text_id(value.get("message_template_language")),
    )


def _template_status(value: Mapping[str, Any], at: datetime | None) -> TemplateStatusUpdate:
    return TemplateStatusUpdate(
        template=_template(value),
        event=text_id(value.get("event")),
        reason=text_id(value.get("reason")),
        at=at,
    )


def _template_category(value: Mapping[str, Any], at: datetime | None) -> TemplateCategoryUpdate:
    return TemplateCategoryUpdate(
        template=_template(value),
        previous_category=text_id(value.get("previous_category")),
        new_category=text_id(value.get("new_category")),
        correct_category=text_id(value.get("correct_category")),
        takes_effect_at=timestamp(value.get("category_update_timestamp")),
        at=at,
    )


def _template_quality(value: Mapping[str, Any], at: datetime | None) -> TemplateQualityUpdate:
    return TemplateQualityUpdate(
        template=_template(value),
        previous_score=text_id(value.get("previous_quality_score")),
        new_score=text_id(value.get("new_quality_score")),
        at=at,
    )


def _phone_quality(value: Mapping[str, Any], at: datetime | None) -> PhoneQualityUpdate:
    return PhoneQualityUpdate(
        event=text_id(value.get("event")),
        current_limit=tier_word(value.get("current_limit")),
        old_limit=tier_word(value.get("old_limit")),
        business_limit=tier_word(value.get("max_daily_conversations_per_business")),
        at=at,
    )


def _one_word(value: Any) -> str | None:
    # Meta's reference shows the ban state both as a string and as a one-item list.
    if isinstance(value, list):
        value = value[0] if value else None
    return text_id(value)


def _account(value: Mapping[str, Any], at: datetime | None) -> AccountUpdate:
    restrictions = value.get("restriction_info")
    return AccountUpdate(
        event=text_id(value.get("event")),
        ban_state=_one_word(sub(value, "ban_info").get("waba_ban_state")),
        violation=text_id(sub(value, "violation_info").get("violation_type")),
        restrictions=tuple(
            kind
            for item in (restrictions if isinstance(restrictions, list) else [])
            if isinstance(item, Mapping) and (kind := text_id(item.get("restriction_type")))
        ),
        at=at,
    )


def _capability(value: Mapping[str, Any], at: datetime | None) -> CapabilityUpdate:
    per_phone = value.get("max_daily_conversation_per_phone")
    return CapabilityUpdate(
        daily_limit_per_phone=-1 if per_phone in (-1, "-1") else integer(per_phone),
        max_phone_numbers=integer(value.get("max_phone_numbers_per_business")),
        # A number here (2000, or -1 for unlimited) in Meta's examples, a tier word elsewhere.
        business_limit=tier_word(value.get("max_daily_conversations_per_business"))
        or tier_word(per_phone),
        at=at,
    )


_READERS: dict[str, Callable[[Mapping[str, Any], datetime | None], AccountEvent]] = {
    "message_template_status_update": _template_status,
    "template_category_update": _template_category,
    "message_template_quality_update": _template_quality,
    "phone_number_quality_update": _phone_quality,
    "account_update": _account,
    "business_capability_update": _capability,
}


def read(
    field_name: Any, value: Mapping[str, Any], *, at: datetime | None = None
) -> AccountEvent | None:
    """The notice carried by one change of the envelope; None for fields not read here.

    `at` is the envelope's `entry.time`: notices carry no time of their own, and it is what
    orders a late or replayed notice against a newer one.
    """
    reader = _READERS.get(field_name) if isinstance(field_name, str) else None
    return reader(value, at) if reader is not None else None
