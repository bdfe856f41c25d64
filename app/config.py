"""Settings read from the environment (prefix SPI_) or a .env file."""

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("data")


class Settings(BaseSettings):
    """Every setting of the service; README and .env.example document each one."""

    model_config = SettingsConfigDict(env_prefix="SPI_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = False

    institution_name: str = "Pemerintah Kota Contoh"
    privacy_notice_version: str = "2026-1"
    allowed_phone_regions: str = "ID"

    # Comma-separated Fernet keys, newest first; the first one encrypts, all of them decrypt.
    encryption_keys: SecretStr = SecretStr("")
    blind_index_key: SecretStr = SecretStr("")

    max_json_body_bytes: int = 64 * 1024
    max_import_bytes: int = 20 * 1024 * 1024
    import_batch_size: int = 1000

    # WhatsApp Cloud API; with no access token the built-in sandbox stands in for Meta.
    whatsapp_access_token: SecretStr = SecretStr("")
    whatsapp_phone_number_id: str = ""
    whatsapp_waba_id: str = ""
    whatsapp_app_secret: SecretStr = SecretStr("")
    whatsapp_verify_token: SecretStr = SecretStr("")
    graph_base_url: str = "https://graph.facebook.com"
    graph_api_version: str = "v23.0"

    scheduler_enabled: bool = True
    worker_enabled: bool = True

    audit_retention_days: int = Field(default=365, ge=1)

    # Statistics: counts from 1 to k-1 are withheld. k >= 3, since "<2" would mean exactly 1.
    stats_min_cell: int = Field(default=5, ge=3)
    # Bearer token for /metrics; empty = only loopback clients may read it.
    metrics_token: SecretStr = SecretStr("")
    # A replacement for app/webhook/replies_id.yaml (every key must be present).
    webhook_replies_file: Path | None = None

    @property
    def resolved_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file under data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'pengingat-spi.db').as_posix()}"

    @property
    def key_file(self) -> Path:
        """Where the embedded default keeps the keys it generated on first run."""
        return self.data_dir / "keys.json"

    @property
    def phone_regions(self) -> frozenset[str]:
        """Regions whose mobile numbers may be enrolled."""
        return frozenset(
            r.strip().upper() for r in self.allowed_phone_regions.split(",") if r.strip()
        )


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
