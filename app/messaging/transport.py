"""A lean HTTP/1.1 keep-alive transport for the Graph API, and the client built on it.

httpcore cost about 1-1.5 ms of CPU per request, which made 1,000 sends/s per worker
unreachable; asyncio streams plus h11 do the same work for a fraction of that. It raises httpx's
own exceptions, so send classification (app.messaging.client) is unchanged, and behind a proxy
httpx's transport is used instead.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ssl
import sys
import time
import urllib.request

import h11
import httpx

from app.config import Settings
from app.messaging.client import build_http_client

# httpcore (and httpx's ASGITransport, which the sandbox's in-process transport is) run
# `import sniffio` on every request to detect trio. anyio 4 no longer installs sniffio, and a
# failed import is not cached: each request would rescan sys.path (~0.4 ms of CPU). A None
# entry is Python's way to record "not installed".
if importlib.util.find_spec("sniffio") is None:
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

_DEFAULTS = Settings.model_fields
_READ_CHUNK = 65536
KEEPALIVE_EXPIRY_SECONDS = 4.0


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
