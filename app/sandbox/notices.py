"""Account, number and template notices shaped as Meta's webhook reference shows them.

Meta's OpenAPI spec has no schema for these fields (its `Change.field` knows only messages and
groups), so the shapes follow the webhook reference pages (docs/whatsapp-cloud-api.md §9) and
are pinned by the parser (`app.messaging.account_events`) reading them back.
"""

from __future__ import annotations

import time
from typing import Any

from app.sandbox.identity import SANDBOX_DISPLAY_NUMBER, SANDBOX_WABA_ID


def envelope(
    field: str, value: dict[str, Any], *, waba_id: str = SANDBOX_WABA_ID, at: int | None = None
) -> dict[str, Any]:
    """One webhook body with one change; `at` is entry.time (Unix seconds, default now)."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": waba_id,
                "time": int(time.time()) if at is None else at,
                "changes": [{"value": value, "field": field}],
            }
        ],
    }


def _template(template_id: str, name: str, language: str) -> dict[str, Any]:
    return {
        "message_template_id": int(template_id) if template_id.isdigit() else template_id,
        "message_template_name": name,
        "message_template_language": language,
    }


def template_status(
    *, template_id: str, name: str, language: str, event: str, reason: str = "NONE"
) -> tuple[str, dict[str, Any]]:
    """message_template_status_update: APPROVED, REJECTED, PAUSED, DISABLED, FLAGGED …"""
    value = {"event": event, **_template(template_id, name, language), "reason": reason}
    return "message_template_status_update", value


def template_category(
    *, template_id: str, name: str, language: str, previous: str, new: str
) -> tuple[str, dict[str, Any]]:
    """template_category_update once Meta has moved the template."""
    value = {**_template(template_id, name, language)}
    value |= {"previous_category": previous, "new_category": new}
    return "template_category_update", value


def template_category_announced(
    *, template_id: str, name: str, language: str, current: str, correct: str, effective_at: int
) -> tuple[str, dict[str, Any]]:
    """template_category_update a day ahead: the category Meta will move the template to."""
    value = {**_template(template_id, name, language), "new_category": current}
    value |= {"correct_category": correct, "category_update_timestamp": effective_at}
    return "template_category_update", value


def template_quality(
    *, template_id: str, name: str, language: str, previous: str, new: str
) -> tuple[str, dict[str, Any]]:
    """message_template_quality_update: GREEN, YELLOW, RED, UNKNOWN."""
    value = {**_template(template_id, name, language)}
    value |= {"previous_quality_score": previous, "new_quality_score": new}
    return "message_template_quality_update", value


def phone_quality(
    *, event: str, current_limit: str, old_limit: str | None = None
) -> tuple[str, dict[str, Any]]:
    """phone_number_quality_update: FLAGGED, UNFLAGGED, DOWNGRADE, UPGRADE, THROUGHPUT_UPGRADE."""
    value: dict[str, Any] = {"display_phone_number": SANDBOX_DISPLAY_NUMBER, "event": event}
    if old_limit is not None:
        value["old_limit"] = old_limit
    value["current_limit"] = current_limit
    if event != "THROUGHPUT_UPGRADE":
        value["max_daily_conversations_per_business"] = current_limit
    return "phone_number_quality_update", value


def capability(*, people_per_day: int | None) -> tuple[str, dict[str, Any]]:
    """business_capability_update: the portfolio's messaging limit (-1 = unlimited)."""
    limit = -1 if people_per_day is None else people_per_day
    value = {"max_daily_conversations_per_business": limit, "max_phone_numbers_per_waba": 25}
    return "business_capability_update", value


def account_restriction(*, kinds: list[str], until: int | None = None) -> tuple[str, dict]:
    """account_update ACCOUNT_RESTRICTION (an empty list: the restriction ended)."""
    expiry = until if until is not None else int(time.time()) + 7 * 86400
    value = {
        "phone_number": SANDBOX_DISPLAY_NUMBER,
        "event": "ACCOUNT_RESTRICTION",
        "restriction_info": [{"restriction_type": k, "expiration": expiry} for k in kinds],
    }
    return "account_update", value


def account_ban(*, state: str) -> tuple[str, dict[str, Any]]:
    """account_update DISABLED_UPDATE: DISABLE, SCHEDULE_FOR_DISABLE or REINSTATE."""
    value = {"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": [state]}}
    return "account_update", value


def account_violation(*, kind: str) -> tuple[str, dict[str, Any]]:
    """account_update ACCOUNT_VIOLATION with its violation type."""
    return "account_update", {
        "event": "ACCOUNT_VIOLATION",
        "violation_info": {"violation_type": kind},
    }
