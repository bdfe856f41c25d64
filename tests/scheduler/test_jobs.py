"""Scheduler jobs called directly: job sync against the persistent store, and round firing.

No scheduler processes jobs here. Where the job store is needed a scheduler is started *paused*,
which opens the store but never runs a job.
"""

import asyncio
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, col, func, select

from app.auth.principal import cli_principal
from app.campaigns.models import Campaign, CampaignOpd, CampaignState, Round
from app.campaigns.timing import cron_trigger
from app.db import session_scope
from app.enrolment import service as enrolment_service
from app.opds.models import Opd
from app.outbox.models import Delivery
from app.scheduler import jobs
from app.scheduler.campaign_jobs import FIRE_ROUND_REF, latest_fire_time
from app.scheduler.setup import MISFIRE_GRACE, PersistentScheduler, build_scheduler
from app.security import PhoneVault
from app.templates.models import MessageTemplate
from tests.factories import add_opd

T = TypeVar("T")
# Monday 23 November 2026, 09:03 in Jakarta (WIB, UTC+7).
MONDAY_0903_WIB = datetime(2026, 11, 23, 2, 3, tzinfo=UTC)
FIRST_DAY = date(2026, 11, 16)
LAST_DAY = date(2026, 12, 18)


class Clock:
    """A settable clock for the job context."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(engine: Engine) -> Iterator[Clock]:
    clock = Clock(MONDAY_0903_WIB)
    jobs.configure(engine, clock=clock)
    yield clock
    jobs.reset()


@pytest.fixture
def opds(engine: Engine) -> dict[str, int]:
    add_opd(engine, "DINKES", tz="Asia/Jakarta")
    add_opd(engine, "BAPPEDA", tz="Asia/Makassar")
    add_opd(engine, "DISPAR", tz="Asia/Jayapura")
    with session_scope(engine) as s:
        return {o.code: o.id for o in s.exec(select(Opd)).all() if o.id is not None}


def add_campaign(engine: Engine, *, scope: list[int] | None = None, **fields: Any) -> int:
    """An active campaign (all OPDs unless scope lists OPD ids)."""
    with session_scope(engine) as s:
        template = s.exec(select(MessageTemplate)).first()
        if template is None:
            template = MessageTemplate(name="pengingat", body="Pengingat SPI.", status="APPROVED")
            s.add(template)
            s.flush()
        assert template.id is not None
        values: dict[str, Any] = {
            "name": "SPI 2026",
            "spi_year": 2026,
            "first_day": FIRST_DAY,
            "last_day": LAST_DAY,
            "template_id": template.id,
            "state": CampaignState.active,
            "all_opds": scope is None,
            **fields,
        }
        campaign = Campaign(**values)
        s.add(campaign)
        s.flush()
        assert campaign.id is not None
        for opd_id in scope or []:
            s.add(CampaignOpd(campaign_id=campaign.id, opd_id=opd_id))
        return campaign.id


def change_campaign(engine: Engine, campaign_id: int, **fields: Any) -> None:
    with session_scope(engine) as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        for name, value in fields.items():
            setattr(campaign, name, value)
        s.add(campaign)


def stored_jobs(engine: Engine) -> dict[str, datetime | None]:
    """The job store's rows: job id → next run time (UTC)."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, next_run_time FROM apscheduler_jobs")).all()
    return {job_id: None if ts is None else datetime.fromtimestamp(ts, UTC) for job_id, ts in rows}


def with_paused_scheduler(
    engine: Engine, clock: Clock, body: Callable[[PersistentScheduler], T]
) -> T:
    """Run body with a scheduler whose job store is open but which never runs a job."""

    async def main() -> T:
        scheduler = build_scheduler(engine)
        scheduler.start(paused=True)
        jobs.configure(engine, scheduler=scheduler, clock=clock)
        try:
            return body(scheduler)
        finally:
            await scheduler.drain_and_shutdown()

    return asyncio.run(main())


def sync(engine: Engine, clock: Clock) -> dict[str, datetime | None]:
    with_paused_scheduler(engine, clock, lambda _: jobs.sync_campaign_jobs())
    return stored_jobs(engine)


def at_utc(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def test_sync_creates_one_job_per_active_campaign_and_zone(
    engine: Engine, clock: Clock, opds: dict[str, int]
) -> None:
    everywhere = add_campaign(engine)
    papua = add_campaign(engine, scope=[opds["DISPAR"]])
    add_campaign(engine, state=CampaignState.draft)
    add_campaign(engine, state=CampaignState.paused)

    # Next Monday 09:00 local in each zone: 02:00, 01:00 and 00:00 UTC.
    assert sync(engine, clock) == {
        f"round:{everywhere}:Asia/Jakarta": at_utc(30, 2),
        f"round:{everywhere}:Asia/Makassar": at_utc(30, 1),
        f"round:{everywhere}:Asia/Jayapura": at_utc(30, 0),
        f"round:{papua}:Asia/Jayapura": at_utc(30, 0),
    }


def test_sync_replaces_and_removes_jobs_as_campaigns_change(
    engine: Engine, clock: Clock, opds: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    changing = add_campaign(engine, scope=[opds["DINKES"], opds["BAPPEDA"]])
    pausing = add_campaign(engine, scope=[opds["DISPAR"]])
    finishing = add_campaign(engine, scope=[opds["DINKES"]])
    caplog.set_level(logging.INFO, logger="app.scheduler.jobs")
    sync(engine, clock)
    caplog.clear()

    assert len(sync(engine, clock)) == 4
    assert "scheduler.jobs_synced" not in caplog.text  # nothing changed, nothing rewritten

    change_campaign(engine, changing, cron="0 10 * * 2")  # Tuesdays 10:00
    with session_scope(engine) as s:
        s.delete(s.get(CampaignOpd, (changing, opds["BAPPEDA"])))
    change_campaign(engine, pausing, state=CampaignState.paused)
    change_campaign(engine, finishing, state=CampaignState.finished)

    assert sync(engine, clock) == {f"round:{changing}:Asia/Jakarta": at_utc(24, 3)}
    assert "scheduler.jobs_synced added=0 replaced=1 removed=3" in caplog.text

    change_campaign(engine, pausing, state=CampaignState.active)
    assert sync(engine, clock)[f"round:{pausing}:Asia/Jayapura"] == at_utc(30, 0)


def test_sync_keeps_jobs_inside_the_campaign_window(
    engine: Engine, clock: Clock, opds: dict[str, int]
) -> None:
    later = add_campaign(
        engine, scope=[opds["DINKES"]], first_day=date(2026, 12, 2), last_day=date(2026, 12, 18)
    )
    ended = add_campaign(
        engine, scope=[opds["DINKES"]], first_day=date(2026, 11, 2), last_day=date(2026, 11, 20)
    )
    jobs_now = sync(engine, clock)
    # Not the Monday before the window opens (it would be deferred into the window).
    assert jobs_now == {f"round:{later}:Asia/Jakarta": datetime(2026, 12, 7, 2, tzinfo=UTC)}

    # Extending an ended campaign brings its job back, ending with the new last day.
    change_campaign(engine, ended, last_day=date(2026, 11, 30))
    assert sync(engine, clock)[f"round:{ended}:Asia/Jakarta"] == at_utc(30, 2)
    change_campaign(engine, ended, last_day=date(2026, 11, 29))
    assert f"round:{ended}:Asia/Jakarta" not in sync(engine, clock)


def test_jobs_survive_a_new_scheduler_instance(
    engine: Engine, clock: Clock, opds: dict[str, int]
) -> None:
    campaign_id = add_campaign(engine, scope=[opds["BAPPEDA"]])
    before = sync(engine, clock)

    def restored(scheduler: PersistentScheduler) -> list[Any]:
        return list(scheduler.get_jobs())

    (job,) = with_paused_scheduler(engine, clock, restored)
    assert stored_jobs(engine) == before
    assert job.id == f"round:{campaign_id}:Asia/Makassar"
    assert job.func_ref == FIRE_ROUND_REF
    assert job.args == (campaign_id, "Asia/Makassar")
    assert job.next_run_time == at_utc(30, 1)
    # A firing missed while down is replayed once at start-up, up to the grace time.
    assert job.coalesce is True
    assert job.max_instances == 1
    assert job.misfire_grace_time == MISFIRE_GRACE.total_seconds()


def test_latest_fire_time_is_the_slot_being_fired() -> None:
    monday = cron_trigger("0 9 * * 1", "Asia/Jakarta")
    slot = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    for late in (timedelta(0), timedelta(seconds=1), timedelta(hours=5), timedelta(days=6)):
        assert latest_fire_time(monday, slot + late) == slot
    assert latest_fire_time(monday, slot - timedelta(seconds=1)) == slot - timedelta(days=7)
    every_five = cron_trigger("*/5 * * * *", "Asia/Makassar")
    assert latest_fire_time(every_five, slot + timedelta(minutes=7)) == slot + timedelta(minutes=5)


def enrol(engine: Engine, vault: PhoneVault, opd_id: int, phones: list[str]) -> None:
    with session_scope(engine) as s:
        opd = s.get(Opd, opd_id)
        assert opd is not None
        for phone in phones:
            enrolment_service.enrol(
                s,
                vault=vault,
                actor=cli_principal(),
                opd=opd,
                phone=phone,
                label=None,
                consent_method="paper_form",
                consent_recorded_at=None,
                notice_version="2026-1",
                regions=frozenset({"ID"}),
            )


def rounds_and_deliveries(session: Session, campaign_id: int) -> tuple[list[Round], int]:
    rounds = list(session.exec(select(Round).where(Round.campaign_id == campaign_id)).all())
    deliveries = session.exec(
        select(func.count()).select_from(Delivery).where(col(Delivery.campaign_id) == campaign_id)
    ).one()
    return rounds, deliveries


def test_firing_twice_in_one_slot_creates_one_round(
    engine: Engine, clock: Clock, opds: dict[str, int], vault: PhoneVault
) -> None:
    campaign_id = add_campaign(engine, scope=[opds["DINKES"]])
    enrol(engine, vault, opds["DINKES"], ["081234567801", "081234567802", "081234567803"])

    jobs.fire_round(campaign_id, "Asia/Jakarta")
    clock.now += timedelta(minutes=4)  # a second firing of the same slot, a little later
    jobs.fire_round(campaign_id, "Asia/Jakarta")

    with session_scope(engine) as s:
        rounds, deliveries = rounds_and_deliveries(s, campaign_id)
    assert [(r.timezone, r.scheduled_for, r.origin) for r in rounds] == [
        ("Asia/Jakarta", datetime(2026, 11, 23, 2, 0, tzinfo=UTC), "schedule")
    ]
    assert rounds[0].recipients == deliveries == 3


def test_a_firing_missed_while_down_is_skipped_when_no_longer_allowed(
    engine: Engine, clock: Clock, opds: dict[str, int], vault: PhoneVault
) -> None:
    campaign_id = add_campaign(engine, scope=[opds["DINKES"]])
    enrol(engine, vault, opds["DINKES"], ["081234567801"])
    clock.now = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # 16:30 WIB: after the send window

    jobs.fire_round(campaign_id, "Asia/Jakarta")

    with session_scope(engine) as s:
        assert rounds_and_deliveries(s, campaign_id) == ([], 0)


def test_fire_round_of_a_deleted_campaign_does_nothing(engine: Engine, clock: Clock) -> None:
    jobs.fire_round(424242, "Asia/Jakarta")
    with session_scope(engine) as s:
        assert s.exec(select(func.count()).select_from(Round)).one() == 0
