"""Validate send bodies against Meta's spec, once per shape (the sandbox's strictness)."""

from __future__ import annotations

import json
from typing import Any

from app.messaging import spec
from app.messaging.wire import MAX_CALLBACK_DATA_CHARS, require_e164

_VALIDATION_CACHE_SIZE = 256


class BodyChecker:
    """Validates bodies against Meta's spec, once per shape.

    Reminders of one round differ only in `to` and the callback tag, both plain strings in
    Meta's schema; those are checked per message, the rest once per distinct shape. This
    keeps the fake fast enough for the dispatch benchmark without weakening the check.
    """

    def __init__(self) -> None:
        self._known: dict[str, list[str]] = {}

    def errors(self, body: Any) -> list[str]:
        """What is wrong with a send body; empty when Meta would take it."""
        if not isinstance(body, dict):
            return ["(root): body must be a JSON object"]
        to, tag = body.get("to"), body.get("biz_opaque_callback_data")
        shape = json.dumps(
            {k: v for k, v in body.items() if k not in ("to", "biz_opaque_callback_data")},
            sort_keys=True,
        )
        found = self._known.get(shape)
        if found is None:
            found = spec.validate_message_body(body)
            if len(self._known) >= _VALIDATION_CACHE_SIZE:
                self._known.clear()
            self._known[shape] = found
        problems = list(found)
        try:
            require_e164(to if isinstance(to, str) else "")
        except ValueError:
            problems.append("to: must be E.164 with a leading '+'")
        if tag is not None and (
            not isinstance(tag, str) or not 0 < len(tag) <= MAX_CALLBACK_DATA_CHARS
        ):
            problems.append("biz_opaque_callback_data: must be a string of 1..512 characters")
        return problems
