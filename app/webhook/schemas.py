"""Read Meta's webhook envelope into small typed events.

Inbound text is classified here, while parsing, and only the recognised command leaves this
module: no event carries message text, captions, names or media. Every `entry`, `change`,
`message`, `status` and `user_preferences` item is read, never only the first. A malformed item
is skipped and counted; it never fails the batch. Meta's `WebhookPayload` schema is not used for
validation: it rejects Meta's own examples.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from app.messaging.meanings import ErrorMeaning, meaning_of
from app.webhook.keywords import OTHER, Parsed, classify, classify_any

WHATSAPP_OBJECT = "whatsapp_business_account"
_WA_ID = re.compile(r"\+?(\d{6,15})")
_ID_MAX = 256


class BadPayload(ValueError):
    """The body is JSON but not a webhook envelope (e.g. a list or a string)."""


class MessageKind(StrEnum):
    command = "command"  # text, button or interactive reply; see `parsed`
    other = "other"  # media, stickers, locations, orders, unsupported …: the neutral reply
    number_changed = "number_changed"  # system: user_changed_number
    ignored = "ignored"  # reactions, other system notices, welcome requests


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One inbound message, reduced to what may be acted on."""

    message_id: str | None
    wa_id: str | None  # digits only; None when only a business-scoped user id was given
    kind: MessageKind
    parsed: Parsed = OTHER
    new_wa_id: str | None = None  # for number_changed


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """One delivery status of a message we sent."""

    status: str
    wamid: str | None
    callback: str | None  # biz_opaque_callback_data: the delivery's public id
    at: datetime | None
    recipient: str | None  # digits only
    error_code: int | None

    @property
    def meaning(self) -> ErrorMeaning:
        """What the status's error code implies for the service."""
        return meaning_of(self.error_code)


@dataclass(frozen=True, slots=True)
class PreferenceEvent:
    """A marketing-messages preference change (`user_preferences` field)."""

    wa_id: str | None
    category: str
    value: str


@dataclass(slots=True)
class Batch:
    """Everything one webhook request carries, in arrival order per kind."""

    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusEvent] = field(default_factory=list)
    preferences: list[PreferenceEvent] = field(default_factory=list)
    account_errors: int = 0
    malformed: int = 0

    @property
    def events(self) -> int:
        return len(self.messages) + len(self.statuses) + len(self.preferences)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value and len(value) <= _ID_MAX else None


def _wa_id(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    match = _WA_ID.fullmatch(value.strip())
    return match.group(1) if match else None


def _timestamp(value: Any) -> datetime | None:
    """Unix seconds as a string (or number); milliseconds are recognised and converted."""
    if isinstance(value, str) and value.strip().isdigit():
        seconds = int(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        return None
    if seconds > 10**11:  # milliseconds, seen "sometimes"
        seconds //= 1000
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


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


def _sub(item: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = item.get(key)
    return value if isinstance(value, Mapping) else {}


def _text_of(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _classify_message(msg: Mapping[str, Any]) -> tuple[MessageKind, Parsed, str | None]:
    kind = msg.get("type")
    if kind == "text":
        return MessageKind.command, classify(_text_of(_sub(msg, "text").get("body"))), None
    if kind == "button":
        button = _sub(msg, "button")
        parsed = classify_any(_text_of(button.get("text")), _text_of(button.get("payload")))
        return MessageKind.command, parsed, None
    if kind == "interactive":
        interactive = _sub(msg, "interactive")
        reply = _sub(interactive, "button_reply") or _sub(interactive, "list_reply")
        parsed = classify_any(_text_of(reply.get("title")), _text_of(reply.get("id")))
        return MessageKind.command, parsed, None
    if kind == "system":
        system = _sub(msg, "system")
        if system.get("type") == "user_changed_number":
            return MessageKind.number_changed, OTHER, _wa_id(system.get("wa_id"))
        return MessageKind.ignored, OTHER, None
    if kind in ("reaction", "request_welcome", "deleted", "revoke"):
        return MessageKind.ignored, OTHER, None
    return MessageKind.other, OTHER, None


def _sender(msg: Mapping[str, Any], contacts: list[Mapping[str, Any]]) -> str | None:
    """The sender's wa_id; for a username-only sender, from the matching contact if any."""
    direct = _wa_id(msg.get("from"))
    if direct is not None:
        return direct
    user_id = msg.get("from_user_id")
    for contact in contacts:
        if user_id is not None and contact.get("user_id") == user_id:
            return _wa_id(contact.get("wa_id"))
    if len(contacts) == 1 and user_id is None:
        return _wa_id(contacts[0].get("wa_id"))
    return None


def _read_messages(value: Mapping[str, Any], batch: Batch) -> None:
    contacts = [c for c in value.get("contacts") or [] if isinstance(c, Mapping)]
    for msg in value.get("messages") or []:
        if not isinstance(msg, Mapping):
            batch.malformed += 1
            continue
        kind, parsed, new_wa_id = _classify_message(msg)
        batch.messages.append(
            InboundMessage(
                message_id=_str(msg.get("id")),
                wa_id=_sender(msg, contacts),
                kind=kind,
                parsed=parsed,
                new_wa_id=new_wa_id,
            )
        )


def _read_statuses(value: Mapping[str, Any], batch: Batch) -> None:
    for item in value.get("statuses") or []:
        status = item.get("status") if isinstance(item, Mapping) else None
        if not isinstance(item, Mapping) or not isinstance(status, str):
            batch.malformed += 1
            continue
        batch.statuses.append(
            StatusEvent(
                status=status.lower(),
                wamid=_str(item.get("id")),
                callback=_str(item.get("biz_opaque_callback_data")),
                at=_timestamp(item.get("timestamp")),
                recipient=_wa_id(item.get("recipient_id")),
                error_code=_error_code(item.get("errors")),
            )
        )


def _read_preferences(value: Mapping[str, Any], batch: Batch) -> None:
    for item in value.get("user_preferences") or []:
        if not isinstance(item, Mapping):
            batch.malformed += 1
            continue
        batch.preferences.append(
            PreferenceEvent(
                wa_id=_wa_id(item.get("wa_id")),
                category=str(item.get("category") or ""),
                value=str(item.get("value") or "").lower(),
            )
        )


def parse(payload: Any) -> Batch | None:
    """The events of a webhook body; None when it is not about a WhatsApp Business Account."""
    if not isinstance(payload, Mapping):
        raise BadPayload("the body is not a JSON object")
    if payload.get("object") != WHATSAPP_OBJECT:
        return None
    batch = Batch()
    entries = payload.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, Mapping) else None
        if not isinstance(changes, list):
            batch.malformed += 1
            continue
        for change in changes:
            value = change.get("value") if isinstance(change, Mapping) else None
            if not isinstance(value, Mapping):
                batch.malformed += 1
                continue
            field_name = change.get("field")
            if field_name == "messages":
                for key in ("messages", "statuses", "contacts", "user_preferences"):
                    if not isinstance(value.get(key) or [], list):
                        batch.malformed += 1
                        break
                else:
                    _read_messages(value, batch)
                    _read_statuses(value, batch)
                    _read_preferences(value, batch)
                    errors = value.get("errors")
                    batch.account_errors += len(errors) if isinstance(errors, list) else 0
            elif field_name == "user_preferences":
                if isinstance(value.get("user_preferences") or [], list):
                    _read_preferences(value, batch)
                else:
                    batch.malformed += 1
            # Other fields (templates, groups, account updates) are acknowledged and ignored.
    return batch
