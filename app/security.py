"""Phone-number encryption, the keyed blind index, and API-token hashing."""

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app.config import Settings

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "spi_"


class KeyConfigError(RuntimeError):
    """The keys are missing or malformed; the service must not start."""


@dataclass(frozen=True)
class KeyMaterial:
    """Encryption keys (newest first) and the separate blind-index key."""

    encryption_keys: tuple[str, ...]
    blind_index_key: bytes


class PhoneVault:
    """Encrypts numbers at rest and derives the blind index used to look them up."""

    def __init__(self, keys: KeyMaterial) -> None:
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys.encryption_keys])
        except (ValueError, TypeError) as exc:
            raise KeyConfigError(
                "SPI_ENCRYPTION_KEYS must hold Fernet keys (32 url-safe base64 bytes)"
            ) from exc
        self._index_key = keys.blind_index_key

    def encrypt(self, e164: str) -> str:
        """Ciphertext of a normalised number under the newest key."""
        return self._fernet.encrypt(e164.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """The number behind a ciphertext made with any configured key."""
        return self._fernet.decrypt(ciphertext.encode()).decode()

    def rotate(self, ciphertext: str) -> str:
        """The same number re-encrypted under the newest key."""
        return self._fernet.rotate(ciphertext.encode()).decode()

    def blind_index(self, e164: str) -> str:
        """Keyed HMAC of a number: equal numbers match, the number cannot be read back."""
        return hmac.new(self._index_key, e164.encode(), hashlib.sha256).hexdigest()

    @property
    def index_key(self) -> bytes:
        """The blind-index key, from which other per-purpose secrets are derived."""
        return self._index_key

    def can_decrypt(self, ciphertext: str) -> bool:
        """Whether any configured key opens this ciphertext."""
        try:
            self.decrypt(ciphertext)
        except InvalidToken:
            return False
        return True


def _split_keys(raw: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in raw.split(",") if k.strip())


def _index_key_bytes(raw: str) -> bytes:
    if len(raw) < 32:
        raise KeyConfigError("SPI_BLIND_INDEX_KEY must be at least 32 characters")
    return raw.encode()


def generate_key_material() -> dict[str, list[str] | str]:
    """Fresh keys in the key-file shape."""
    return {
        "encryption_keys": [Fernet.generate_key().decode()],
        "blind_index_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }


def load_keys(settings: Settings) -> KeyMaterial:
    """Keys from the environment; in development, from (or into) the local key file."""
    enc = settings.encryption_keys.get_secret_value()
    idx = settings.blind_index_key.get_secret_value()
    if enc and idx:
        return KeyMaterial(_split_keys(enc), _index_key_bytes(idx))
    if settings.env == "production":
        raise KeyConfigError(
            "production mode needs SPI_ENCRYPTION_KEYS and SPI_BLIND_INDEX_KEY; refusing to start"
        )
    path = settings.key_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(generate_key_material(), fh)
        logger.warning(
            "keys.generated path=%s: development keys were created; back this file up, "
            "and set SPI_ENCRYPTION_KEYS/SPI_BLIND_INDEX_KEY in production",
            path,
        )
    data = json.loads(path.read_text())
    return KeyMaterial(
        tuple(data["encryption_keys"]), _index_key_bytes(str(data["blind_index_key"]))
    )


def prepend_key_to_file(settings: Settings) -> None:
    """Put a new newest key in front of the development key file (for `keys rotate --new`)."""
    path = settings.key_file
    data = json.loads(path.read_text())
    data["encryption_keys"].insert(0, Fernet.generate_key().decode())
    path.write_text(json.dumps(data))


def new_api_token() -> str:
    """A random bearer token, shown once."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What is stored for a token: tokens are 256-bit random, so one SHA-256 suffices."""
    return hashlib.sha256(token.encode()).hexdigest()


def mask_phone(e164: str) -> str:
    """Mask an E.164 number for display and logs: '+6281234567890' -> '+62812****7890'."""
    if not re.fullmatch(r"\+\d{9,15}", e164):
        # Anything unexpected is hidden completely rather than partially leaked.
        return "****"
    # Keep at most 6 leading and 4 trailing characters, but always hide at least 4 digits,
    # so short numbers (e.g. 8-digit Singapore mobiles) are not nearly fully revealed.
    head = min(6, len(e164) - 8)
    return f"{e164[:head]}****{e164[-4:]}"
