"""Password hashing (argon2id) and the few rules a new password must meet."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.errors import Invalid

MIN_LENGTH = 10
MAX_LENGTH = 128

# argon2-cffi's defaults are RFC 9106's low-memory profile (argon2id, t=3, m=64 MiB, p=4).
_hasher = PasswordHasher()
# Verified when the username is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def hash_password(password: str) -> str:
    """The argon2id hash stored for a password (salted; the password itself is never kept)."""
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether the password matches; a missing hash is checked against a dummy in equal time."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(stored_hash)


def check_new_password(password: str, *, username: str) -> None:
    """Refuse passwords that are too short, too long, or the username (NIST SP 800-63B)."""
    if len(password) < MIN_LENGTH:
        raise Invalid(f"Kata sandi minimal {MIN_LENGTH} karakter.", code="password_too_short")
    if len(password) > MAX_LENGTH:
        raise Invalid(f"Kata sandi maksimal {MAX_LENGTH} karakter.", code="password_too_long")
    if username.lower() in password.lower():
        raise Invalid("Kata sandi tidak boleh memuat nama pengguna.", code="password_has_username")
