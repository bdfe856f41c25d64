"""messaging.inbound: Meta's webhook envelope read into typed events, text never kept."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import pytest

from app.messaging.account_events import (
    AccountUpdate,
    CapabilityUpdate,
    PhoneQualityUpdate,
    TemplateCategoryUpdate,
    TemplateQualityUpdate,
    TemplateRef,
    TemplateStatusUpdate,
)
from app.messaging.inbound import (
    BadPayload,
    Batch,
    InboundMessage,
    MessageKind,
    Pricing,
    parse_batch,
)

WABA_ID = "102290129340398"
# The envelope's entry.time (1764576000), which orders account notices.
SENT_AT = datetime(2025, 12, 1, 8, tzinfo=UTC)
TEMPLATE = TemplateRef(template_id="1234567890123", name="pengingat_spi", language="id")
TEXT = "Tolong berhenti kirim pesan ke saya"


def _count_words(*candidates: str | None) -> int:
    """A stand-in for the service's classifier: its result, never the text, is kept."""
    return sum(len(c.split()) for c in candidates if c)


def _envelope(field: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": WABA_ID, "time": 1764576000, "changes": [{"field": field, "value": value}]}
        ],
    }


def _parse(payload: Any) -> Batch[int]:
    batch = parse_batch(payload, classify=_count_words)
    assert batch is not None
    return batch


def _template_fields() -> dict[str, Any]:
    return {
        "message_template_id": 1234567890123,
        "message_template_name": "pengingat_spi",
        "message_template_language": "id",
    }


def _messages_value(**extra: Any) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001234", "phone_number_id": "100000000000001"},
        **extra,
    }


def test_a_text_message_keeps_the_classifiers_reading_and_never_the_text() -> None:
    batch = _parse(
        _envelope(
            "messages",
            _messages_value(
                contacts=[{"profile": {"name": "Budi"}, "wa_id": "6281234567890"}],
                messages=[
                    {
                        "from": "6281234567890",
                        "id": "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFjNFQjBCNjc",
                        "timestamp": "1764576000",
                        "type": "text",
                        "text": {"body": TEXT},
                    }
                ],
            ),
        )
    )
    [message] = batch.messages
    assert message == InboundMessage(
        message_id="wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFjNFQjBCNjc",
        sender_digits="6281234567890",
        kind=MessageKind.command,
        reading=6,
    )
    assert TEXT not in repr(batch)
    assert "Budi" not in repr(batch)
    assert "wa_id" not in {f.name for f in fields(InboundMessage)}


def test_a_status_carries_its_pricing_and_error_meaning() -> None:
    status = {
        "id": "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjQ4QzNGQjE",
        "status": "delivered",
        "timestamp": "1764576060",
        "recipient_id": "6281234567890",
        "biz_opaque_callback_data": "d-7f3a9c",
        "pricing": {
            "billable": True,
            "pricing_model": "PMP",
            "type": "regular",
            "category": "utility",
        },
    }
    [event] = _parse(_envelope("messages", _messages_value(statuses=[status]))).statuses
    assert event.pricing == Pricing(
        billable=True, category="utility", pricing_model="PMP", charge="regular"
    )
    assert event.callback == "d-7f3a9c"
    assert event.recipient == "6281234567890"
    assert event.at == datetime(2025, 12, 1, 8, 1, tzinfo=UTC)
    assert not event.meaning.not_on_whatsapp


def test_a_failed_status_without_pricing() -> None:
    status = {
        "id": "wamid.X",
        "status": "failed",
        "timestamp": "1764576060",
        "recipient_id": "6281234567890",
        "errors": [{"code": 131026, "title": "Message undeliverable"}],
    }
    [event] = _parse(_envelope("messages", _messages_value(statuses=[status]))).statuses
    assert event.pricing is None
    assert event.meaning.not_on_whatsapp


def test_template_status_update() -> None:
    value = {**_template_fields(), "event": "REJECTED", "reason": "INCORRECT_CATEGORY"}
    batch = _parse(_envelope("message_template_status_update", value))
    assert batch.account == [
        TemplateStatusUpdate(
            template=TEMPLATE, event="REJECTED", reason="INCORRECT_CATEGORY", at=SENT_AT
        )
    ]
    assert batch.messages == batch.statuses == batch.preferences == []
    assert batch.malformed == 0


def test_template_category_update_announced_and_done() -> None:
    announced = {
        **_template_fields(),
        "correct_category": "MARKETING",
        "new_category": "UTILITY",
        "category_update_timestamp": 1764662400,
    }
    done = {**_template_fields(), "previous_category": "UTILITY", "new_category": "MARKETING"}
    first = _parse(_envelope("template_category_update", announced)).account
    second = _parse(_envelope("template_category_update", done)).account
    assert first == [
        TemplateCategoryUpdate(
            template=TEMPLATE,
            previous_category=None,
            new_category="UTILITY",
            correct_category="MARKETING",
            takes_effect_at=datetime(2025, 12, 2, 8, tzinfo=UTC),
            at=SENT_AT,
        )
    ]
    assert second == [
        TemplateCategoryUpdate(
            template=TEMPLATE,
            previous_category="UTILITY",
            new_category="MARKETING",
            correct_category=None,
            takes_effect_at=None,
            at=SENT_AT,
        )
    ]


def test_template_quality_update() -> None:
    value = {**_template_fields(), "previous_quality_score": "GREEN", "new_quality_score": "YELLOW"}
    assert _parse(_envelope("message_template_quality_update", value)).account == [
        TemplateQualityUpdate(
            template=TEMPLATE, previous_score="GREEN", new_score="YELLOW", at=SENT_AT
        )
    ]


def test_phone_number_quality_update() -> None:
    value = {
        "display_phone_number": "15550001234",
        "event": "DOWNGRADE",
        "old_limit": "TIER_10K",
        "current_limit": "TIER_2K",
        "max_daily_conversations_per_business": "TIER_2K",
    }
    assert _parse(_envelope("phone_number_quality_update", value)).account == [
        PhoneQualityUpdate(
            event="DOWNGRADE",
            current_limit="TIER_2K",
            old_limit="TIER_10K",
            business_limit="TIER_2K",
            at=SENT_AT,
        )
    ]


@pytest.mark.parametrize("ban_state", ["DISABLE", ["DISABLE"]])
def test_account_update(ban_state: Any) -> None:
    restricted = {
        "phone_number": "15550001234",
        "event": "ACCOUNT_RESTRICTION",
        "restriction_info": [
            {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": 1765000000}
        ],
    }
    disabled = {
        "event": "DISABLED_UPDATE",
        "ban_info": {"waba_ban_state": ban_state, "waba_ban_date": "2025-12-01"},
    }
    violation = {"event": "ACCOUNT_VIOLATION", "violation_info": {"violation_type": "SCAM"}}
    events = [
        _parse(_envelope("account_update", v)).account[0] for v in (restricted, disabled, violation)
    ]
    assert events == [
        AccountUpdate(
            event="ACCOUNT_RESTRICTION",
            ban_state=None,
            violation=None,
            restrictions=("RESTRICTED_BIZ_INITIATED_MESSAGING",),
            at=SENT_AT,
        ),
        AccountUpdate(
            event="DISABLED_UPDATE",
            ban_state="DISABLE",
            violation=None,
            restrictions=(),
            at=SENT_AT,
        ),
        AccountUpdate(
            event="ACCOUNT_VIOLATION",
            ban_state=None,
            violation="SCAM",
            restrictions=(),
            at=SENT_AT,
        ),
    ]


def test_business_capability_update() -> None:
    value = {
        "max_daily_conversation_per_phone": 2000,
        "max_phone_numbers_per_business": 2,
        "max_daily_conversations_per_business": "TIER_2K",
    }
    assert _parse(_envelope("business_capability_update", value)).account == [
        CapabilityUpdate(
            daily_limit_per_phone=2000,
            max_phone_numbers=2,
            business_limit="TIER_2K",
            at=SENT_AT,
        )
    ]


def test_an_account_notice_of_an_unexpected_shape_still_parses() -> None:
    batch = _parse(_envelope("account_update", {"event": ["?"], "ban_info": "x"}))
    assert batch.account == [
        AccountUpdate(event=None, ban_state=None, violation=None, restrictions=(), at=SENT_AT)
    ]
    assert batch.malformed == 0


def test_other_fields_and_objects() -> None:
    assert _parse(_envelope("group_lifecycle_update", {"groups": []})).account == []
    assert parse_batch({"object": "page", "entry": []}, classify=_count_words) is None
    with pytest.raises(BadPayload):
        parse_batch([], classify=_count_words)
