"""The process-wide WhatsApp client: Meta's Graph API, or the local sandbox without credentials."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import ssl
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

import h11
import httpx
from fastapi import FastAPI

from app.config import Settings
from app.messaging.client import GraphConfig, WhatsAppClient, build_http_client
from app.messaging.ratelimit import TokenBucket
from app.messaging.results import SendOutcome, SendResult
from app.sandbox.fake_graph import (
    SANDBOX_ACCESS_TOKEN,
    SANDBOX_PHONE_NUMBER_ID,
    SANDBOX_WABA_ID,
    SandboxGraph,
    TimeoutASGITransport,
)

logger = logging.getLogger(__name__)

# httpcore (and httpx's ASGITransport) run `import sniffio` on every request to detect trio.
# anyio 4 no longer installs sniffio, and a failed import is not cached: each request would
# rescan sys.path (~0.4 ms of CPU). A None entry is Python's way to record "not installed".
if importlib.util.find_spec("sniffio") is None:
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

_DEFAULTS = Settings.model_fields
# Signs the sandbox's status webhooks when no app secret is configured. Public on purpose:
# it only ever protects the local fake, never a real Meta app.
DEV_WEBHOOK_SECRET = b"pengingat-spi-sandbox-app-secret"
# Extra connections so webhook replies never wait behind a full pool of reminders.
REPLY_CONNECTIONS = 4
_READ_CHUNK = 65536
KEEPALIVE_EXPIRY_SECONDS = 4.0
THROTTLE_HOLD_SECONDS = 1.0
RECHECK_SECONDS = 0.5
# Codes that mean the whole sender is over a limit, so every send should pause a moment.
_SENDER_THROTTLE_CODES = frozenset({4, 80007, 130429, 131057})


def sandbox_active(settings: Settings) -> bool:
    """The sandbox stands in for Meta exactly when no access token is configured."""
    return not settings.whatsapp_access_token.get_secret_value()


def webhook_secret(settings: Settings) -> bytes:
    """The key of X-Hub-Signature-256 (HMAC-SHA256 of the raw body), for sender and verifier.

    The Meta app secret when set. Without it: DEV_WEBHOOK_SECRET in the sandbox, and b""
    with real credentials, meaning nothing can be verified and every POST must be refused
    (open_messenger logs that misconfiguration at start-up).
    """
    secret = settings.whatsapp_app_secret.get_secret_value()
    if secret:
        return secret.encode()
    return DEV_WEBHOOK_SECRET if sandbox_active(settings) else b""


class _Connection:
    """One keep-alive HTTP/1.1 connection."""

    __slots__ = ("h11", "idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(our_role=h11.CLIENT)
        self.idle_since = 0.0

    def reusable(self) -> bool:
        # A request on a connection the server has meanwhile dropped ends as `unknown`
        # (it may have left), so only fresh idle connections are reused: like httpx's
        # keepalive_expiry, and shorter than common server keep-alive timeouts (uvicorn 5 s).
        # An idle connection the server closed also shows EOF here (the loop has read it).
        return (
            self.h11.our_state is h11.IDLE
            and time.monotonic() - self.idle_since < KEEPALIVE_EXPIRY_SECONDS
            and not self.writer.is_closing()
            and not self.reader.at_eof()
        )

    def close(self) -> None:
        self.writer.close()


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """A lean HTTP/1.1 keep-alive transport for the Graph API (asyncio streams + h11).

    httpcore spends about 1 ms of CPU per request on a small machine, several times the
    cost of the request itself; this transport does the same job for a fixed origin at a
    fraction of it. It raises httpx's own exceptions with httpcore's meaning, which the
    send classification depends on: Connect*/PoolTimeout only before anything was
    written, Write*/Read*/RemoteProtocolError once the request may have left.
    """

    def __init__(self, *, max_connections: int, ssl_context: ssl.SSLContext | None = None):
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._ssl = ssl_context

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise httpx.PoolTimeout("no free connection", request=request) from exc
        conn: _Connection | None = None
        try:
            conn = await self._connect(origin, request, timeouts.get("connect"))
            status, headers, body = await self._exchange(conn, request, timeouts)
            if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
                conn.h11.start_next_cycle()
                conn.idle_since = time.monotonic()
                self._idle.setdefault(origin, []).append(conn)
                conn = None
            return httpx.Response(
                status,
                headers=headers,
                content=body,
                request=request,
                extensions={"http_version": b"HTTP/1.1"},
            )
        finally:
            if conn is not None:
                conn.close()
            self._slots.release()

    async def _connect(
        self, origin: tuple[str, str, int], request: httpx.Request, timeout: float | None
    ) -> _Connection:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.reusable():
                return conn
            conn.close()
        scheme, host, port = origin
        tls = scheme == "https"
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    ssl=(self._ssl or httpx.create_ssl_context()) if tls else None,
                    server_hostname=host if tls else None,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout("connect timed out", request=request) from exc
        except OSError as exc:
            raise httpx.ConnectError(
                f"cannot connect ({type(exc).__name__})", request=request
            ) from exc
        return _Connection(reader, writer)

    async def _exchange(
        self, conn: _Connection, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        h = conn.h11
        body = await request.aread()
        head = h11.Request(
            method=request.method, target=request.url.raw_path, headers=request.headers.raw
        )
        data = h.send(head) or b""
        if body:
            data += h.send(h11.Data(data=body)) or b""
        data += h.send(h11.EndOfMessage()) or b""
        try:
            conn.writer.write(data)
            if conn.writer.transport.get_write_buffer_size():
                async with asyncio.timeout(timeouts.get("write")):
                    await conn.writer.drain()
        except TimeoutError as exc:
            raise httpx.WriteTimeout("write timed out", request=request) from exc
        except OSError as exc:
            raise httpx.WriteError(f"write failed ({type(exc).__name__})", request=request) from exc
        status, headers, chunks = 0, [], []
        try:
            while True:
                event = h.next_event()
                if event is h11.NEED_DATA:
                    async with asyncio.timeout(timeouts.get("read")):
                        h.receive_data(await conn.reader.read(_READ_CHUNK))
                elif isinstance(event, h11.Response):
                    status, headers = event.status_code, list(event.headers)
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    return status, headers, b"".join(chunks)
                elif isinstance(event, h11.ConnectionClosed):
                    raise httpx.RemoteProtocolError("server closed the connection", request=request)
        except TimeoutError as exc:
            raise httpx.ReadTimeout("read timed out", request=request) from exc
        except h11.RemoteProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except OSError as exc:
            raise httpx.ReadError(f"read failed ({type(exc).__name__})", request=request) from exc

    async def aclose(self) -> None:
        """Close every idle connection."""
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


def graph_http_client(base_url: str, *, timeout: httpx.Timeout, pool: int) -> httpx.AsyncClient:
    """The shared AsyncClient: KeepAliveTransport, or httpx's own when a proxy is configured."""
    host = httpx.URL(base_url).host
    if urllib.request.getproxies() and not urllib.request.proxy_bypass(host):
        # Proxies are httpx's job; pay its CPU cost rather than reimplement CONNECT.
        return build_http_client(
            base_url=base_url,
            connect_timeout=timeout.connect or _DEFAULTS["graph_connect_timeout_seconds"].default,
            read_timeout=timeout.read or _DEFAULTS["graph_read_timeout_seconds"].default,
            max_connections=pool,
        )
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout,
        transport=KeepAliveTransport(max_connections=pool),
        follow_redirects=False,
    )


class Messenger:
    """What app.state.whatsapp holds: the client, the shared limiter and the sandbox if any."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        client: WhatsAppClient,
        limiter: TokenBucket,
        concurrency: int,
        sandbox: SandboxGraph | None = None,
    ) -> None:
        self.http = http
        self.client = client
        self.limiter = limiter
        self.concurrency = concurrency
        self.sandbox = sandbox

    @property
    def is_sandbox(self) -> bool:
        """Whether sends go to a sandbox rather than Meta."""
        return self.client.config.access_token == SANDBOX_ACCESS_TOKEN

    async def send_reply(self, *, to: str, body: str) -> SendResult:
        """Send a free-form text reply; it passes every waiting reminder in the limiter."""
        await self.limiter.acquire(priority=True)
        return self._observe(await self.client.send_text(to=to, body=body))

    async def send_reminder(
        self,
        *,
        to: str,
        template_name: str,
        language: str,
        parameters: Sequence[str],
        callback_data: str,
        still_wanted: Callable[[], bool] | None = None,
    ) -> SendResult | None:
        """Send one template when the limiter allows; None if still_wanted() said no by then."""
        while not self.limiter.try_acquire():
            try:
                async with asyncio.timeout(RECHECK_SECONDS):
                    await self.limiter.acquire()
                break
            except TimeoutError:
                # A long wait (a hold after 130429): let a stopping worker give the slot up.
                if still_wanted is not None and not still_wanted():
                    return None
        if still_wanted is not None and not still_wanted():
            self.limiter.refund()
            return None
        result = await self.client.send_template(
            to=to,
            template_name=template_name,
            language=language,
            parameters=parameters,
            callback_data=callback_data,
        )
        return self._observe(result)

    def _observe(self, result: SendResult) -> SendResult:
        sender_wide = result.error_code in _SENDER_THROTTLE_CODES or result.reason == "http_429"
        if result.outcome is SendOutcome.RETRY and sender_wide and not result.per_recipient:
            self.limiter.hold(result.retry_after_seconds or THROTTLE_HOLD_SECONDS)
        return result

    async def aclose(self) -> None:
        """Close the HTTP client (and stop a sandbox this messenger started)."""
        await self.http.aclose()
        if self.sandbox is not None:
            await self.sandbox.aclose()


def _limits(settings: Settings) -> tuple[TokenBucket, int, httpx.Timeout]:
    rate = settings.send_rate_per_second
    concurrency = settings.send_concurrency
    connect = settings.graph_connect_timeout_seconds
    read = settings.graph_read_timeout_seconds
    timeout = httpx.Timeout(connect=connect, read=read, write=read, pool=read)
    return TokenBucket(rate), concurrency, timeout


def _sandbox_config(settings: Settings, base_url: str) -> GraphConfig:
    return GraphConfig(
        base_url=base_url,
        api_version=settings.graph_api_version,
        phone_number_id=SANDBOX_PHONE_NUMBER_ID,
        waba_id=SANDBOX_WABA_ID,
        access_token=SANDBOX_ACCESS_TOKEN,
    )


async def open_messenger(
    settings: Settings,
    *,
    sandbox: SandboxGraph | None = None,
    webhook_app: Any = None,
    fallback_sandbox_url: str = "",
) -> Messenger:
    """Build the messenger: Meta with a token; else a standalone sandbox if a URL is known
    (SPI_SANDBOX_URL, or fallback_sandbox_url); else an in-process sandbox whose status
    webhooks go to webhook_app's /webhook/whatsapp."""
    limiter, concurrency, timeout = _limits(settings)
    pool = concurrency + REPLY_CONNECTIONS

    def pooled(base_url: str) -> httpx.AsyncClient:
        return graph_http_client(base_url, timeout=timeout, pool=pool)

    if not sandbox_active(settings):
        if not settings.whatsapp_app_secret.get_secret_value():
            logger.error("whatsapp.no_app_secret: status webhooks cannot be verified")
        config = GraphConfig(
            base_url=settings.graph_base_url,
            api_version=settings.graph_api_version,
            phone_number_id=settings.whatsapp_phone_number_id,
            waba_id=settings.whatsapp_waba_id,
            access_token=settings.whatsapp_access_token.get_secret_value(),
            app_secret=settings.whatsapp_app_secret.get_secret_value() or None,
        )
        http = pooled(config.base_url)
        logger.info("whatsapp.meta api=%s concurrency=%d", config.api_version, concurrency)
        return Messenger(
            http=http, client=WhatsAppClient(http, config), limiter=limiter, concurrency=concurrency
        )

    url = settings.sandbox_url or fallback_sandbox_url
    if url:
        http = pooled(url)
        logger.info("whatsapp.sandbox standalone url=%s", url)
        return Messenger(
            http=http,
            client=WhatsAppClient(http, _sandbox_config(settings, url)),
            limiter=limiter,
            concurrency=concurrency,
        )

    if sandbox is None:
        sandbox = SandboxGraph(secret=webhook_secret(settings))
    if webhook_app is not None:
        await sandbox.start(
            webhook_url="http://service.local/webhook/whatsapp",
            transport=httpx.ASGITransport(app=webhook_app),
        )
    else:
        await sandbox.start(webhook_url=None)
    base = "http://sandbox.local"
    http = httpx.AsyncClient(
        base_url=base,
        transport=TimeoutASGITransport(sandbox.asgi_app(), read_timeout=timeout.read or 1.0),
        timeout=timeout,
    )
    logger.info("whatsapp.sandbox in-process (no Meta credentials configured)")
    return Messenger(
        http=http,
        client=WhatsAppClient(http, _sandbox_config(settings, base)),
        limiter=limiter,
        concurrency=concurrency,
        sandbox=sandbox,
    )


async def open_client(app: FastAPI) -> Messenger:
    """Create the shared httpx client and WhatsApp client for this process."""
    return await open_messenger(
        app.state.settings, sandbox=getattr(app.state, "sandbox", None), webhook_app=app
    )


async def close_client(handle: object | None) -> None:
    """Close what open_client created."""
    if isinstance(handle, Messenger):
        await handle.aclose()
