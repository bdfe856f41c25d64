"""Statistics routes (readers: admin, inspectorate, coordinator) and the /metrics endpoint."""

import hmac
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlmodel import Session

from app.audit import service as audit_service
from app.auth.dependencies import ReaderDep
from app.auth.principal import Principal
from app.campaigns import costs
from app.db import SessionDep
from app.errors import Forbidden, Unauthorized
from app.ids import DbId
from app.stats import billing, export, metrics, service
from app.stats.schemas import CampaignBilling, CampaignDaily, CampaignStats

Figures = TypeVar("Figures", CampaignStats, CampaignDaily)

router = APIRouter(prefix="/api/v1/stats", tags=["Statistics"])
metrics_router = APIRouter(tags=["Health"])

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


def rounding_rule(request: Request) -> tuple[bytes, int]:
    """The rounding key (derived from the blind-index key) and the grouping threshold."""
    settings = request.app.state.settings
    return service.stats_key(request.app.state.vault), int(settings.stats_group_min)


@dataclass(frozen=True)
class StatsRequest:
    """What both statistics routes take: the campaign, the viewer, the rule, the format asked."""

    campaign_id: int
    session: Session
    viewer: Principal
    key: bytes
    group_min: int
    format: str
    sep: str

    def read(self, view: Callable[..., Figures]) -> Figures:
        """One statistics view of the campaign, for this viewer, under the rounding rule."""
        return view(
            self.session,
            campaign_id=self.campaign_id,
            viewer=self.viewer,
            key=self.key,
            group_min=self.group_min,
        )

    def answer(
        self,
        result: CampaignStats | CampaignDaily,
        *,
        csv_body: Callable[[], bytes],
        filename: str,
        view: str,
    ) -> Any:
        """The result as JSON, or as a CSV download whose export is audited."""
        if self.format != "csv":
            return result
        audit_service.record(
            self.session,
            actor=self.viewer,
            action="stats.export",
            object_type="campaign",
            object_id=self.campaign_id,
            detail={"view": view, "format": "csv"},
        )
        return Response(
            content=csv_body(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Cache-Control": "no-store",
            },
        )


def stats_request(
    campaign_id: DbId,
    request: Request,
    session: SessionDep,
    viewer: ReaderDep,
    format: Format = "json",
    sep: Separator = ";",
) -> StatsRequest:
    """The common parameters of the statistics routes."""
    key, group_min = rounding_rule(request)
    return StatsRequest(campaign_id, session, viewer, key, group_min, format, sep)


StatsRequestDep = Annotated[StatsRequest, Depends(stats_request)]


@router.get("/campaigns/{campaign_id}", response_model=CampaignStats, responses=_CSV_RESPONSES)
def campaign_stats(asked: StatsRequestDep) -> Any:
    """Figures per OPD and in total up to yesterday, each rounded to a multiple of 5."""
    stats = asked.read(service.campaign_stats)
    return asked.answer(
        stats,
        csv_body=lambda: export.campaign_csv(stats, sep=asked.sep),
        filename=f"statistik-kampanye-{asked.campaign_id}.csv",
        view="campaign",
    )


@router.get(
    "/campaigns/{campaign_id}/daily", response_model=CampaignDaily, responses=_CSV_RESPONSES
)
def campaign_daily(asked: StatsRequestDep) -> Any:
    """The same figures at the end of each closed day (the viewer's OPDs together)."""
    daily = asked.read(service.campaign_daily)
    return asked.answer(
        daily,
        csv_body=lambda: export.daily_csv(daily, sep=asked.sep),
        filename=f"statistik-harian-kampanye-{asked.campaign_id}.csv",
        view="daily",
    )


@router.get("/campaigns/{campaign_id}/billing", response_model=CampaignBilling)
def campaign_billing(asked: StatsRequestDep, request: Request) -> CampaignBilling:
    """What Meta billed per OPD and closed day: the rounded `billed` figure, and in rupiah at
    the configured rate of the campaign's category (SPI_MESSAGE_RATES_IDR, with its date)."""
    return billing.campaign_billing(
        asked.session,
        campaign_id=asked.campaign_id,
        viewer=asked.viewer,
        key=asked.key,
        group_min=asked.group_min,
        rates=costs.rate_table(request.app.state.settings),
    )


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
    # The scheduler handle exists only in a process that runs the scheduler.
    scheduler = getattr(request.app.state, "scheduler", None)
    body = metrics.exposition(request.app.state.engine, scheduler)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
