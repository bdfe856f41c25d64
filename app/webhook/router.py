"""WhatsApp webhook: verification handshake, inbound messages and statuses."""

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.db import session_scope
from app.enrolment.phones import mask_phone
from app.http import error_body
from app.security import PhoneVault
from app.webhook import metrics, schemas, service
from app.webhook.coalescer import StatusCoalescer, count_summary
from app.webhook.security import (
    SIGNATURE_HEADER,
    SignatureCheck,
    app_secret,
    check_signature,
    verify_token_matches,
)

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/webhook", tags=["Webhook"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "the body is not a JSON object"},
    401: {"description": "X-Hub-Signature-256 missing"},
    403: {"description": "signature does not match the body"},
    413: {"description": "body larger than 3 MB"},
    503: {"description": "not stored; Meta retries"},
}


@router.get(
    "/whatsapp",
    response_class=PlainTextResponse,
    responses={403: {"description": "wrong mode or verify token"}},
)
def verify(
    request: Request,
    mode: Annotated[str | None, Query(alias="hub.mode")] = None,
    token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
) -> Response:
    """Meta's verification handshake: echo hub.challenge when the verify token matches."""
    settings: Settings = request.app.state.settings
    if mode == "subscribe" and challenge is not None and verify_token_matches(token, settings):
        return PlainTextResponse(challenge)
    return JSONResponse(error_body("forbidden", "verification failed"), status_code=403)


@router.post("/whatsapp", responses=_ERRORS)
async def receive(request: Request, background: BackgroundTasks) -> JSONResponse:
    """Signed webhook from Meta (or the sandbox): statuses, messages, preference changes.

    Everything is stored before the 200; a failure answers 5xx so that Meta delivers again, and
    a redelivery changes nothing twice. Replies are sent after the response.
    """
    app: FastAPI = request.app
    settings: Settings = app.state.settings
    body = await request.body()
    check = check_signature(body, request.headers.get(SIGNATURE_HEADER), app_secret(settings))
    if check is SignatureCheck.missing:
        metrics.REQUESTS.labels("unsigned").inc()
        return JSONResponse(error_body("unauthorized", "signature missing"), status_code=401)
    if check is SignatureCheck.invalid:
        metrics.REQUESTS.labels("bad_signature").inc()
        logger.warning("webhook.bad_signature bytes=%d", len(body))
        return JSONResponse(error_body("forbidden", "signature mismatch"), status_code=403)
    try:
        # ValueError covers bad JSON, bad UTF-8 and over-long integer literals.
        batch = schemas.parse(json.loads(body))
    except (ValueError, RecursionError):
        # Nothing of the body is logged: it may hold message text.
        metrics.REQUESTS.labels("bad_body").inc()
        return JSONResponse(error_body("bad_request", "body is not a JSON object"), 400)
    if batch is None:
        metrics.REQUESTS.labels("ignored").inc()
        return JSONResponse({"status": "ignored"})
    try:
        if batch.messages or batch.preferences:
            outcome = await run_in_threadpool(_process, app, batch)
            count_summary(outcome.statuses)
            if outcome.replies:
                background.add_task(send_replies, app, outcome.replies)
        elif batch.statuses:
            # Status-only (the bulk of the traffic): committed together with concurrent ones.
            await _coalescer(app).apply(batch.statuses)
    except DBAPIError as exc:
        # The exception text would include SQL parameters; its type is enough.
        metrics.REQUESTS.labels("error").inc()
        logger.error("webhook.db_error type=%s", type(exc.orig or exc).__name__)
        return JSONResponse(error_body("unavailable", "not stored, try again"), 503)
    metrics.REQUESTS.labels("ok").inc()
    _count(batch)
    return JSONResponse({"status": "ok"})


def _coalescer(app: FastAPI) -> StatusCoalescer:
    """The app's status writer, one per event loop (tests may run an app in several loops)."""
    coalescer: StatusCoalescer | None = getattr(app.state, "webhook_status_coalescer", None)
    if coalescer is None or not coalescer.runs_in_this_loop():
        coalescer = StatusCoalescer(app.state.engine, app.state.vault)
        app.state.webhook_status_coalescer = coalescer
    return coalescer


def _process(app: FastAPI, batch: schemas.Batch) -> service.Outcome:
    vault: PhoneVault = app.state.vault
    with session_scope(app.state.engine) as session:
        return service.process(session, batch=batch, vault=vault, settings=app.state.settings)


def _count(batch: schemas.Batch) -> None:
    metrics.EVENTS.labels("message").inc(len(batch.messages))
    metrics.EVENTS.labels("status").inc(len(batch.statuses))
    metrics.EVENTS.labels("preference").inc(len(batch.preferences))
    if batch.account_errors:
        logger.warning("webhook.account_errors count=%d", batch.account_errors)
    if batch.malformed:
        logger.warning("webhook.malformed_items count=%d", batch.malformed)


async def send_replies(app: FastAPI, replies: list[service.OutgoingReply]) -> None:
    """Send replies through the shared client (ahead of reminder batches); never raises."""
    whatsapp = getattr(app.state, "whatsapp", None)
    send = getattr(whatsapp, "send_reply", None)
    if send is None:
        metrics.REPLIES.labels("unavailable").inc(len(replies))
        logger.warning("webhook.reply_unavailable count=%d", len(replies))
        return
    for reply in replies:
        try:
            result = await send(to=reply.to, body=reply.body)
        except Exception as exc:
            metrics.REPLIES.labels("failed").inc()
            logger.warning(
                "webhook.reply_failed phone=%s error=%s", mask_phone(reply.to), type(exc).__name__
            )
            continue
        outcome = getattr(result, "outcome", None)
        ok = str(getattr(outcome, "value", outcome)) == "accepted"
        metrics.REPLIES.labels("sent" if ok else "failed").inc()
        if not ok:
            logger.warning(
                "webhook.reply_not_accepted phone=%s reason=%s",
                mask_phone(reply.to),
                getattr(result, "reason", "?"),
            )
