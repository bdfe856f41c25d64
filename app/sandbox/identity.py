"""Who the sandbox pretends to be, and when it stands in for Meta.

Light on purpose (settings and constants only): the webhook verifier and the worker's wiring
read it without loading the fake itself or Meta's spec validator.
"""

from __future__ import annotations

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


def sandbox_active(settings: Settings) -> bool:
    """The sandbox stands in for Meta exactly when no access token is configured."""
    return not settings.whatsapp_access_token.get_secret_value()


def webhook_secret(settings: Settings) -> bytes:
    """The key of X-Hub-Signature-256 (HMAC-SHA256 of the raw body), for sender and verifier.

    The Meta app secret when set. Without it: DEV_WEBHOOK_SECRET in the sandbox, and b""
    with real credentials, meaning nothing can be verified and every POST must be refused
    (opening the Meta messenger logs that misconfiguration at start-up).
    """
    secret = settings.whatsapp_app_secret.get_secret_value()
    if secret:
        return secret.encode()
    return DEV_WEBHOOK_SECRET if sandbox_active(settings) else b""


def graph_config(settings: Settings, base_url: str) -> GraphConfig:
    """The client configuration that addresses the sandbox at base_url."""
    return GraphConfig(
        base_url=base_url,
        api_version=settings.graph_api_version,
        phone_number_id=SANDBOX_PHONE_NUMBER_ID,
        waba_id=SANDBOX_WABA_ID,
        access_token=SANDBOX_ACCESS_TOKEN,
    )
