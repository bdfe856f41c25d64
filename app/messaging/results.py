"""Typed outcome of one Cloud API send, its classification and retry timing."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import httpx

from app.messaging.meanings import ErrorMeaning, FailureClass, meaning_of


class SendOutcome(StrEnum):
    """What the caller must do with a delivery after one send attempt."""

    ACCEPTED = "accepted"
    RETRY = "retry"
    FAILED = "failed"
    HALT = "halt"
    # The request may have reached Meta: re-sending could deliver the reminder twice.
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class SendResult:
    """Result of one send attempt; never carries a phone number or a token."""

    outcome: SendOutcome
    reason: str
    wamid: str | None = None
    wa_id: str | None = None
    error_code: int | None = None
    error_subcode: int | None = None
    error_details: str | None = None
    http_status: int | None = None
    retry_after_seconds: float | None = None
    per_recipient: bool = False

    @property
    def meaning(self) -> ErrorMeaning:
        """What the error code of this answer implies for the service."""
        return meaning_of(self.error_code)

    @property
    def failure_class(self) -> FailureClass:
        """The counter class of a failure (read only when the delivery failed for good)."""
        return self.meaning.failure_class

    @property
    def not_on_whatsapp(self) -> bool:
        """Meta says the number cannot be reached on WhatsApp."""
        return self.outcome is SendOutcome.FAILED and self.meaning.not_on_whatsapp

    @property
    def throttles_sender(self) -> bool:
        """A retry that should hold every send of this sender, not only this person's."""
        if self.outcome is not SendOutcome.RETRY or self.per_recipient:
            return False
        return self.meaning.throttles_sender or self.reason == "http_429"


PAIR_LIMIT_CODE = 131056
PAIR_LIMIT_MIN_SECONDS = 6.0
MAX_BACKOFF_SECONDS = 15 * 60.0

RETRY_CODES: dict[int, str] = {
    4: "app_rate_limited",
    80007: "waba_rate_limited",
    130429: "throughput_limited",
    PAIR_LIMIT_CODE: "pair_rate_limited",
    131000: "meta_unknown_error",
    131016: "service_unavailable",
    131057: "account_maintenance",
}
FAILED_CODES: dict[int, str] = {
    131026: "not_on_whatsapp",
    131008: "missing_parameter",
    131009: "invalid_parameter",
    100: "invalid_graph_parameter",
    132000: "template_param_count_mismatch",
    132001: "template_not_found",
    132005: "template_text_too_long",
    132007: "template_format_policy",
    132008: "template_param_invalid",
    132012: "template_param_format_mismatch",
}
HALT_CODES: dict[int, str] = {
    0: "auth_exception",
    10: "permission_denied",
    190: "access_token_invalid",
    131005: "access_denied",
    368: "waba_policy_restricted",
    131031: "account_locked",
    131042: "payment_issue",
    131048: "spam_rate_limited",
    131064: "template_categorization_limit",
    132015: "template_paused",
    132016: "template_disabled",
    **dict.fromkeys(range(200, 300), "permission_denied"),
}
# Minimum waits Meta documents for a code; other retries rely on backoff_seconds.
MIN_WAIT_SECONDS: dict[int, float] = {PAIR_LIMIT_CODE: PAIR_LIMIT_MIN_SECONDS, 131057: 60.0}
# Code 100 + subcode 33 means the phone-number/WABA id is wrong or not granted to the
# token: every later send would fail the same way, so stop instead of failing each person.
_OBJECT_UNAVAILABLE_SUBCODE = 33


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _first_str(items: Any, key: str) -> str | None:
    if isinstance(items, list) and items and isinstance(items[0], Mapping):
        value = items[0].get(key)
        if isinstance(value, str) and value:
            return value
    return None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _merge_wait(code_minimum: float | None, header_wait: float | None) -> float | None:
    waits = [w for w in (code_minimum, header_wait) if w is not None]
    return max(waits) if waits else None


def classify_response(
    status: int, payload: Any, *, retry_after_header: str | None = None
) -> SendResult:
    """Turn an HTTP status and decoded JSON body (or None) from /messages into a SendResult."""
    body = payload if isinstance(payload, Mapping) else {}
    error = body.get("error")
    if 200 <= status < 300 and not isinstance(error, Mapping):
        wamid = _first_str(body.get("messages"), "id")
        if wamid is None:
            # Meta may have queued the message; without a wamid we cannot tell, so never resend.
            return SendResult(SendOutcome.UNKNOWN, "unparseable_success", http_status=status)
        pacing = _first_str(body.get("messages"), "message_status")
        return SendResult(
            SendOutcome.ACCEPTED,
            pacing if pacing not in (None, "accepted") else "accepted",
            wamid=wamid,
            wa_id=_first_str(body.get("contacts"), "wa_id"),
            http_status=status,
        )

    err: Mapping[str, Any] = error if isinstance(error, Mapping) else {}
    code = _as_int(err.get("code"))
    subcode = _as_int(err.get("error_subcode"))
    data = err.get("error_data")
    details = data.get("details") if isinstance(data, Mapping) else None
    common: dict[str, Any] = {
        "error_code": code,
        "error_subcode": subcode,
        "error_details": details if isinstance(details, str) else None,
        "http_status": status,
    }
    header_wait = parse_retry_after(retry_after_header)

    if code in RETRY_CODES:
        return SendResult(
            SendOutcome.RETRY,
            RETRY_CODES[code],
            retry_after_seconds=_merge_wait(MIN_WAIT_SECONDS.get(code), header_wait),
            per_recipient=code == PAIR_LIMIT_CODE,
            **common,
        )
    if code == 100 and subcode == _OBJECT_UNAVAILABLE_SUBCODE:
        return SendResult(SendOutcome.HALT, "graph_object_unavailable", **common)
    if code in HALT_CODES:
        return SendResult(SendOutcome.HALT, HALT_CODES[code], **common)
    if code in FAILED_CODES:
        return SendResult(SendOutcome.FAILED, FAILED_CODES[code], **common)

    # Unknown or missing code: fall back on the HTTP status.
    if status == 429:
        return SendResult(SendOutcome.RETRY, "http_429", retry_after_seconds=header_wait, **common)
    if status >= 500:
        return SendResult(
            SendOutcome.RETRY, "server_error", retry_after_seconds=header_wait, **common
        )
    if status == 408:
        # The server gave up before reading the request, so nothing was processed.
        return SendResult(SendOutcome.RETRY, "request_timeout", **common)
    if status in (401, 403):
        return SendResult(SendOutcome.HALT, "unauthorized", **common)
    if 400 <= status < 500:
        return SendResult(SendOutcome.FAILED, "client_error", **common)
    # 1xx/3xx or an error object on a 2xx: the endpoint or a proxy is misconfigured.
    return SendResult(SendOutcome.HALT, "unexpected_response", **common)


def classify_transport_error(exc: httpx.TransportError) -> SendResult:
    """Classify an httpx transport failure by whether the request could have left."""
    # Timeout subclasses are checked before their NetworkError siblings on purpose:
    # ConnectTimeout/PoolTimeout happen before any byte is sent, Read/WriteTimeout after.
    if isinstance(exc, httpx.ConnectTimeout):
        return SendResult(SendOutcome.RETRY, "connect_timeout")
    if isinstance(exc, httpx.PoolTimeout):
        return SendResult(SendOutcome.RETRY, "pool_timeout")
    if isinstance(exc, httpx.ConnectError):
        return SendResult(SendOutcome.RETRY, "connect_error")
    if isinstance(exc, httpx.ProxyError):
        return SendResult(SendOutcome.RETRY, "proxy_error")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        # Raised before sending and caused by our own configuration: retrying cannot help.
        return SendResult(SendOutcome.HALT, "local_configuration_error")
    if isinstance(exc, httpx.ReadTimeout):
        return SendResult(SendOutcome.UNKNOWN, "read_timeout")
    if isinstance(exc, httpx.WriteTimeout):
        return SendResult(SendOutcome.UNKNOWN, "write_timeout")
    if isinstance(exc, httpx.RemoteProtocolError):
        return SendResult(SendOutcome.UNKNOWN, "remote_protocol_error")
    return SendResult(SendOutcome.UNKNOWN, "connection_lost")


class UniformSource(Protocol):
    """Anything with random.uniform's signature (the random module or a Random)."""

    def uniform(self, a: float, b: float) -> float:
        """Return a float between a and b."""
        ...


def backoff_seconds(
    attempt: int,
    *,
    minimum: float = 0.0,
    rng: UniformSource = random,
    base: float = 2.0,
    cap: float = MAX_BACKOFF_SECONDS,
    pair_limit: bool = False,
) -> float:
    """Delay before retry number `attempt` (0 = first retry); never below `minimum`."""
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    if pair_limit:
        # Meta's pair-rate guidance: wait 4^X seconds, and never less than the 6 s window.
        delay = min(cap, max(PAIR_LIMIT_MIN_SECONDS, 4.0 ** min(attempt, 16)))
    else:
        # Equal jitter keeps half of the exponential step as a floor, so throttled
        # senders still slow down while the random half spreads them apart.
        step = min(cap, base * 2.0 ** min(attempt, 32))
        delay = step / 2 + rng.uniform(0.0, step / 2)
    return max(minimum, delay)
