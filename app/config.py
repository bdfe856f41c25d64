"""Settings read from the environment (prefix SPI_) or a .env file."""

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Relative to the current directory, like `.env`: run commands where the data lives, or set an
# absolute SPI_DATA_DIR (the image does). `spi-reminder config` prints the absolute path.
DEFAULT_DATA_DIR = Path("data")


class Settings(BaseSettings):
    """Every setting of the service; README and .env.example document each one."""

    model_config = SettingsConfigDict(env_prefix="SPI_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # Proxies whose X-Forwarded-Proto/-For are believed (IPs or networks, comma-separated; "*" any,
    # empty none): behind TLS ending at one of them, session cookies are Secure.
    forwarded_allow_ips: str = "127.0.0.1"
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
    # Rows per batch: 2,500 measured fastest on both databases with peak RSS well under 200 MB.
    import_batch_size: int = Field(default=2500, ge=1)
    # What one spreadsheet may unpack to (app/enrolment/limits.py); over a bound is a 413.
    import_max_rows: int = Field(default=50_000, ge=1)
    import_max_columns: int = Field(default=256, ge=4)
    import_max_cell_chars: int = Field(default=2_000, ge=100)
    import_max_line_chars: int = Field(default=64 * 1024, ge=1024)
    import_max_xlsx_bytes: int = Field(default=128 * 1024 * 1024, ge=1024 * 1024)
    import_max_xlsx_part_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024)
    import_max_xlsx_parts: int = Field(default=1_000, ge=10)
    import_max_shared_strings: int = Field(default=500_000, ge=1_000)

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

    # Sending, per number (all workers together on PostgreSQL): Meta's default throughput is 80
    # messages/s per number; 0 = unlimited.
    send_rate_per_second: float = Field(default=80.0, ge=0)
    # Deliveries in flight per worker, from the `sending` mark to the recorded answer (the pool
    # is sized to it): each holds its place about 150 ms of Graph round trip plus about 90 ms of
    # its own (two grouped writes), so 1,000 msg/s needs about 240; 384 leaves a margin.
    send_concurrency: int = Field(default=384, ge=1)
    # The number's throughput level at Meta (80 by default, 20 coexistence, up to 1,000), shared
    # by all workers through the database; 0 = not known (SPI_SEND_RATE_PER_SECOND alone then).
    throughput_per_second: float = Field(default=0.0, ge=0)
    graph_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    graph_read_timeout_seconds: float = Field(default=20.0, gt=0)

    # The outbox worker.
    worker_batch_size: int = Field(default=500, ge=1)  # most deliveries claimed at once
    # With a rate limit: claim about this many seconds of sending at once.
    worker_batch_seconds: float = Field(default=1.0, gt=0)
    # A claim older than this is a dead worker's: its deliveries become `unknown`.
    worker_lease_seconds: float = Field(default=120.0, gt=0)
    worker_poll_seconds: float = Field(default=1.0, gt=0)  # sleep when nothing is due
    # Attempts before failing for good (about 1 h of backoff, capped at 15 min).
    worker_max_attempts: int = Field(default=12, ge=1)

    # The local sandbox that stands in for Meta without credentials. In production it runs only
    # when asked for (then with a banner on every page and admin-only /sandbox/* routes).
    sandbox_in_production: bool = False
    sandbox_url: str = ""  # a standalone `spi-reminder sandbox serve`; empty = in-process
    # Where the sandbox posts status webhooks: unset = this service's own, empty = nowhere.
    sandbox_webhook_url: str | None = None
    sandbox_status_delay_seconds: float = Field(default=0.5, ge=0)
    sandbox_latency_ms: float = Field(default=0.0, ge=0)
    sandbox_throttle_burst: int = Field(default=0, ge=0)
    sandbox_error_rate: float = Field(default=0.0, ge=0, le=1)
    sandbox_timeout_rate: float = Field(default=0.0, ge=0, le=1)
    sandbox_hang_seconds: float = Field(default=60.0, ge=0)
    sandbox_failed_share: float = Field(default=0.0, ge=0, le=1)
    # A status webhook answered 5xx or not answered is posted again (Meta retries for days).
    sandbox_webhook_retries: int = Field(default=5, ge=0)
    sandbox_webhook_retry_seconds: float = Field(default=1.0, gt=0)  # doubles per retry
    # Share of sandbox sends never delivered (TTL passed): only `sent`, then silence.
    sandbox_undelivered_share: float = Field(default=0.0, ge=0, le=1)

    audit_retention_days: int = Field(default=365, ge=1)

    # Statistics (docs/privacy.md): OPDs with fewer people listed are published only together.
    stats_group_min: int = Field(default=10, ge=2)
    # Bearer token for /metrics; empty = only loopback clients may read it.
    metrics_token: SecretStr = SecretStr("")
    # A replacement for app/webhook/replies_id.yaml (every key must be present).
    webhook_replies_file: Path | None = None
    # The business number people message (digits, country code first, e.g. 6281100000000): the
    # console's self-enrolment poster links to wa.me/<number>. Meta's phone-number id is not it.
    whatsapp_display_number: str = ""

    # Pre-flight (`spi-reminder doctor`): the Meta app's id (with the app secret, reads which
    # webhook fields the app subscribes to) and the public URL Meta calls the webhook at.
    whatsapp_app_id: str = ""
    public_webhook_url: str = ""
    # What the sandbox reports as the number's limits: unique people per moving 24 h
    # (0 = unlimited) and messages per second; with enforce, it also refuses like Meta beyond them.
    sandbox_messaging_limit: int = Field(default=250, ge=0)
    sandbox_throughput_per_second: int = Field(default=80, ge=1)
    sandbox_enforce_limits: bool = False

    # Rounds plan under Meta's messaging limit as the sender last read it (unique people per
    # moving 24 h; a new portfolio's 250 until read), at most the safety share of it. A value
    # here is the operator's lower ceiling; 0 plans with no limit (benchmarks only).
    messaging_limit: int | None = Field(default=None, ge=0)
    messaging_limit_safety_share: float = Field(default=0.8, gt=0, le=1)
    # No send starts this close to a campaign's send_end (a reminder must reach the phone inside
    # its window); one still undelivered this long after the window closed counts as expired.
    send_closing_margin_minutes: int = Field(default=15, ge=0)
    delivery_expiry_grace_minutes: int = Field(default=30, ge=0)
    # Rupiah per delivered template message by Meta's category, and the date of that rate card
    # (app/campaigns/costs.py says where the default comes from; replace it before budgeting).
    message_rates_idr: str = "utility=320,marketing=658,authentication=480"
    message_rates_date: str = "2024-10-01"
    # Development only: the service's clock reads this time when the process starts and runs
    # on from there, so that a demo (or the README's examples) can send inside a send window.
    clock_at: datetime | None = None

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("clock_at")
    @classmethod
    def _clock_only_in_development(
        cls, value: datetime | None, info: ValidationInfo
    ) -> datetime | None:
        if value is None:
            return None
        if info.data.get("env") == "production":
            raise ValueError("is for development only; leave it empty in production")
        if value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-12-07T09:30:00+07:00")
        return value

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
