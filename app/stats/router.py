"""Statistics routes (readers: admin, inspectorate, coordinator) and the /metrics endpoint."""

import hmac
import ipaddress
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.audit import service as audit_service
from app.auth.dependencies import ReaderDep
from app.auth.principal import Principal
from app.db import SessionDep
from app.errors import Forbidden, Unauthorized
from app.stats import export, metrics, service
from app.stats.schemas import CampaignDaily, CampaignStats

router = APIRouter(prefix="/api/v1/stats", tags=["Statistics"])
metrics_router = APIRouter(tags=["Health"])

DEFAULT_MIN_CELL = 5
Format = Annotated[
    Literal["json", "csv"], Query(description="csv: a file for Excel (UTF-8 with BOM)")
]
Separator = Annotated[
    Literal[";", ",", "|", "tab", "\t"],
    Query(description="CSV separator; ';' suits Excel in the Indonesian locale"),
]
_CSV_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with ?format=csv"},
    404: {"description": "no such campaign (or not one of the coordinator's OPD)"},
}


def min_cell(request: Request) -> int:
    """k of the small-cell rule (setting `stats_min_cell`, default 5)."""
    return int(request.app.state.settings.stats_min_cell)


def _csv(body: bytes, filename: str) -> Response:
    return Response(
        content=body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def _audit_export(session: SessionDep, viewer: Principal, campaign_id: int, view: str) -> None:
    audit_service.record(
        session,
        actor=viewer,
        action="stats.export",
        object_type="campaign",
        object_id=campaign_id,
        detail={"view": view, "format": "csv"},
    )


@router.get("/campaigns/{campaign_id}", response_model=CampaignStats, responses=_CSV_RESPONSES)
def campaign_stats(
    campaign_id: int,
    request: Request,
    session: SessionDep,
    viewer: ReaderDep,
    format: Format = "json",
    sep: Separator = ";",
) -> Any:
    """Figures per OPD and in total; counts below k appear as "<5", linked ones as "x"."""
    stats = service.campaign_stats(
        session, campaign_id=campaign_id, viewer=viewer, min_cell=min_cell(request)
    )
    if format == "csv":
        _audit_export(session, viewer, campaign_id, "campaign")
        return _csv(export.campaign_csv(stats, sep=sep), f"statistik-kampanye-{campaign_id}.csv")
    return stats


@router.get(
    "/campaigns/{campaign_id}/daily", response_model=CampaignDaily, responses=_CSV_RESPONSES
)
def campaign_daily(
    campaign_id: int,
    request: Request,
    session: SessionDep,
    viewer: ReaderDep,
    format: Format = "json",
    sep: Separator = ";",
) -> Any:
    """The same outcomes per day (the viewer's OPDs together), and their total."""
    daily = service.campaign_daily(
        session, campaign_id=campaign_id, viewer=viewer, min_cell=min_cell(request)
    )
    if format == "csv":
        _audit_export(session, viewer, campaign_id, "daily")
        return _csv(
            export.daily_csv(daily, sep=sep), f"statistik-harian-kampanye-{campaign_id}.csv"
        )
    return daily


# --- /metrics -----------------------------------------------------------------------------------


def _metrics_token(request: Request) -> str:
    return str(request.app.state.settings.metrics_token.get_secret_value())


def _from_loopback(request: Request) -> bool:
    # Behind a reverse proxy every request comes from loopback: a forwarded one is not local.
    if "x-forwarded-for" in request.headers or "forwarded" in request.headers:
        return False
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_metrics_access(request: Request) -> None:
    """Bearer `metrics_token` when set; without a token, loopback clients only."""
    token = _metrics_token(request)
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )
        if not ok:
            raise Unauthorized("metrics need the metrics bearer token")
        return
    if not _from_loopback(request):
        raise Forbidden("metrics are readable from this host only unless a metrics token is set")


@metrics_router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, 401: {}, 403: {}},
)
def prometheus_metrics(request: Request) -> Response:
    """Prometheus metrics (aggregate counts only; no label carries an id, number or name)."""
    require_metrics_access(request)
    body = metrics.exposition(
        getattr(request.app.state, "engine", None), getattr(request.app.state, "scheduler", None)
    )
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
