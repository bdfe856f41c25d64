"""Who the sandbox pretends to be, and when it stands in for Meta.

Light on purpose (settings and constants only): the webhook verifier and the worker's wiring
read it without loading the fake itself or Meta's spec validator.
"""

from __future__ import annotations

import secrets

from app.config import Settings
from app.messaging.client import GraphConfig

SANDBOX_PHONE_NUMBER_ID = "100000000000001"
SANDBOX_WABA_ID = "100000000000002"
SANDBOX_ACCESS_TOKEN = "sandbox-token"
SANDBOX_DISPLAY_NUMBER = "15550001234"
# Signs the sandbox's status webhooks when no app secret is configured. Public on purpose:
# it only ever protects the local fake, never a real Meta app.
DEV_WEBHOOK_SECRET = b"pengingat-spi-sandbox-app-secret"
# Where serve mounts its sandbox, for workers in other processes.
GRAPH_MOUNT = "/sandbox/graph"
# In production the public secret above would let anyone forge a MULAI. The in-process sandbox
# and the verifier live in one process, so a secret drawn at start-up serves both.
_PRODUCTION_SECRET = secrets.token_bytes(32)

BANNER = "MODE SANDBOX: pesan tidak dikirim ke WhatsApp"
REFUSAL = (
    "SPI_ENV=production without Meta credentials: set SPI_WHATSAPP_ACCESS_TOKEN, "
    "SPI_WHATSAPP_PHONE_NUMBER_ID, SPI_WHATSAPP_WABA_ID and SPI_WHATSAPP_APP_SECRET, "
    "or SPI_SANDBOX_IN_PRODUCTION=true to run the sandbox on purpose (nothing reaches WhatsApp)"
)
STANDALONE_REFUSAL = (
    "SPI_SANDBOX_IN_PRODUCTION runs the sandbox inside `serve` only, where its routes need an "
    "admin: run serve with SPI_WORKER_ENABLED=true instead of a separate worker or sandbox"
)


class SandboxRefused(RuntimeError):
    """Production would run the sandbox without the operator having asked for it."""


def sandbox_active(settings: Settings) -> bool:
    """The sandbox stands in for Meta exactly when no access token is configured."""
    return not settings.whatsapp_access_token.get_secret_value()


def in_production(settings: Settings) -> bool:
    """The sandbox stands in for Meta in a production process (banner, admin-only routes)."""
    return settings.env == "production" and sandbox_active(settings)


def check_startup(settings: Settings, *, standalone: bool = False) -> None:
    """Refuse production without Meta credentials unless SPI_SANDBOX_IN_PRODUCTION is set.

    `standalone`: a worker or sandbox in its own process, which cannot require an admin for
    the sandbox's routes, so production refuses it even with the flag.
    """
    if not in_production(settings):
        return
    if not settings.sandbox_in_production:
        raise SandboxRefused(REFUSAL)
    if standalone:
        raise SandboxRefused(STANDALONE_REFUSAL)


def webhook_secret(settings: Settings) -> bytes:
    """The key of X-Hub-Signature-256 (HMAC-SHA256 of the raw body), for sender and verifier.

    The Meta app secret when set. Without it: in the sandbox DEV_WEBHOOK_SECRET, or in
    production a secret drawn at start-up; with real credentials b"", meaning nothing can be
    verified and every POST must be refused (opening the Meta messenger logs that
    misconfiguration at start-up).
    """
    secret = settings.whatsapp_app_secret.get_secret_value()
    if secret:
        return secret.encode()
    if not sandbox_active(settings):
        return b""
    return _PRODUCTION_SECRET if settings.env == "production" else DEV_WEBHOOK_SECRET


def graph_config(settings: Settings, base_url: str) -> GraphConfig:
    """The client configuration that addresses the sandbox at base_url."""
    return GraphConfig(
        base_url=base_url,
        api_version=settings.graph_api_version,
        phone_number_id=SANDBOX_PHONE_NUMBER_ID,
        waba_id=SANDBOX_WABA_ID,
        access_token=SANDBOX_ACCESS_TOKEN,
    )
