"""The sandbox's status webhooks: queued per send, posted signed and batched, as Meta does."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx

from app.messaging.meanings import NOT_ON_WHATSAPP_CODE
from app.sandbox.faults import Faults
from app.sandbox.identity import SANDBOX_DISPLAY_NUMBER

logger = logging.getLogger(__name__)

MAX_STATUSES_PER_POST = 100
# Failures the sandbox plays besides "not on WhatsApp" (see app.sandbox.limits).
_FAILURE_TITLES: dict[int | None, str] = {131048: "Spam rate limit hit"}
_FAILURE_DETAILS: dict[int | None, str] = {
    131048: "Message failed to send because there are restrictions on how many messages can "
    "be sent from this phone number."
}


def sign(secret: bytes, raw: bytes) -> str:
    """X-Hub-Signature-256 value for a raw webhook body."""
    return "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()


class StatusPoster:
    """Queues the statuses of each taken message and posts them once they are due."""

    def __init__(
        self,
        *,
        secret: bytes,
        faults: Faults,
        phone_number_id: str,
        waba_id: str,
        rng: random.Random,
        on_status: Callable[[str, str], None],
    ) -> None:
        self._secret = secret
        self._faults = faults
        self._rng = rng
        self._phone_number_id = phone_number_id
        self._waba_id = waba_id
        self._on_status = on_status  # (wamid, status) as each is posted
        self._statuses: deque[tuple[float, dict[str, Any]]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._webhook: httpx.AsyncClient | None = None
        self._webhook_path = ""
        self._retrying: set[asyncio.Task[None]] = set()
        self.posted = 0
        self.failed = 0  # posts given up on (refused, or still failing after every retry)
        self.retried = 0

    @property
    def pending(self) -> int:
        return len(self._statuses)

    def clear(self) -> None:
        """Forget queued statuses, pending retries and counters."""
        self._statuses.clear()
        for task in self._retrying:
            task.cancel()
        self.posted = 0
        self.failed = 0
        self.retried = 0

    async def start(
        self, *, webhook_url: str | None, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        """Start posting to webhook_url (None: keep statuses to itself)."""
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
        self._flusher = asyncio.create_task(self._flush(self._wakeup), name="sandbox-statuses")

    async def aclose(self) -> None:
        """Stop posting."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        for task in list(self._retrying):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._wakeup = None
        if self._webhook is not None:
            await self._webhook.aclose()
            self._webhook = None

    def queue(self, *, to: str, wamid: str, tag: str | None, fail_code: int | None = None) -> None:
        """Queue `sent` then `delivered` (or `failed`: with `fail_code`, or for
        faults.failed_share with 131026)."""
        if self._wakeup is None:
            return  # not started: nobody would ever deliver them
        due = time.monotonic() + self._faults.status_delay_seconds
        share = self._faults.failed_share
        fails = fail_code is not None or (bool(share) and self._rng.random() < share)
        lost = self._faults.undelivered_share
        kinds: tuple[str, ...] = ("sent", "failed") if fails else ("sent", "delivered")
        if not fails and lost and self._rng.random() < lost:
            kinds = ("sent",)  # dropped when its TTL passed: Meta posts nothing more
        for kind in kinds:
            status: dict[str, Any] = {"id": wamid, "status": kind, "recipient_id": to.lstrip("+")}
            if tag is not None:
                status["biz_opaque_callback_data"] = tag
            # Meta puts pricing on `sent` and on one of delivered/read (the one that is billed).
            if kind in ("sent", "delivered"):
                status["pricing"] = {
                    "billable": True,
                    "pricing_model": "PMP",
                    "type": "regular",
                    "category": "utility",
                }
            if kind == "failed":
                status["errors"] = [
                    {
                        "code": fail_code or NOT_ON_WHATSAPP_CODE,
                        "title": _FAILURE_TITLES.get(fail_code, "Message undeliverable"),
                        "message": _FAILURE_TITLES.get(fail_code, "Message undeliverable"),
                        "error_data": {
                            "details": _FAILURE_DETAILS.get(fail_code, "Message Undeliverable.")
                        },
                        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                    }
                ]
            self._statuses.append((due, status))
        self._wakeup.set()

    def payload(self, statuses: list[dict[str, Any]]) -> dict[str, Any]:
        """One webhook POST body carrying `statuses`, as Meta sends it."""
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self._waba_id,
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": SANDBOX_DISPLAY_NUMBER,
                                    "phone_number_id": self._phone_number_id,
                                },
                                "statuses": statuses,
                            },
                        }
                    ],
                }
            ],
        }

    async def _flush(self, wakeup: asyncio.Event) -> None:
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
                self._on_status(status["id"], status["status"])
            await self._post(self.payload(batch))

    async def deliver(self, payload: dict[str, Any]) -> bool:
        """Post any webhook body now, signed; whether the service answered 200."""
        return await self._post(payload)

    async def _post(self, payload: dict[str, Any]) -> bool:
        if self._webhook is None:
            return False
        # Meta escapes non-ASCII in the signed body; json.dumps does the same by default.
        raw = json.dumps(payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(self._secret, raw),
        }
        outcome = await self._attempt(raw, headers)
        if outcome == "retry" and self._faults.webhook_retries > 0:
            # Retried in the background, so later statuses are not held up behind this post.
            task = asyncio.create_task(self._retry(raw, headers), name="sandbox-webhook-retry")
            self._retrying.add(task)
            task.add_done_callback(self._retrying.discard)
        elif outcome != "posted":
            self.failed += 1
        return outcome == "posted"

    async def _retry(self, raw: bytes, headers: dict[str, str]) -> None:
        """Post the same signed body again with a doubling wait, as Meta does."""
        delay = self._faults.webhook_retry_seconds
        for _ in range(self._faults.webhook_retries):
            await asyncio.sleep(delay)
            delay *= 2
            self.retried += 1
            outcome = await self._attempt(raw, headers)
            if outcome != "retry":
                if outcome != "posted":
                    self.failed += 1
                return
        self.failed += 1
        logger.warning("sandbox.webhook_gave_up retries=%d", self._faults.webhook_retries)

    async def _attempt(self, raw: bytes, headers: dict[str, str]) -> str:
        """One post: 'posted', 'retry' (5xx, timeout, unreachable) or 'refused' for good."""
        assert self._webhook is not None
        try:
            response = await self._webhook.post(self._webhook_path, content=raw, headers=headers)
        except httpx.HTTPError as exc:
            logger.debug("sandbox.webhook_unreachable error=%s", type(exc).__name__)
            return "retry"
        except Exception:
            # The in-process webhook is the service's own code: a bug there must not stop
            # the fake from delivering later statuses.
            logger.exception("sandbox.webhook_crashed")
            return "refused"
        if response.status_code == 200:
            self.posted += 1
            return "posted"
        logger.debug("sandbox.webhook_refused status=%s", response.status_code)
        return "retry" if response.status_code >= 500 else "refused"
