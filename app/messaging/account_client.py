"""Graph API calls about the sender rather than a message: its number, token, webhook and
templates. Each raises GraphApiError (with the classified answer) when Meta refuses."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from app.messaging.client import (
    GraphApiError,
    GraphConfig,
    WhatsAppClient,
    answered_payload,
    build_http_client,
)
from app.messaging.health import (
    PHONE_FIELDS,
    AppSubscription,
    Permissions,
    PhoneHealth,
    TemplateCreated,
    read_app_subscription,
    read_permissions,
    read_phone_health,
    read_subscribed_app_ids,
    read_template_created,
)
from app.messaging.results import (
    SendOutcome,
    SendResult,
    classify_transport_error,
)
from app.messaging.wire import (
    app_subscriptions_path,
    graph_object_path,
    permissions_path,
    subscribed_apps_path,
    templates_path,
)

HANDSHAKE_TIMEOUT_SECONDS = 10.0


class AccountClient(WhatsAppClient):
    """The WhatsApp client plus reads and writes of the account (same token, same host)."""

    async def phone_health(self) -> PhoneHealth:
        """GET /{phone-number-id}: messaging limit, throughput, quality, name, registration."""
        path = graph_object_path(self.config.api_version, self.config.phone_number_id)
        return read_phone_health(await self._call("GET", path, {"fields": ",".join(PHONE_FIELDS)}))

    async def permissions(self) -> Permissions:
        """GET /me/permissions: whether the token may send and manage the account."""
        return read_permissions(await self._call("GET", permissions_path(self.config.api_version)))

    async def subscribed_app_ids(self) -> list[str]:
        """GET /{WABA-ID}/subscribed_apps: apps that receive this account's webhooks."""
        path = subscribed_apps_path(self.config.api_version, self.config.waba_id)
        return read_subscribed_app_ids(await self._call("GET", path))

    async def app_subscription(self, *, app_id: str, app_secret: str) -> AppSubscription | None:
        """GET /{App-ID}/subscriptions with the app's own token: callback URL and fields."""
        path = app_subscriptions_path(self.config.api_version, app_id)
        # An app token, in the header so that it never appears in a URL or a log line.
        payload = await self._call("GET", path, bearer=f"{app_id}|{app_secret}", sign=False)
        return read_app_subscription(payload)

    async def create_template(self, body: dict[str, Any]) -> TemplateCreated:
        """POST /{WABA-ID}/message_templates: submit a template for Meta's review."""
        path = templates_path(self.config.api_version, self.config.waba_id)
        return read_template_created(await self._call("POST", path, json=body))

    async def _call(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        *,
        json: dict[str, Any] | None = None,
        bearer: str | None = None,
        sign: bool = True,
    ) -> Any:
        url = httpx.URL(self._base + path, params=params or {})
        headers = self._headers()
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            response = await self._http.request(
                method, self._signed(url) if sign else url, headers=headers, json=json
            )
        except httpx.TransportError as exc:
            raise GraphApiError(classify_transport_error(exc)) from exc
        payload = answered_payload(response)
        if not isinstance(payload, dict):
            raise GraphApiError(
                SendResult(SendOutcome.UNKNOWN, "unparseable_answer", http_status=200)
            )
        return payload


@dataclass(frozen=True, slots=True)
class HandshakeResult:
    """Whether a callback URL answered Meta's verification GET as Meta expects."""

    ok: bool
    http_status: int | None
    reason: str  # answered, wrong_answer, refused, unreachable


async def answer_handshake(
    *, url: str, verify_token: str, transport: httpx.AsyncBaseTransport | None = None
) -> HandshakeResult:
    """GET url?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…, as Meta does on setup.

    It passes when the body is exactly the challenge. The token travels in the query (Meta's
    protocol), so the request goes straight to a transport: httpx's client would log its URL.
    """
    challenge = str(secrets.randbelow(10**9))
    params = {"hub.mode": "subscribe", "hub.verify_token": verify_token, "hub.challenge": challenge}
    own = transport is None
    sender = transport or httpx.AsyncHTTPTransport()
    try:
        request = httpx.Request("GET", url, params=params)
        request.extensions["timeout"] = httpx.Timeout(HANDSHAKE_TIMEOUT_SECONDS).as_dict()
        response = await sender.handle_async_request(request)
        try:
            body = (await response.aread()).decode("utf-8", "replace")
        finally:
            await response.aclose()
    except (httpx.HTTPError, ValueError):
        return HandshakeResult(False, None, "unreachable")
    finally:
        if own:
            await sender.aclose()
    if response.status_code != 200:
        return HandshakeResult(False, response.status_code, "refused")
    if body.strip() != challenge:
        return HandshakeResult(False, 200, "wrong_answer")
    return HandshakeResult(True, 200, "answered")


@contextlib.asynccontextmanager
async def account_client_for(config: GraphConfig) -> AsyncIterator[AccountClient]:
    """A short-lived client for a few account calls (a scheduled reading, the pre-flight)."""
    async with build_http_client(
        base_url=config.base_url, connect_timeout=10.0, read_timeout=30.0, max_connections=2
    ) as http:
        yield AccountClient(http, config)
