"""Builders for statistics and retention tests: campaigns, counters, deliveries as plain rows."""

import secrets
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlmodel import select

from app.campaigns.models import Campaign, CampaignOpd, CampaignState, Round
from app.db import increment_counter, session_scope, utcnow
from app.enrolment.models import EnrolmentTally
from app.opds.models import Opd
from app.outbox.models import Delivery, DeliveryTally
from app.stats.router import metrics_router, router
from app.stats.service import last_closed_day
from app.templates.models import MessageTemplate

# "Today" as the statistics see it: the day in WIB, which is not the UTC date between 17:00 and
# 24:00 UTC.
TODAY = last_closed_day(utcnow()) + timedelta(days=1)


def with_stats_routes(app: FastAPI) -> FastAPI:
    """Include the statistics and /metrics routers unless app.main already does."""
    paths = {getattr(r, "path", None) for r in app.routes}
    if "/api/v1/stats/campaigns/{campaign_id}" not in paths:
        app.include_router(router)
    if "/metrics" not in paths:
        app.include_router(metrics_router)
    return app


def opd_ids(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as s:
        return {o.code: o.id for o in s.exec(select(Opd)).all() if o.id is not None}


def add_campaign_row(
    engine: Engine,
    *,
    name: str = "SPI uji",
    state: str = CampaignState.active,
    first_day: date = TODAY - timedelta(days=10),
    last_day: date = TODAY + timedelta(days=20),
    opds: Sequence[int] | None = None,
    retention_days: int = 30,
    finished_at: datetime | None = None,
) -> int:
    """A campaign as a plain row (all OPDs unless `opds` is given)."""
    with session_scope(engine) as s:
        template = MessageTemplate(
            name=f"uji_stats_{secrets.token_hex(4)}",
            body="Pengingat SPI dari {{1}}. Balas BERHENTI untuk berhenti.",
            status="SANDBOX",
        )
        s.add(template)
        s.flush()
        assert template.id is not None
        if state in (CampaignState.finished, CampaignState.purged) and finished_at is None:
            finished_at = datetime.combine(last_day + timedelta(days=1), time(1), UTC)
        campaign = Campaign(
            name=name,
            spi_year=first_day.year,
            first_day=first_day,
            last_day=last_day,
            template_id=template.id,
            all_opds=opds is None,
            state=state,
            retention_days=retention_days,
            finished_at=finished_at,
        )
        s.add(campaign)
        s.flush()
        assert campaign.id is not None
        for opd_id in opds or ():
            s.add(CampaignOpd(campaign_id=campaign.id, opd_id=opd_id))
        return campaign.id


def delivery_counts(
    engine: Engine, campaign_id: int, opd_id: int, day: date, **counts: int
) -> None:
    """Add to the delivery counters of one OPD and day: scheduled=…, delivered=…"""
    with session_scope(engine) as s:
        for outcome, n in counts.items():
            increment_counter(
                s,
                DeliveryTally,
                keys={"campaign_id": campaign_id, "opd_id": opd_id, "day": day, "outcome": outcome},
                amount=n,
            )


def enrolment_counts(engine: Engine, opd_id: int, day: date, **counts: int) -> None:
    """Add to the enrolment counters of one OPD and day: enrolled=…, opted_out=…"""
    with session_scope(engine) as s:
        for event, n in counts.items():
            increment_counter(
                s, EnrolmentTally, keys={"opd_id": opd_id, "day": day, "event": event}, amount=n
            )


def outcome_row(
    scheduled: int,
    *,
    delivered: int = 0,
    failed_not_on_whatsapp: int = 0,
    failed_refused: int = 0,
    failed_other: int = 0,
    unknown: int = 0,
    skipped: int = 0,
    pending: int = 0,
) -> dict[str, int]:
    """Consistent counters for `scheduled` deliveries: the rest were accepted."""
    accepted = (
        scheduled
        - failed_not_on_whatsapp
        - failed_refused
        - failed_other
        - unknown
        - skipped
        - pending
    )
    out = {
        "scheduled": scheduled,
        "accepted": accepted,
        "delivered": delivered,
        "failed_not_on_whatsapp": failed_not_on_whatsapp,
        "failed_refused": failed_refused,
        "failed_other": failed_other,
        "unknown": unknown,
        "skipped": skipped,
    }
    return {k: v for k, v in out.items() if v}


def add_deliveries(
    engine: Engine,
    *,
    campaign_id: int,
    enrolment_ids: Sequence[int],
    opd_id: int,
    state: str = "delivered",
    wamid: bool = True,
) -> list[int]:
    """Per-person delivery rows (one round) for these enrolments; their ids."""
    with session_scope(engine) as s:
        now = utcnow()
        round_ = Round(
            campaign_id=campaign_id,
            timezone="Asia/Jakarta",
            scheduled_for=now - timedelta(minutes=len(enrolment_ids) + secrets.randbelow(10**6)),
            send_at=now,
        )
        s.add(round_)
        s.flush()
        assert round_.id is not None
        rows = [
            Delivery(
                public_id=secrets.token_urlsafe(16),
                round_id=round_.id,
                campaign_id=campaign_id,
                opd_id=opd_id,
                enrolment_id=e,
                state=state,
                next_attempt_at=now,
                wamid=f"wamid.{secrets.token_hex(12)}" if wamid else None,
            )
            for e in enrolment_ids
        ]
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows if r.id is not None]


def as_json(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()
