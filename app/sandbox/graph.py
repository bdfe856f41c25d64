"""A local fake of Meta's Graph API: accepts sends, returns wamids, posts signed statuses.

It speaks Meta's wire format (request bodies validated against Meta's spec, Meta-shaped
errors and webhooks) so the real client, worker and webhook run unchanged against it.
State lives in memory: it is a development and test double, never a store of record.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
import re
import secrets
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.messaging import spec
from app.sandbox import inbox, management, pages, reply
from app.sandbox.account import SandboxAccount
from app.sandbox.arrivals import Arrivals
from app.sandbox.checker import BodyChecker
from app.sandbox.events import SandboxEvents
from app.sandbox.faults import Faults, graph_error
from app.sandbox.identity import SANDBOX_PHONE_NUMBER_ID, SANDBOX_WABA_ID
from app.sandbox.limits import LIMIT_FAILURE_CODE, LimitKeeper
from app.sandbox.webhooks import StatusPoster
from app.security import mask_phone

logger = logging.getLogger(__name__)

_MESSAGES_PATH = re.compile(r"/(?P<version>[^/]+)/(?P<phone_number_id>[^/]+)/messages")

# Turns template name, language and body parameters into the text the person would read.
Renderer = Callable[[str, str, list[str]], str | None]


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
        account: SandboxAccount | None = None,
    ) -> None:
        self.faults = faults or Faults()
        self.account = account or SandboxAccount()
        self._limits = LimitKeeper(self.account)
        self.phone_number_id = phone_number_id
        self.waba_id = waba_id
        self._renderer = renderer
        self._rng = rng or random.Random()
        self._checker = BodyChecker()
        self.inbox: deque[inbox.InboxEntry] = deque(maxlen=inbox_size)
        self._by_wamid: dict[str, inbox.InboxEntry] = {}
        self._poster = StatusPoster(
            secret=secret,
            faults=self.faults,
            phone_number_id=phone_number_id,
            waba_id=waba_id,
            rng=self._rng,
            on_status=self._mark,
        )
        self.events = SandboxEvents(self.account, self._poster.deliver)
        self._routes = Starlette(
            routes=self.sandbox_routes() + management.routes(self), lifespan=self.lifespan
        )
        self.arrivals = Arrivals()
        self.reset()

    def reset(self) -> None:
        """Forget every message and counter (faults are kept)."""
        self.requests = 0
        self.arrivals.clear()
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self.by_callback: Counter[str] = Counter()
        # Kept only in this process's memory, so duplicates per person can be counted.
        self.by_recipient: Counter[str] = Counter()
        self.inbox.clear()
        self._by_wamid.clear()
        self._poster.clear()
        self._limits.clear()

    @property
    def webhooks_posted(self) -> int:
        return self._poster.posted

    @property
    def webhooks_failed(self) -> int:
        return self._poster.failed

    @property
    def webhooks_retried(self) -> int:
        return self._poster.retried

    async def start(
        self, *, webhook_url: str | None, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        """Start posting status webhooks to webhook_url (None: keep statuses to itself)."""
        if self.account.callback_url is None:
            self.account.callback_url = webhook_url
        await self._poster.start(webhook_url=webhook_url, transport=transport)

    async def aclose(self) -> None:
        """Stop posting webhooks (and reviewing templates)."""
        await self.events.aclose()
        await self._poster.aclose()

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        """Starlette lifespan for the standalone process (webhook target set by the caller)."""
        yield
        await self.aclose()

    async def post_message(
        self, *, authorization: str, phone_number_id: str, raw: bytes
    ) -> tuple[int, dict[str, Any]]:
        """POST /{version}/{phone_number_id}/messages: (HTTP status, JSON body)."""
        self.requests += 1
        self.arrivals.record()
        if not authorization.startswith("Bearer "):
            return self._reject("no_token", graph_error(401, 190, "Invalid OAuth access token"))
        if not self.account.token_valid:
            return self._reject(
                "no_token", graph_error(401, 190, "Error validating access token: session expired")
            )
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
        if faults.enforce_limits and self._limits.over_throughput():
            return self._reject(
                "throughput",
                graph_error(
                    400,
                    130429,
                    "Rate limit hit",
                    details="Cloud API message throughput has been reached.",
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
        beyond = (
            self.faults.enforce_limits
            and body.get("type") == "template"
            and self._limits.over_messaging_limit(to)
        )
        self._poster.queue(
            to=to, wamid=wamid, tag=tag, fail_code=LIMIT_FAILURE_CODE if beyond else None
        )
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
            "messages": [{"id": wamid}],
        }

    def _mark(self, wamid: str, status: str) -> None:
        entry = self._by_wamid.get(wamid)
        if entry is not None:
            entry.status = status

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
            recipient=body["to"],
        )

    def inbox_entry(self, wamid: str) -> inbox.InboxEntry | None:
        """The inbox message with this id, while the inbox still holds it."""
        return self._by_wamid.get(wamid)

    async def reply(self, *, message_id: str | None, number: str | None, text: str) -> bool:
        """Send the service `text` as an inbound message from the person an inbox message went
        to (or from `number`), signed like Meta; whether the service took it (200)."""
        entry = self._by_wamid.get(message_id) if message_id else None
        sender = entry.recipient if entry is not None else number
        if not sender:
            raise reply.ReplyRefused("no such message in the inbox, and no number given")
        try:
            payload = reply.inbound_text(
                waba_id=self.waba_id,
                phone_number_id=self.phone_number_id,
                sender=sender,
                text=text,
            )
        except ValueError as exc:
            raise reply.ReplyRefused(str(exc)) from exc
        problems = spec.validate_inbound_text_webhook(payload)
        if problems:  # a bug here, never the employee's words
            raise RuntimeError(f"the sandbox built an inbound webhook Meta would not: {problems}")
        return await self._poster.deliver(payload)

    def stats(self, *, detail: bool = False) -> dict[str, Any]:
        """Counters; per-callback counts only on request, and never a number."""
        result: dict[str, Any] = {
            "requests": self.requests,
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "recipients": len(self.by_recipient),
            "max_per_recipient": max(self.by_recipient.values(), default=0),
            "max_per_callback": max(self.by_callback.values(), default=0),
            "pending_statuses": self._poster.pending,
            "webhooks_posted": self.webhooks_posted,
            "webhooks_failed": self.webhooks_failed,
            "webhooks_retried": self.webhooks_retried,
            "faults": asdict(self.faults),
        }
        if detail:
            result["by_callback"] = dict(self.by_callback)
            result["arrivals"] = self.arrivals.summary()
        return result

    def sandbox_routes(self) -> list[Route]:
        """The /sandbox/* pages and controls, for the standalone app and for serve."""
        return pages.routes(self)

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
