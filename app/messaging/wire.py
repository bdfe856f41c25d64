"""Pure builders for Cloud API request bodies and paths (no I/O)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

# Meta prepends the business number's own country code when "+" is missing, which can
# reach the wrong person, so only full E.164 with "+" is ever put on the wire.
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_GRAPH_ID = re.compile(r"^\d+$")
_API_VERSION = re.compile(r"^v\d+\.\d+$")
# Meta's documented cap for biz_opaque_callback_data.
MAX_CALLBACK_DATA_CHARS = 512


def require_e164(to: str) -> str:
    """Return `to` unchanged if it is E.164 with a leading '+', else raise ValueError."""
    if not _E164.fullmatch(to):
        raise ValueError("recipient must be E.164 with a leading '+'")
    return to


def _require_graph_id(value: str, what: str) -> str:
    if not _GRAPH_ID.fullmatch(value):
        raise ValueError(f"{what} must be a numeric Graph id")
    return value


def _require_version(api_version: str) -> str:
    if not _API_VERSION.fullmatch(api_version):
        raise ValueError("api_version must look like 'v23.0'")
    return api_version


def messages_path(api_version: str, phone_number_id: str) -> str:
    """Path of POST /{Version}/{Phone-Number-ID}/messages."""
    version = _require_version(api_version)
    return f"/{version}/{_require_graph_id(phone_number_id, 'phone_number_id')}/messages"


def templates_path(api_version: str, waba_id: str) -> str:
    """Path of GET /{Version}/{WABA-ID}/message_templates."""
    version = _require_version(api_version)
    return f"/{version}/{_require_graph_id(waba_id, 'waba_id')}/message_templates"


def template_message_body(
    *,
    to: str,
    template_name: str,
    language: str,
    parameters: Sequence[str],
    callback_data: str,
) -> dict[str, Any]:
    """Body of a template send with positional body parameters and a callback tag."""
    if not template_name:
        raise ValueError("template_name must not be empty")
    if not language:
        raise ValueError("language must not be empty")
    if not callback_data or len(callback_data) > MAX_CALLBACK_DATA_CHARS:
        raise ValueError(f"callback_data must be 1..{MAX_CALLBACK_DATA_CHARS} characters")
    if isinstance(parameters, str):
        raise TypeError("parameters must be a sequence of strings, not a string")
    if any(not isinstance(p, str) or not p for p in parameters):
        # Meta rejects empty body parameters; fail before spending a request on it.
        raise ValueError("template parameters must be non-empty strings")
    template: dict[str, Any] = {
        "name": template_name,
        "language": {"code": language, "policy": "deterministic"},
    }
    if parameters:
        template["components"] = [
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in parameters]}
        ]
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": require_e164(to),
        "type": "template",
        "template": template,
        "biz_opaque_callback_data": callback_data,
    }


def text_message_body(*, to: str, body: str) -> dict[str, Any]:
    """Body of a free-form text reply (only valid inside a 24 h service window)."""
    if not body:
        raise ValueError("text body must not be empty")
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": require_e164(to),
        "type": "text",
        "text": {"preview_url": False, "body": body},
    }


# --- account and template management (Graph API, not /messages) ---------------------------

# Meta: a template name is lowercase letters, digits and underscores, at most 512 characters.
_TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
_PLACEHOLDER = re.compile(r"\{\{\s*(\d+)\s*\}\}")
# Meta accepts a time-to-live of 30 s to 12 h for utility templates.
MIN_TEMPLATE_TTL_SECONDS = 30
MAX_TEMPLATE_TTL_SECONDS = 12 * 3600
UTILITY_CATEGORY = "UTILITY"


def graph_object_path(api_version: str, object_id: str) -> str:
    """Path of GET /{Version}/{object-id} (a phone number, a template, an app …)."""
    return f"/{_require_version(api_version)}/{_require_graph_id(object_id, 'object id')}"


def subscribed_apps_path(api_version: str, waba_id: str) -> str:
    """Path of GET /{Version}/{WABA-ID}/subscribed_apps."""
    return f"{graph_object_path(api_version, waba_id)}/subscribed_apps"


def app_subscriptions_path(api_version: str, app_id: str) -> str:
    """Path of GET /{Version}/{App-ID}/subscriptions (the app's webhook fields and callback)."""
    return f"{graph_object_path(api_version, app_id)}/subscriptions"


def permissions_path(api_version: str) -> str:
    """Path of GET /{Version}/me/permissions (what the token's user granted)."""
    return f"/{_require_version(api_version)}/me/permissions"


def template_creation_body(
    *,
    name: str,
    language: str,
    body_text: str,
    examples: Sequence[str],
    ttl_seconds: int,
) -> dict[str, Any]:
    """Body of POST /{WABA-ID}/message_templates: a UTILITY template with one BODY.

    `examples` fill {{1}}..{{n}} for Meta's review (one value per placeholder, in order);
    `ttl_seconds` is how long Meta keeps trying to deliver one message before dropping it.
    """
    if not _TEMPLATE_NAME.fullmatch(name):
        raise ValueError("template name must be lowercase letters, digits and '_' (1..512)")
    if not language:
        raise ValueError("language must not be empty")
    if not body_text.strip():
        raise ValueError("body text must not be empty")
    if not MIN_TEMPLATE_TTL_SECONDS <= ttl_seconds <= MAX_TEMPLATE_TTL_SECONDS:
        raise ValueError(
            f"ttl_seconds must be {MIN_TEMPLATE_TTL_SECONDS}..{MAX_TEMPLATE_TTL_SECONDS}"
        )
    numbers = sorted({int(n) for n in _PLACEHOLDER.findall(body_text)})
    if numbers != list(range(1, len(numbers) + 1)):
        raise ValueError("placeholders must be {{1}}..{{n}} without gaps")
    if isinstance(examples, str) or len(examples) != len(numbers):
        raise ValueError(f"give one example per placeholder ({len(numbers)})")
    if any(not isinstance(e, str) or not e.strip() for e in examples):
        raise ValueError("examples must be non-empty strings")
    component: dict[str, Any] = {"type": "BODY", "text": body_text}
    if numbers:
        component["example"] = {"body_text": [list(examples)]}
    return {
        "name": name,
        "language": language,
        "category": UTILITY_CATEGORY,
        "components": [component],
        "message_send_ttl_seconds": ttl_seconds,
    }
