"""Sender routes (admin only): the number's state and alerts, a refresh, the pre-flight."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from app.auth.dependencies import AdminDep
from app.db import SessionDep, utcnow
from app.errors import AppError
from app.ids import DbId
from app.messaging.runtime import Messenger
from app.sender import alerts, doctor, runtime, service
from app.sender.schemas import (
    CheckPublic,
    DoctorReportPublic,
    SenderAlertPublic,
    SenderStatePublic,
)

router = APIRouter(prefix="/api/v1", tags=["Sender"])


class MetaUnavailable(AppError):
    status_code = 502
    code = "meta_unavailable"


def _messenger(request: Request) -> Messenger:
    messenger: Messenger | None = getattr(request.app.state, "whatsapp", None)
    if messenger is None:
        raise AppError("WhatsApp is not connected yet", code="not_ready", status_code=503)
    return messenger


@router.get("/sender", response_model=SenderStatePublic)
def get_sender(session: SessionDep, actor: AdminDep) -> SenderStatePublic:
    """Messaging limit, throughput, quality, restrictions and open alerts of the number."""
    return service.to_public(session)


@router.post(
    "/sender/refresh",
    response_model=SenderStatePublic,
    responses={502: {"description": "Meta (or the sandbox) did not answer"}},
)
async def refresh_sender(
    request: Request, session: SessionDep, actor: AdminDep
) -> SenderStatePublic:
    """Read the number from Meta now (it is also read every 10 minutes)."""
    failure = await runtime.refresh(request.app.state.engine, _messenger(request).account())
    if failure is not None:
        raise MetaUnavailable(f"Meta did not give the number's state: {failure}")
    return await run_in_threadpool(service.to_public, session)


@router.get("/sender/alerts", response_model=list[SenderAlertPublic])
def list_alerts(
    session: SessionDep,
    actor: AdminDep,
    resolved: Annotated[bool, Query(description="include resolved alerts")] = False,
) -> list[SenderAlertPublic]:
    """Open alerts (or the latest 50 with `resolved=true`), newest first."""
    rows = alerts.recent_alerts(session) if resolved else alerts.open_alerts(session)
    return [service.alert_to_public(a) for a in rows]


@router.post(
    "/sender/alerts/{alert_id}/resolve",
    response_model=SenderAlertPublic,
    responses={404: {"description": "no such alert"}, 409: {"description": "already resolved"}},
)
def resolve_alert(alert_id: DbId, session: SessionDep, actor: AdminDep) -> SenderAlertPublic:
    """Mark an alert as dealt with (audited as `sender.alert_resolve`)."""
    alert = alerts.resolve_alert(session, actor=actor, alert_id=alert_id, now=utcnow())
    return service.alert_to_public(alert)


@router.get("/doctor", response_model=DoctorReportPublic)
async def run_doctor(request: Request, actor: AdminDep) -> DoctorReportPublic:
    """Pre-flight: token, number, webhook, templates, limit, quality, coexistence, with advice."""
    _messenger(request)
    report = await doctor.check_app(request.app)
    return DoctorReportPublic(
        ok=report.ok,
        target=report.target,
        checks=[
            CheckPublic(
                key=c.key, title=c.title, status=c.status.value, detail=c.detail, advice=c.advice
            )
            for c in report.checks
        ],
    )
