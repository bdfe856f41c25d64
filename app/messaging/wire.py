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
