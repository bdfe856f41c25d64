"""Time-based one-time passwords (RFC 6238): 6 digits, 30-second steps, one step either side."""

import hmac
from datetime import datetime

import pyotp

ISSUER = "Pengingat SPI"
STEP_SECONDS = 30
# One step either side tolerates a phone clock about 30 s off without widening much further.
WINDOW_STEPS = 1


def new_secret() -> str:
    """A fresh random base32 secret (160 bits)."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, *, username: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def matching_step(secret: str, code: str, *, now: datetime, after_step: int | None) -> int | None:
    """The time step the code belongs to, within the window and later than `after_step`.

    None when the code is wrong, too old or already used: a code is accepted once.
    """
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = totp.timecode(now)
    for step in range(current - WINDOW_STEPS, current + WINDOW_STEPS + 1):
        if after_step is not None and step <= after_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None
