"""A local fake of Meta's Graph API: accepts sends, returns wamids, posts signed statuses.

It speaks Meta's wire format (request bodies validated against Meta's spec, Meta-shaped
errors and webhooks) so the real client, worker and webhook run unchanged against it.
State lives in memory: it is a development and test double, never a store of record.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import random
import re
import secrets
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.messaging import spec
from app.messaging.wire import MAX_CALLBACK_DATA_CHARS, require_e164
from app.sandbox import inbox
from app.security import mask_phone

logger = logging.getLogger(__name__)

SANDBOX_PHONE_NUMBER_ID = "100000000000001"
SANDBOX_WABA_ID = "100000000000002"
SANDBOX_ACCESS_TOKEN = "sandbox-token"
SANDBOX_DISPLAY_NUMBER = "15550001234"
NOT_ON_WHATSAPP = 131026
MAX_STATUSES_PER_POST = 100
_VALIDATION_CACHE_SIZE = 256
_MESSAGES_PATH = re.compile(r"/(?P<version>[^/]+)/(?P<phone_number_id>[^/]+)/messages")

# Turns template name, language and body parameters into the text the person would read.
Renderer = Callable[[str, str, list[str]], str | None]


@dataclass
class Faults:
    """How the fake misbehaves; every field can be changed at run time (POST /sandbox/faults)."""

    latency_ms: float = 0.0  # delay before every answer (after the message was taken)
    throttle_burst: int = 0  # answer the next N sends with 130429
    error_rate: float = 0.0  # share of sends answered with HTTP 503 before taking them
    timeout_rate: float = 0.0  # share taken but answered only after hang_seconds
    hang_seconds: float = 60.0
    failed_share: float = 0.0  # share of taken sends that later fail with 131026
    status_delay_seconds: float = 0.5  # from answer to the sent/delivered webhooks

    def update(self, changes: dict[str, Any]) -> None:
        """Apply known fields from a JSON object; unknown keys raise ValueError."""
        known = {f.name: f.type for f in fields(self)}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r}")
            cast = int if key == "throttle_burst" else float
            setattr(self, key, cast(value))


def graph_error(
    status: int, code: int, message: str, *, details: str = "", subcode: int | None = None
) -> tuple[int, dict[str, Any]]:
    """A Graph error answer shaped like Meta's: (HTTP status, body)."""
    error: dict[str, Any] = {
        "message": f"(#{code}) {message}",
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details or message},
        "fbtrace_id": secrets.token_urlsafe(12),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return status, {"error": error}


def sign(secret: bytes, raw: bytes) -> str:
    """X-Hub-Signature-256 value for a raw webhook body."""
    return "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()


class _BodyChecker:
    """Validates bodies against Meta's spec, once per shape.

    Reminders of one round differ only in `to` and the callback tag, both plain strings in
    Meta's schema; those are checked per message, the rest once per distinct shape. This
    keeps the fake fast enough for the dispatch benchmark without weakening the check.
    """

    def __init__(self) -> None:
        self._known: dict[str, list[str]] = {}

    def errors(self, body: Any) -> list[str]:
        if not isinstance(body, dict):
            return ["(root): body must be a JSON object"]
        to, tag = body.get("to"), body.get("biz_opaque_callback_data")
        shape = json.dumps(
            {k: v for k, v in body.items() if k not in ("to", "biz_opaque_callback_data")},
            sort_keys=True,
        )
        found = self._known.get(shape)
        if found is None:
            found = spec.validate_message_body(body)
            if len(self._known) >= _VALIDATION_CACHE_SIZE:
                self._known.clear()
            self._known[shape] = found
        problems = list(found)
        try:
            require_e164(to if isinstance(to, str) else "")
        except ValueError:
            problems.append("to: must be E.164 with a leading '+'")
        if tag is not None and (
            not isinstance(tag, str) or not 0 < len(tag) <= MAX_CALLBACK_DATA_CHARS
        ):
            problems.append("biz_opaque_callback_data: must be a string of 1..512 characters")
        return problems


class SandboxGraph:
    """The fake Graph API and its in-memory inbox and counters."""

    def __init__(
        self,
        *,
        secret: bytes,
        faults: Faults | None = None,
        phone_number_id: str = SANDBOX_PHONE_NUMBER_ID,
        waba_id: str = SANDBOX_WABA_ID,
        renderer: Renderer | None = None,
        inbox_size: int = 200,
        rng: random.Random | None = None,
    ) -> None:
        self.faults = faults or Faults()
        self.phone_number_id = phone_number_id
        self.waba_id = waba_id
        self._secret = secret
        self._renderer = renderer
        self._rng = rng or random.Random()
        self._checker = _BodyChecker()
        self.inbox: deque[inbox.InboxEntry] = deque(maxlen=inbox_size)
        self._by_wamid: dict[str, inbox.InboxEntry] = {}
        self._statuses: deque[tuple[float, dict[str, Any]]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._webhook: httpx.AsyncClient | None = None
        self._webhook_path = ""
        self._routes = Starlette(routes=self.sandbox_routes(), lifespan=self.lifespan)
        self.reset()

    def reset(self) -> None:
        """Forget every message and counter (faults are kept)."""
        self.requests = 0
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self.by_callback: Counter[str] = Counter()
        # Kept only in this process's memory, so duplicates per person can be counted.
        self.by_recipient: Counter[str] = Counter()
        self.webhooks_posted = 0
        self.webhooks_failed = 0
        self.inbox.clear()
        self._by_wamid.clear()
        self._statuses.clear()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(
        self, *, webhook_url: str | None, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        """Start posting status webhooks to webhook_url (None: keep statuses to itself)."""
        if self._flusher is not None:
            return
        if webhook_url:
            url = httpx.URL(webhook_url)
            self._webhook_path = url.raw_path.decode() or "/"
            self._webhook = httpx.AsyncClient(
                base_url=url.copy_with(raw_path=b"/"),
                transport=transport,
                timeout=httpx.Timeout(10.0),
            )
        self._wakeup = asyncio.Event()
        self._flusher = asyncio.create_task(
            self._flush_statuses(self._wakeup), name="sandbox-statuses"
        )

    async def aclose(self) -> None:
        """Stop posting webhooks."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        self._wakeup = None
        if self._webhook is not None:
            await self._webhook.aclose()
            self._webhook = None

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        """Starlette lifespan for the standalone process (webhook target set by the caller)."""
        yield
        await self.aclose()

    # -- the Graph API ---------------------------------------------------------------------

    async def post_message(
        self, *, authorization: str, phone_number_id: str, raw: bytes
    ) -> tuple[int, dict[str, Any]]:
        """POST /{version}/{phone_number_id}/messages: (HTTP status, JSON body)."""
        self.requests += 1
        if not authorization.startswith("Bearer "):
            return self._reject("no_token", graph_error(401, 190, "Invalid OAuth access token"))
        if phone_number_id != self.phone_number_id:
            return self._reject(
                "unknown_sender", graph_error(400, 100, "Unsupported post request", subcode=33)
            )
        try:
            body = json.loads(raw)
        except ValueError:
            return self._reject("bad_json", graph_error(400, 100, "Invalid parameter"))
        faults = self.faults
        if faults.throttle_burst > 0:
            faults.throttle_burst -= 1
            return self._reject(
                "throttled",
                graph_error(
                    400,
                    130429,
                    "Rate limit hit",
                    details="Cloud API message throughput has been reached.",
                    subcode=2494055,
                ),
            )
        if faults.error_rate and self._rng.random() < faults.error_rate:
            return self._reject("server_error", graph_error(503, 2, "Service unavailable"))
        problems = self._checker.errors(body)
        if problems:
            return self._reject(
                "invalid", graph_error(400, 100, "Invalid parameter", details="; ".join(problems))
            )
        answer = self._take(body)
        if faults.timeout_rate and self._rng.random() < faults.timeout_rate:
            await asyncio.sleep(faults.hang_seconds)
        elif faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        return 200, answer

    def _reject(self, why: str, answer: tuple[int, dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        self.rejected[why] += 1
        return answer

    def _take(self, body: dict[str, Any]) -> dict[str, Any]:
        to: str = body["to"]
        tag = body.get("biz_opaque_callback_data")
        wamid = "wamid." + base64.b64encode(secrets.token_bytes(24)).decode()
        self.accepted += 1
        self.by_recipient[to] += 1
        if isinstance(tag, str):
            self.by_callback[tag] += 1
        entry = self._inbox_entry(body, wamid)
        self.inbox.append(entry)
        self._by_wamid[wamid] = entry
        if len(self._by_wamid) > 4 * (self.inbox.maxlen or 1):
            live = {e.wamid for e in self.inbox}
            self._by_wamid = {w: e for w, e in self._by_wamid.items() if w in live}
        self._queue_statuses(to=to, wamid=wamid, tag=tag)
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
            "messages": [{"id": wamid}],
        }

    def _inbox_entry(self, body: dict[str, Any], wamid: str) -> inbox.InboxEntry:
        if body["type"] == "text":
            name, text = None, str(body["text"]["body"])
        else:
            template = body["template"]
            name = str(template["name"])
            params = [
                str(p.get("text", ""))
                for c in template.get("components", [])
                if c.get("type") == "body"
                for p in c.get("parameters", [])
            ]
            text = None
            if self._renderer is not None:
                try:
                    text = self._renderer(name, str(template["language"]["code"]), params)
                except Exception:
                    logger.debug("sandbox.render_failed template=%s", name, exc_info=True)
        return inbox.InboxEntry(
            at=datetime.now(UTC),
            masked=mask_phone(body["to"]),
            template=name,
            text=text,
            wamid=wamid,
        )

    # -- status webhooks -------------------------------------------------------------------

    def _queue_statuses(self, *, to: str, wamid: str, tag: str | None) -> None:
        if self._wakeup is None:
            return  # not started: nobody would ever deliver them
        due = time.monotonic() + self.faults.status_delay_seconds
        fails = bool(self.faults.failed_share) and self._rng.random() < self.faults.failed_share
        for kind in ("sent", "failed") if fails else ("sent", "delivered"):
            status: dict[str, Any] = {
                "id": wamid,
                "status": kind,
                "recipient_id": to.lstrip("+"),
            }
            if tag is not None:
                status["biz_opaque_callback_data"] = tag
            if kind == "sent":
                status["pricing"] = {
                    "billable": True,
                    "pricing_model": "PMP",
                    "type": "regular",
                    "category": "utility",
                }
            if kind == "failed":
                status["errors"] = [
                    {
                        "code": NOT_ON_WHATSAPP,
                        "title": "Message undeliverable",
                        "message": "Message undeliverable",
                        "error_data": {"details": "Message Undeliverable."},
                        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                    }
                ]
            self._statuses.append((due, status))
        self._wakeup.set()

    def status_payload(self, statuses: list[dict[str, Any]]) -> dict[str, Any]:
        """One webhook POST body carrying `statuses`, as Meta sends it."""
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self.waba_id,
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": SANDBOX_DISPLAY_NUMBER,
                                    "phone_number_id": self.phone_number_id,
                                },
                                "statuses": statuses,
                            },
                        }
                    ],
                }
            ],
        }

    async def _flush_statuses(self, wakeup: asyncio.Event) -> None:
        while True:
            if not self._statuses:
                wakeup.clear()
                await wakeup.wait()
                continue
            wait = self._statuses[0][0] - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            batch: list[dict[str, Any]] = []
            now = time.monotonic()
            while self._statuses and self._statuses[0][0] <= now:
                if len(batch) == MAX_STATUSES_PER_POST:
                    break
                batch.append(self._statuses.popleft()[1])
            stamp = str(int(time.time()))
            for status in batch:
                status["timestamp"] = stamp
                entry = self._by_wamid.get(status["id"])
                if entry is not None:
                    entry.status = status["status"]
            await self._post(self.status_payload(batch))

    async def _post(self, payload: dict[str, Any]) -> None:
        if self._webhook is None:
            return
        # Meta escapes non-ASCII in the signed body; json.dumps does the same by default.
        raw = json.dumps(payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(self._secret, raw),
        }
        try:
            response = await self._webhook.post(self._webhook_path, content=raw, headers=headers)
        except httpx.HTTPError as exc:
            self.webhooks_failed += 1
            logger.debug("sandbox.webhook_unreachable error=%s", type(exc).__name__)
            return
        except Exception:
            # The in-process webhook is the service's own code: a bug there must not stop
            # the fake from delivering later statuses.
            self.webhooks_failed += 1
            logger.exception("sandbox.webhook_crashed")
            return
        if response.status_code == 200:
            self.webhooks_posted += 1
        else:
            self.webhooks_failed += 1
            logger.debug("sandbox.webhook_refused status=%s", response.status_code)

    # -- sandbox endpoints -----------------------------------------------------------------

    def stats(self, *, detail: bool = False) -> dict[str, Any]:
        """Counters; per-callback counts only on request, and never a number."""
        result: dict[str, Any] = {
            "requests": self.requests,
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "recipients": len(self.by_recipient),
            "max_per_recipient": max(self.by_recipient.values(), default=0),
            "max_per_callback": max(self.by_callback.values(), default=0),
            "pending_statuses": len(self._statuses),
            "webhooks_posted": self.webhooks_posted,
            "webhooks_failed": self.webhooks_failed,
            "faults": asdict(self.faults),
        }
        if detail:
            result["by_callback"] = dict(self.by_callback)
        return result

    async def _stats(self, request: Request) -> Response:
        return JSONResponse(self.stats(detail=request.query_params.get("detail") == "1"))

    async def _faults(self, request: Request) -> Response:
        try:
            changes = json.loads(await request.body())
            if not isinstance(changes, dict):
                raise ValueError("send a JSON object")
            self.faults.update(changes)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(asdict(self.faults))

    async def _reset(self, _request: Request) -> Response:
        self.reset()
        return JSONResponse({"status": "ok"})

    async def inbox_page(self, _request: Request) -> Response:
        """GET /sandbox/inbox: what each masked number received, newest first."""
        return HTMLResponse(inbox.render_page(list(self.inbox)))

    async def inbox_json(self, _request: Request) -> Response:
        """GET /sandbox/inbox.json: the same as JSON, for the CLI."""
        return JSONResponse([e.as_json() for e in reversed(self.inbox)])

    def sandbox_routes(self) -> list[Route]:
        """The /sandbox/* pages and controls, for the standalone app and for serve."""
        return [
            Route("/sandbox/inbox", self.inbox_page, methods=["GET"]),
            Route("/sandbox/inbox.json", self.inbox_json, methods=["GET"]),
            Route("/sandbox/stats", self._stats, methods=["GET"]),
            Route("/sandbox/faults", self._faults, methods=["POST"]),
            Route("/sandbox/reset", self._reset, methods=["POST"]),
        ]

    def asgi_app(self) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        """The fake Graph API plus the /sandbox/* routes, as one ASGI app."""
        return self._asgi

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The send endpoint is served without a framework: it is the benchmark's hot path.
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            match = _MESSAGES_PATH.fullmatch(path)
            if match is not None:
                await self._serve_message(match["phone_number_id"], scope, receive, send)
                return
        await self._routes(scope, receive, send)

    async def _serve_message(
        self, phone_number_id: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        authorization = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
        status, answer = await self.post_message(
            authorization=authorization, phone_number_id=phone_number_id, raw=b"".join(chunks)
        )
        payload = json.dumps(answer, separators=(",", ":")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


class TimeoutASGITransport(httpx.ASGITransport):
    """ASGITransport that gives up like a socket would: ReadTimeout after `read_timeout`."""

    def __init__(self, app: Any, *, read_timeout: float) -> None:
        super().__init__(app=app)
        self._read_timeout = read_timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            async with asyncio.timeout(self._read_timeout):
                return await super().handle_async_request(request)
        except TimeoutError as exc:
            raise httpx.ReadTimeout("sandbox did not answer in time", request=request) from exc
