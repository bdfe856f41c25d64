"""POST /webhook/whatsapp as a plain ASGI endpoint, ahead of FastAPI's routing.

Meta sends one webhook per status as often as not, so this path carries most of the service's
requests. Through FastAPI's route machinery (routing, dependency solving, exception and
body-limit middleware) one process answered about 1,700 requests/s; as a plain ASGI endpoint
about 2,800 (bench/webhook). The endpoint does everything the route did: signature over the raw
bytes, the 3 MB limit, JSON errors, metrics, replies sent after the response. Its OpenAPI entry
is added by `document`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import session_scope, utcnow
from app.http import error_body, too_large_message
from app.messaging import inbound
from app.messaging.results import SendOutcome, SendResult
from app.outbox.service import OPT_OUT_SETTLE_SECONDS
from app.security import PhoneVault
from app.webhook import account, keywords, metrics, service
from app.webhook.coalescer import StatusCoalescer, count_summary
from app.webhook.security import SignatureCheck, app_secret, check_signature

logger = logging.getLogger(__name__)

PATH = "/webhook/whatsapp"
MAX_BODY_BYTES = 3 * 1024 * 1024
_SIGNATURE = b"x-hub-signature-256"


@dataclass
class Answer:
    """What to respond, and the keyword replies to send once the response is out."""

    status: int
    body: dict[str, Any]
    replies: list[service.OutgoingReply] = field(default_factory=list)


class WebhookReceiver:
    """ASGI middleware: answers POST /webhook/whatsapp itself, passes everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        fastapi_app: FastAPI = scope["app"]
        try:
            body = await _read_body(scope, receive)
        except _Disconnected:
            return  # nothing complete arrived, so nothing is stored and nobody is waiting
        if body is None:
            metrics.REQUESTS.labels("too_large").inc()
            answer = Answer(413, error_body("too_large", too_large_message(MAX_BODY_BYTES)))
        else:
            answer = await handle(fastapi_app, body, _header(scope, _SIGNATURE))
        payload = json.dumps(answer.body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        if answer.replies:
            await send_replies(fastapi_app, answer.replies)


async def handle(app: FastAPI, body: bytes, signature: str | None) -> Answer:
    """Check, parse and store one webhook; a 200 means everything in it is committed."""
    check = check_signature(body, signature, app_secret(app.state.settings))
    if check is SignatureCheck.missing:
        metrics.REQUESTS.labels("unsigned").inc()
        return Answer(401, error_body("unauthorized", "signature missing"))
    if check is SignatureCheck.invalid:
        metrics.REQUESTS.labels("bad_signature").inc()
        logger.warning("webhook.bad_signature bytes=%d", len(body))
        return Answer(403, error_body("forbidden", "signature mismatch"))
    try:
        # ValueError covers bad JSON, bad UTF-8, over-long integer literals and NaN/Infinity.
        document = json.loads(body, parse_constant=_refuse_constant)
        batch = inbound.parse_batch(document, classify=keywords.classify_any)
    except (ValueError, RecursionError):
        # Nothing of the body is logged: it may hold message text.
        metrics.REQUESTS.labels("bad_body").inc()
        return Answer(400, error_body("bad_request", "body is not a JSON object"))
    if batch is None:
        metrics.REQUESTS.labels("ignored").inc()
        return Answer(200, {"status": "ignored"})
    replies: list[service.OutgoingReply] = []
    try:
        if batch.messages or batch.preferences:
            outcome = await run_in_threadpool(_process, app, batch)
            count_summary(outcome.statuses)
            replies = outcome.replies
            if outcome.opted_out:
                # Committed; now give sending workers time to re-read before answering.
                await asyncio.sleep(OPT_OUT_SETTLE_SECONDS)
        elif batch.statuses:
            # Status-only (the bulk of the traffic): committed together with concurrent ones.
            await _coalescer(app).apply(batch.statuses)
        if batch.account:
            # Template, number and account notices: applied (and campaigns paused) before 200.
            await run_in_threadpool(_apply_account, app, batch.account)
    except DBAPIError as exc:
        # The exception text would include SQL parameters; its type is enough.
        metrics.REQUESTS.labels("error").inc()
        logger.error("webhook.db_error type=%s", type(exc.orig or exc).__name__)
        return Answer(503, error_body("unavailable", "not stored, try again"))
    metrics.REQUESTS.labels("ok").inc()
    _count(batch)
    return Answer(200, {"status": "ok"}, replies)


def _refuse_constant(name: str) -> Any:
    # Python's json accepts NaN, Infinity and -Infinity; standard JSON (and Meta) never sends them.
    raise ValueError(f"{name} is not standard JSON")


async def _read_body(scope: Scope, receive: Receive) -> bytes | None:
    """The whole body, or None as soon as it is known to exceed the limit."""
    declared = _header(scope, b"content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class _Disconnected(Exception):
    """The client went away before the whole body arrived."""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _coalescer(app: FastAPI) -> StatusCoalescer:
    """The app's status writer, one per event loop (tests may run an app in several loops)."""
    coalescer: StatusCoalescer | None = getattr(app.state, "webhook_status_coalescer", None)
    if coalescer is None or not coalescer.runs_in_this_loop():
        coalescer = StatusCoalescer(app.state.engine, app.state.vault)
        app.state.webhook_status_coalescer = coalescer
    return coalescer


def _process(app: FastAPI, batch: inbound.Batch[keywords.Parsed]) -> service.Outcome:
    vault: PhoneVault = app.state.vault
    with session_scope(app.state.engine) as session:
        return service.process(session, batch=batch, vault=vault, settings=app.state.settings)


def _apply_account(app: FastAPI, events: list[inbound.AccountEvent]) -> None:
    with session_scope(app.state.engine) as session:
        account.apply_account_events(session, events=events, now=utcnow())


def _count(batch: inbound.Batch[keywords.Parsed]) -> None:
    # A preference change is WhatsApp's own opt-out or opt-in: counted as a message from a
    # person, so that it cannot be told from one.
    metrics.EVENTS.labels("message").inc(len(batch.messages) + len(batch.preferences))
    metrics.EVENTS.labels("status").inc(len(batch.statuses))
    if batch.account_errors:
        logger.warning("webhook.account_errors count=%d", batch.account_errors)
    if batch.malformed:
        logger.warning("webhook.malformed_items count=%d", batch.malformed)


async def send_replies(app: FastAPI, replies: list[service.OutgoingReply]) -> None:
    """Send replies through the shared client (ahead of reminder batches); never raises."""
    # Unset when the app runs without its lifespan (no messenger was opened).
    whatsapp = getattr(app.state, "whatsapp", None)
    if whatsapp is None:
        metrics.REPLIES.labels("unavailable").inc(len(replies))
        logger.warning("webhook.reply_unavailable count=%d", len(replies))
        return
    for reply in replies:
        try:
            result: SendResult = await whatsapp.send_reply(to=reply.to, body=reply.body)
        except Exception as exc:
            metrics.REPLIES.labels("failed").inc()
            # No number, not even masked: it would follow the keyword it answers.
            logger.warning("webhook.reply_failed error=%s", type(exc).__name__)
            continue
        ok = result.outcome is SendOutcome.ACCEPTED
        metrics.REPLIES.labels("sent" if ok else "failed").inc()
        if not ok:
            logger.warning("webhook.reply_not_accepted reason=%s", result.reason)


_RESPONSES = {
    "200": {"description": "stored (or another `object`, acknowledged and ignored)"},
    "400": {"description": "the body is not a JSON object"},
    "401": {"description": "X-Hub-Signature-256 missing"},
    "403": {"description": "signature does not match the body"},
    "413": {"description": "body larger than 3 MB"},
    "503": {"description": "not stored; Meta retries"},
}
_OPERATION = {
    "tags": ["Webhook"],
    "summary": "Receive",
    "operationId": "receive_webhook_whatsapp_post",
    "description": (
        "Signed webhook from Meta (or the sandbox): statuses, messages, preference changes, "
        "template and account notices.\n\n"
        "Everything is stored before the 200; a failure answers 5xx so that Meta delivers "
        "again, and a redelivery changes nothing twice. Replies are sent after the response."
    ),
    "parameters": [
        {
            "name": "X-Hub-Signature-256",
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": "sha256= HMAC of the raw body with the app secret",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
    "responses": _RESPONSES,
}


def document(app: FastAPI) -> None:
    """Add the POST operation to the app's OpenAPI document (FastAPI cannot see it)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        spec = generate()
        spec["paths"].setdefault(PATH, {})["post"] = _OPERATION
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    """Answer the webhook ahead of the routes, and document it."""
    app.add_middleware(WebhookReceiver)
    document(app)
