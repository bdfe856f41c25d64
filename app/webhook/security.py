"""Webhook authenticity: the verify-token handshake and X-Hub-Signature-256 over raw bytes."""

from __future__ import annotations

import hashlib
import hmac
from enum import Enum

from app.config import Settings
from app.sandbox.identity import webhook_secret

_PREFIX = "sha256="
_HEADER_LENGTH = len(_PREFIX) + 64  # courier also insists on exactly 71 characters


class SignatureCheck(Enum):
    ok = "ok"
    missing = "missing"  # 401
    invalid = "invalid"  # 403


def app_secret(settings: Settings) -> bytes:
    """The secret webhooks are signed with: the Meta app secret, or the sandbox's without one."""
    return webhook_secret(settings)


def sign(body: bytes, secret: bytes) -> str:
    """The header value Meta would send for this body."""
    return _PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def check_signature(body: bytes, header: str | None, secret: bytes) -> SignatureCheck:
    """Compare the header with the HMAC-SHA256 of the raw body, in constant time."""
    if not header:
        return SignatureCheck.missing
    if not secret:
        return SignatureCheck.invalid
    expected = sign(body, secret)
    candidate = header.strip()
    if len(candidate) != _HEADER_LENGTH:
        return SignatureCheck.invalid
    # Compare bytes, lower-cased: hex digits are case-insensitive.
    if hmac.compare_digest(candidate.lower().encode(), expected.encode()):
        return SignatureCheck.ok
    return SignatureCheck.invalid


def verify_token_matches(given: str | None, settings: Settings) -> bool:
    """Whether the GET handshake's hub.verify_token equals the configured token."""
    configured = settings.whatsapp_verify_token.get_secret_value()
    if not configured or given is None:
        return False
    return hmac.compare_digest(given.encode(), configured.encode())
