"""How the sandbox misbehaves on purpose, and the Meta-shaped errors it answers with."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields
from typing import Any


@dataclass
class Faults:
    """How the fake misbehaves; every field can be changed at run time (POST /sandbox/faults)."""

    latency_ms: float = 0.0  # delay before every answer (after the message was taken)
    throttle_burst: int = 0  # answer the next N sends with 130429
    error_rate: float = 0.0  # share of sends answered with HTTP 503 before taking them
    timeout_rate: float = 0.0  # share taken but answered only after hang_seconds
    hang_seconds: float = 60.0
    failed_share: float = 0.0  # share of taken sends that later fail with 131026
    status_delay_seconds: float = 0.5  # from answer to the sent/delivered webhooks
    # Meta posts a webhook again, for days, while the service answers 5xx or times out; the
    # sandbox does the same a bounded number of times, the wait doubling from the first one.
    webhook_retries: int = 5
    webhook_retry_seconds: float = 1.0
    # Refuse like Meta beyond the account's throughput and messaging limit (app.sandbox.limits).
    enforce_limits: bool = False
    # Share of taken sends never delivered (the phone stays offline until the TTL passes): Meta
    # then drops the message and posts nothing after `sent`.
    undelivered_share: float = 0.0

    def update(self, changes: dict[str, Any]) -> None:
        """Apply known fields from a JSON object; unknown keys raise ValueError."""
        known = {f.name: f.type for f in fields(self)}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r}")
            if key == "enforce_limits":
                if not isinstance(value, bool):
                    raise ValueError("enforce_limits must be true or false")
                self.enforce_limits = value
                continue
            cast = int if key in ("throttle_burst", "webhook_retries") else float
            setattr(self, key, cast(value))


def graph_error(
    status: int, code: int, message: str, *, details: str = "", subcode: int | None = None
) -> tuple[int, dict[str, Any]]:
    """A Graph error answer shaped like Meta's: (HTTP status, body)."""
    error: dict[str, Any] = {
        "message": f"(#{code}) {message}",
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details or message},
        "fbtrace_id": secrets.token_urlsafe(12),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return status, {"error": error}
