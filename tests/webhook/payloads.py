"""Webhook bodies shaped like Meta's (whatsapp-cloud-api.md §4), and signed posting."""

from __future__ import annotations

import itertools
import json
import secrets
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from app.config import Settings
from app.webhook.security import app_secret, sign

WABA_ID = "419561257915477"
PHONE_NUMBER_ID = "106540352242922"
_counter = itertools.count(1)


def wamid() -> str:
    return "wamid.HBgL" + secrets.token_urlsafe(24)


def envelope(*values: dict[str, Any], field: str = "messages") -> dict[str, Any]:
    """One entry with one change per value."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": WABA_ID, "changes": [{"field": field, "value": value} for value in values]}
        ],
    }


def value(
    *,
    messages: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
    contacts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
    }
    if contacts is not None:
        result["contacts"] = contacts
    if messages is not None:
        result["messages"] = messages
    if statuses is not None:
        result["statuses"] = statuses
    return result


def _message(wa_id: str | None, kind: str, body: dict[str, Any], msg_id: str | None) -> dict:
    message: dict[str, Any] = {
        "id": msg_id or wamid(),
        "timestamp": str(1_750_000_000 + next(_counter)),
        "type": kind,
        **body,
    }
    if wa_id is not None:
        message["from"] = wa_id
    return message


def text(wa_id: str | None, body: str, *, msg_id: str | None = None) -> dict[str, Any]:
    return _message(wa_id, "text", {"text": {"body": body}}, msg_id)


def button(wa_id: str, label: str, payload: str | None = None) -> dict[str, Any]:
    return _message(
        wa_id,
        "button",
        {
            "context": {"from": "15550783881", "id": wamid()},
            "button": {"text": label, "payload": payload or label},
        },
        None,
    )


def button_reply(wa_id: str, title: str, reply_id: str = "btn-1") -> dict[str, Any]:
    return _message(
        wa_id,
        "interactive",
        {"interactive": {"type": "button_reply", "button_reply": {"id": reply_id, "title": title}}},
        None,
    )


def media(wa_id: str, kind: str = "image", caption: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"mime_type": "image/jpeg", "sha256": "abc", "id": "1003383421387256"}
    if caption is not None:
        body["caption"] = caption
    return _message(wa_id, kind, {kind: body}, None)


def changed_number(old: str, new: str) -> dict[str, Any]:
    return _message(
        old,
        "system",
        {"system": {"body": "User changed number", "wa_id": new, "type": "user_changed_number"}},
        None,
    )


def inbound(*messages: dict[str, Any], contacts: list[dict[str, Any]] | None = None) -> dict:
    """A webhook with inbound messages (contacts default to each sender)."""
    if contacts is None:
        contacts = [
            {"profile": {"name": "Pegawai"}, "wa_id": m["from"]} for m in messages if "from" in m
        ]
    return envelope(value(messages=list(messages), contacts=contacts))


def status(
    kind: str,
    *,
    message_id: str,
    callback: str | None = None,
    recipient: str = "6281298765432",
    timestamp: int | None = None,
    error_code: int | None = None,
) -> dict[str, Any]:
    """One status as in §4.6: pricing on sent/delivered, errors only on failed."""
    item: dict[str, Any] = {
        "id": message_id,
        "status": kind,
        "timestamp": str(timestamp if timestamp is not None else 1_750_030_073),
        "recipient_id": recipient,
    }
    if callback is not None:
        item["biz_opaque_callback_data"] = callback
    if kind in ("sent", "delivered"):
        item["pricing"] = {
            "billable": True,
            "pricing_model": "PMP",
            "type": "regular",
            "category": "utility",
        }
    if kind == "failed":
        code = error_code or 131000
        item["errors"] = [
            {
                "code": code,
                "title": "Gagal",
                "message": "Gagal",
                "error_data": {"details": "Detail"},
                "href": "/documentation/business-messaging/whatsapp/support/error-codes",
            }
        ]
    return item


def preference(wa_id: str, value: str) -> dict[str, Any]:
    """WhatsApp's own marketing stop or resume, as a user_preferences webhook."""
    item = {
        "wa_id": wa_id,
        "category": "marketing_messages",
        "value": value,
        "detail": "User requested to stop marketing messages",
        "timestamp": 1731705721,
    }
    return envelope(
        {"messaging_product": "whatsapp", "user_preferences": [item]}, field="user_preferences"
    )


def statuses(*items: dict[str, Any]) -> dict[str, Any]:
    return envelope(value(statuses=list(items)))


def raw(payload: dict[str, Any] | bytes) -> bytes:
    if isinstance(payload, bytes):
        return payload
    # Meta escapes non-ASCII (and more); json.dumps's default ensure_ascii does the same.
    return json.dumps(payload).encode()


def post(
    client: TestClient,
    settings: Settings,
    payload: dict[str, Any] | bytes,
    *,
    signature: str | None = "auto",
) -> Response:
    """POST a body signed like Meta signs it (or with the given header, or none)."""
    body = raw(payload)
    headers = {"Content-Type": "application/json"}
    if signature == "auto":
        headers["X-Hub-Signature-256"] = sign(body, app_secret(settings))
    elif signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return client.post("/webhook/whatsapp", content=body, headers=headers)
