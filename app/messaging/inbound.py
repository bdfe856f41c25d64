"""Read Meta's webhook envelope into small typed events.

Inbound text never leaves the parse call: the caller's classifier reads it while parsing, and
only its result is kept, so no event carries message text, captions, names or media. Every
`entry`, `change`, `message`, `status` and `user_preferences` item is read, never only the
first. A malformed item is skipped and counted; it never fails the batch. Meta's
`WebhookPayload` schema is not used for validation: it rejects Meta's own examples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from app.messaging import account_events
from app.messaging.account_events import AccountEvent
from app.messaging.meanings import ErrorMeaning, meaning_of
from app.messaging.values import phone_digits, sub, text_id, text_of, timestamp

WHATSAPP_OBJECT = "whatsapp_business_account"

Reading = TypeVar("Reading")
Reading_co = TypeVar("Reading_co", covariant=True)


class Classifier(Protocol[Reading_co]):
    """What the service reads in a message's text candidates (typed text, then button id)."""

    def __call__(self, *candidates: str | None) -> Reading_co: ...


class BadPayload(ValueError):
    """The body is JSON but not a webhook envelope (e.g. a list or a string)."""


class MessageKind(StrEnum):
    command = "command"  # text, button or interactive reply; see `reading`
    other = "other"  # media, stickers, locations, orders, unsupported …: the neutral reply
    number_changed = "number_changed"  # system: user_changed_number
    ignored = "ignored"  # reactions, other system notices, welcome requests


@dataclass(frozen=True, slots=True)
class InboundMessage(Generic[Reading]):
    """One inbound message, reduced to what may be acted on."""

    message_id: str | None
    sender_digits: str | None  # None when only a business-scoped user id was given
    kind: MessageKind
    reading: Reading | None = None  # the classifier's result, for `command` messages only
    new_number_digits: str | None = None  # for number_changed


@dataclass(frozen=True, slots=True)
class Pricing:
    """How Meta prices a sent message (on `sent` and one later status)."""

    billable: bool | None
    category: str | None  # e.g. utility, marketing
    pricing_model: str | None  # PMP (per message) since July 2025, CBP before
    charge: str | None  # e.g. regular, free_customer_service


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """One delivery status of a message we sent."""

    status: str
    wamid: str | None
    callback: str | None  # the delivery's public id, as given at send time
    at: datetime | None
    recipient: str | None  # digits only
    error_code: int | None
    pricing: Pricing | None = None

    @property
    def meaning(self) -> ErrorMeaning:
        """What the status's error code implies for the service."""
        return meaning_of(self.error_code)


@dataclass(frozen=True, slots=True)
class PreferenceEvent:
    """A marketing-messages preference change (`user_preferences` field)."""

    user_digits: str | None
    category: str
    value: str


@dataclass(slots=True)
class Batch(Generic[Reading]):
    """Everything one webhook request carries, in arrival order per kind."""

    messages: list[InboundMessage[Reading]] = field(default_factory=list)
    statuses: list[StatusEvent] = field(default_factory=list)
    preferences: list[PreferenceEvent] = field(default_factory=list)
    # Template, number-quality and account notices (acted on by `app.webhook.account`).
    account: list[AccountEvent] = field(default_factory=list)
    account_errors: int = 0
    malformed: int = 0


def _error_code(errors: Any) -> int | None:
    if isinstance(errors, list):
        for error in errors:
            if isinstance(error, Mapping):
                code = error.get("code")
                if isinstance(code, int) and not isinstance(code, bool):
                    return code
                if isinstance(code, str) and code.isdigit():
                    return int(code)
    return None


def _pricing(value: Any) -> Pricing | None:
    if not isinstance(value, Mapping):
        return None
    billable = value.get("billable")
    return Pricing(
        billable=billable if isinstance(billable, bool) else None,
        category=text_id(value.get("category")),
        pricing_model=text_id(value.get("pricing_model")),
        charge=text_id(value.get("type")),
    )


def _read_message(
    msg: Mapping[str, Any], classify: Classifier[Reading]
) -> tuple[MessageKind, Reading | None, str | None]:
    kind = msg.get("type")
    if kind == "text":
        return MessageKind.command, classify(text_of(sub(msg, "text").get("body"))), None
    if kind == "button":
        button = sub(msg, "button")
        reading = classify(text_of(button.get("text")), text_of(button.get("payload")))
        return MessageKind.command, reading, None
    if kind == "interactive":
        interactive = sub(msg, "interactive")
        reply = sub(interactive, "button_reply") or sub(interactive, "list_reply")
        reading = classify(text_of(reply.get("title")), text_of(reply.get("id")))
        return MessageKind.command, reading, None
    if kind == "system":
        system = sub(msg, "system")
        if system.get("type") == "user_changed_number":
            return MessageKind.number_changed, None, phone_digits(system.get("wa_id"))
        return MessageKind.ignored, None, None
    if kind in ("reaction", "request_welcome", "deleted", "revoke"):
        return MessageKind.ignored, None, None
    return MessageKind.other, None, None


def _sender(msg: Mapping[str, Any], contacts: list[Mapping[str, Any]]) -> str | None:
    """The sender's number; for a username-only sender, from the matching contact if any."""
    direct = phone_digits(msg.get("from"))
    if direct is not None:
        return direct
    user_id = msg.get("from_user_id")
    for contact in contacts:
        if user_id is not None and contact.get("user_id") == user_id:
            return phone_digits(contact.get("wa_id"))
    if len(contacts) == 1 and user_id is None:
        return phone_digits(contacts[0].get("wa_id"))
    return None


def _read_messages(
    value: Mapping[str, Any], batch: Batch[Reading], classify: Classifier[Reading]
) -> None:
    contacts = [c for c in value.get("contacts") or [] if isinstance(c, Mapping)]
    for msg in value.get("messages") or []:
        if not isinstance(msg, Mapping):
            batch.malformed += 1
            continue
        kind, reading, new_number = _read_message(msg, classify)
        batch.messages.append(
            InboundMessage(
                message_id=text_id(msg.get("id")),
                sender_digits=_sender(msg, contacts),
                kind=kind,
                reading=reading,
                new_number_digits=new_number,
            )
        )


def _read_statuses(value: Mapping[str, Any], batch: Batch[Reading]) -> None:
    for item in value.get("statuses") or []:
        status = item.get("status") if isinstance(item, Mapping) else None
        if not isinstance(item, Mapping) or not isinstance(status, str):
            batch.malformed += 1
            continue
        batch.statuses.append(
            StatusEvent(
                status=status.lower(),
                wamid=text_id(item.get("id")),
                callback=text_id(item.get("biz_opaque_callback_data")),
                at=timestamp(item.get("timestamp")),
                recipient=phone_digits(item.get("recipient_id")),
                error_code=_error_code(item.get("errors")),
                pricing=_pricing(item.get("pricing")),
            )
        )


def _read_preferences(value: Mapping[str, Any], batch: Batch[Reading]) -> None:
    for item in value.get("user_preferences") or []:
        if not isinstance(item, Mapping):
            batch.malformed += 1
            continue
        batch.preferences.append(
            PreferenceEvent(
                user_digits=phone_digits(item.get("wa_id")),
                category=str(item.get("category") or ""),
                value=str(item.get("value") or "").lower(),
            )
        )


def _read_change(
    field_name: Any,
    value: Mapping[str, Any],
    batch: Batch[Reading],
    classify: Classifier[Reading],
    *,
    at: datetime | None = None,
) -> None:
    if field_name == "messages":
        for key in ("messages", "statuses", "contacts", "user_preferences"):
            if not isinstance(value.get(key) or [], list):
                batch.malformed += 1
                return
        _read_messages(value, batch, classify)
        _read_statuses(value, batch)
        _read_preferences(value, batch)
        errors = value.get("errors")
        batch.account_errors += len(errors) if isinstance(errors, list) else 0
    elif field_name == "user_preferences":
        if isinstance(value.get("user_preferences") or [], list):
            _read_preferences(value, batch)
        else:
            batch.malformed += 1
    else:
        # Template and account fields are read; groups and the rest are acknowledged only.
        event = account_events.read(field_name, value, at=at)
        if event is not None:
            batch.account.append(event)


def parse_batch(payload: Any, *, classify: Classifier[Reading]) -> Batch[Reading] | None:
    """The events of a webhook body; None when it is not about a WhatsApp Business Account.

    `classify` turns a message's text candidates into the caller's reading of them; the
    text itself is dropped here.
    """
    if not isinstance(payload, Mapping):
        raise BadPayload("the body is not a JSON object")
    if payload.get("object") != WHATSAPP_OBJECT:
        return None
    batch: Batch[Reading] = Batch()
    entries = payload.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, Mapping) else None
        if not isinstance(changes, list):
            batch.malformed += 1
            continue
        sent_at = timestamp(entry.get("time"))
        for change in changes:
            value = change.get("value") if isinstance(change, Mapping) else None
            if not isinstance(value, Mapping):
                batch.malformed += 1
                continue
            _read_change(change.get("field"), value, batch, classify, at=sent_at)
    return batch
