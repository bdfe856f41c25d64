"""Retention: a due campaign loses its per-person rows, its statistics stay the same, and
nothing of a running or recent campaign is touched. Invariant 4."""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, update
from sqlmodel import select
from typer import Typer
from typer.testing import CliRunner

from app.audit.models import AuditEvent
from app.auth.models import Role
from app.campaigns.models import Campaign, CampaignState
from app.config import get_settings
from app.db import increment_counter, session_scope, utcnow
from app.enrolment.models import Enrolment, EnrolmentStatus, EnrolmentTally, Suppression
from app.outbox.models import Delivery, DeliveryTally
from app.retention import commands, jobs
from app.retention.service import purge_due
from app.security import PhoneVault
from app.stats import service as stats_service
from tests.factories import add_enrolments, add_opd, add_token, bearer, every_cell
from tests.stats.helpers import TODAY, add_campaign_row, add_deliveries, opd_ids

OLD_LAST = TODAY - timedelta(days=60)
LONG_AGO = datetime.combine(OLD_LAST - timedelta(days=30), time(3), UTC)


@dataclass
class World:
    engine: Engine
    client: TestClient
    old: int  # finished 60 days ago, retention 30: due
    running: int  # active, covers BAPPEDA
    recent: int  # finished 10 days ago: not yet due
    dinkes: list[int]  # enrolled before the old campaign ended; DINKES has no running campaign
    dinkes_late: int  # enrolled after it ended
    bappeda: list[int]
    disdik: list[int]
    tokens: dict[str, str]


def _backdate(engine: Engine, ids: list[int], when: datetime) -> None:
    with session_scope(engine) as s:
        s.execute(update(Enrolment).where(Enrolment.id.in_(ids)).values(enrolled_at=when))  # type: ignore[union-attr]


def _tally(engine: Engine, campaign: int, opd: int, day: object, outcome: str, n: int) -> None:
    with session_scope(engine) as s:
        increment_counter(
            s,
            DeliveryTally,
            keys={"campaign_id": campaign, "opd_id": opd, "day": day, "outcome": outcome},
            amount=n,
        )


@pytest.fixture
def world(client: TestClient, engine: Engine, vault: PhoneVault) -> World:
    for code in ("DINKES", "BAPPEDA", "DISDIK"):
        add_opd(engine, code)
    ids = opd_ids(engine)
    old = add_campaign_row(
        engine,
        name="SPI lama",
        state=CampaignState.finished,
        first_day=OLD_LAST - timedelta(days=20),
        last_day=OLD_LAST,
        opds=[ids["DINKES"], ids["BAPPEDA"]],
    )
    running = add_campaign_row(engine, name="SPI berjalan", opds=[ids["BAPPEDA"]])
    recent = add_campaign_row(
        engine,
        name="SPI baru selesai",
        state=CampaignState.finished,
        first_day=TODAY - timedelta(days=40),
        last_day=TODAY - timedelta(days=10),
        opds=[ids["DISDIK"]],
    )
    dinkes = add_enrolments(engine, vault, "DINKES", 8)
    bappeda = add_enrolments(engine, vault, "BAPPEDA", 6)
    disdik = add_enrolments(engine, vault, "DISDIK", 5)
    _backdate(engine, dinkes + bappeda + disdik, LONG_AGO)
    [dinkes_late] = add_enrolments(engine, vault, "DINKES", 1)
    with session_scope(engine) as s:  # one DINKES person said STOP during the old campaign
        stopped = s.get(Enrolment, dinkes[0])
        assert stopped is not None
        assert stopped.phone_index is not None
        s.add(Suppression(phone_index=stopped.phone_index, source="stop"))
    add_deliveries(engine, campaign_id=old, enrolment_ids=dinkes, opd_id=ids["DINKES"])
    add_deliveries(engine, campaign_id=old, enrolment_ids=bappeda, opd_id=ids["BAPPEDA"])
    for opd, n in ((ids["DINKES"], 8), (ids["BAPPEDA"], 6)):
        for outcome in ("scheduled", "accepted", "delivered"):
            _tally(engine, old, opd, OLD_LAST - timedelta(days=5), outcome, n)
    add_deliveries(engine, campaign_id=running, enrolment_ids=bappeda, opd_id=ids["BAPPEDA"])
    add_deliveries(engine, campaign_id=recent, enrolment_ids=disdik, opd_id=ids["DISDIK"])
    tokens = {
        "inspectorate": add_token(engine, Role.inspectorate),
        "coordinator": add_token(engine, Role.coordinator, "DINKES"),
    }
    return World(engine, client, old, running, recent, dinkes, dinkes_late, bappeda, disdik, tokens)


def _snapshot(world: World) -> dict[str, object]:
    """Everything the statistics API says about the old campaign, for each reader and view."""
    out: dict[str, object] = {}
    for who in ("inspectorate", "coordinator"):
        for view in ("", "/daily"):
            url = f"/api/v1/stats/campaigns/{world.old}{view}"
            response = world.client.get(url, headers=bearer(world.tokens[who]))
            assert response.status_code == 200, response.text
            body = response.json()
            body.pop("state")  # finished, then purged: the figures are what must not change
            out[f"{who}{view}"] = body
    return out


def _deliveries(engine: Engine, campaign: int) -> list[Delivery]:
    with session_scope(engine) as s:
        return list(s.exec(select(Delivery).where(Delivery.campaign_id == campaign)).all())


def _enrolments(engine: Engine, ids: list[int]) -> list[Enrolment]:
    with session_scope(engine) as s:
        return [e for i in ids if (e := s.get(Enrolment, i)) is not None]


def _erased_tally(engine: Engine) -> int:
    with session_scope(engine) as s:
        total = s.exec(
            select(func.sum(EnrolmentTally.count)).where(EnrolmentTally.event == "erased")
        ).one()
    return int(total or 0)


def test_purge_removes_per_person_rows_and_keeps_the_statistics(world: World) -> None:
    engine = world.engine
    before = _snapshot(world)
    published = before["inspectorate"]
    rows = published["rows"]  # type: ignore[index]
    # 14 delivered, rounded per published row (within 4 of each row's truth)
    assert abs(published["total"]["delivered"] - 14) <= 4 * len(rows)  # type: ignore[index]
    assert published["total"]["delivered"] > 0  # type: ignore[index]
    running_before = [(d.id, d.wamid, d.state) for d in _deliveries(engine, world.running)]

    seen = [
        (e.public_id, e.enrolled_at, e.consent_recorded_at)
        for e in _enrolments(engine, world.dinkes)
    ]
    with session_scope(engine) as s:
        report = purge_due(s, now=utcnow(), dry_run=False)
    assert [c.campaign_id for c in report.campaigns] == [world.old]
    # No id a DINKES coordinator saw is left in any row of any table (their rows, with their
    # timestamps, are gone: asserted below; the fixture backdates everyone to one instant).
    cells = every_cell(engine)
    assert not [public_id for public_id in seen if public_id in cells]
    assert report.deliveries == 14
    assert report.enrolments_erased == 8  # DINKES only: BAPPEDA is in a running campaign

    # no per-person row of the old campaign remains
    assert _deliveries(engine, world.old) == []
    assert _enrolments(engine, world.dinkes) == []  # rows gone: no id or time a coordinator saw
    # every listed one (the STOP left its listing as it was) left the count through the
    # tally; the STOP is remembered
    assert _erased_tally(engine) == 8
    with session_scope(engine) as s:
        assert s.exec(select(func.count()).select_from(Suppression)).one() == 1
        campaign = s.get(Campaign, world.old)
        assert campaign is not None
        assert campaign.state == CampaignState.purged
        assert campaign.purged_at is not None
        recent = s.get(Campaign, world.recent)
        assert recent is not None
        assert recent.state == CampaignState.finished
        audit = s.exec(select(AuditEvent).where(AuditEvent.action == "campaign.purge")).all()
    assert [(a.object_id, (a.detail or {}).get("deliveries")) for a in audit] == [
        (str(world.old), 14)
    ]

    # the statistics are exactly the same, for every reader and view (computed afresh)
    stats_service.clear_cache()
    assert _snapshot(world) == before

    # running and recent campaigns, and enrolments still in use or made later, are untouched
    running_after = [(d.id, d.wamid, d.state) for d in _deliveries(engine, world.running)]
    assert running_after == running_before
    assert len(_deliveries(engine, world.recent)) == 5
    kept = _enrolments(engine, [*world.bappeda, *world.disdik, world.dinkes_late])
    assert all(e.phone_ciphertext and e.phone_index for e in kept)
    assert all(e.status == EnrolmentStatus.active for e in kept)

    # a second run finds nothing more to do
    with session_scope(engine) as s:
        again = purge_due(s, now=utcnow(), dry_run=False)
    assert again.campaigns == []


def test_dry_run_reports_and_changes_nothing(world: World) -> None:
    engine = world.engine

    def state() -> tuple[object, ...]:
        with session_scope(engine) as s:
            rows = (
                s.exec(select(func.count()).select_from(Delivery)).one(),
                s.exec(select(func.count()).select_from(AuditEvent)).one(),
                sorted(
                    (e.id, e.status, e.phone_ciphertext, e.label_ciphertext, e.phone_index)
                    for e in s.exec(select(Enrolment)).all()
                ),
                sorted((c.id, c.state, c.purged_at) for c in s.exec(select(Campaign)).all()),
            )
        return (*rows, _erased_tally(engine))

    before = state()
    with session_scope(engine) as s:
        report = purge_due(s, now=utcnow(), dry_run=True)
    assert report.dry_run
    assert [c.campaign_id for c in report.campaigns] == [world.old]
    assert (report.deliveries, report.enrolments_erased) == (14, 8)
    assert "would purge" in report.summary()
    assert state() == before
    with session_scope(engine) as s:
        real = purge_due(s, now=utcnow(), dry_run=False)
    assert (real.deliveries, real.enrolments_erased) == (14, 8)


def test_an_upcoming_all_opd_campaign_keeps_every_enrolment(world: World) -> None:
    add_campaign_row(world.engine, name="SPI tahun depan", state=CampaignState.draft)
    with session_scope(world.engine) as s:
        report = purge_due(s, now=utcnow(), dry_run=False)
    assert report.deliveries == 14
    assert report.enrolments_erased == 0
    assert all(e.phone_ciphertext for e in _enrolments(world.engine, world.dinkes))


def test_not_due_before_the_retention_period_has_passed(world: World) -> None:
    early = datetime.combine(OLD_LAST + timedelta(days=30), time(12), UTC)
    with session_scope(world.engine) as s:
        assert purge_due(s, now=early, dry_run=False).campaigns == []
    assert len(_deliveries(world.engine, world.old)) == 14


def test_old_audit_events_go_and_that_is_audited(world: World) -> None:
    engine = world.engine
    with session_scope(engine) as s:
        s.add(AuditEvent(actor_name="lama", action="x.old", at=utcnow() - timedelta(days=400)))
        s.add(AuditEvent(actor_name="baru", action="x.new", at=utcnow() - timedelta(days=100)))
    with session_scope(engine) as s:
        report = purge_due(s, now=utcnow(), dry_run=False, audit_retention_days=365)
    assert report.audit_events == 1
    with session_scope(engine) as s:
        actions = set(s.exec(select(AuditEvent.action)).all())
    assert "x.old" not in actions
    assert {"x.new", "audit.purge", "campaign.purge"} <= actions


def test_daily_job_runs_one_purge(world: World) -> None:
    report = jobs.run(world.engine, audit_retention_days=365)
    assert report.deliveries == 14
    assert _deliveries(world.engine, world.old) == []


def test_cli_purge_dry_run_then_real(
    world: World, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPI_DATABASE_URL", database_url)
    monkeypatch.setattr(commands, "configure_logging", lambda **_: None)
    app = Typer()
    app.command("purge")(commands.purge)
    app.command("noop")(lambda: None)  # more than one command: "purge" is a subcommand
    get_settings.cache_clear()
    try:
        dry = CliRunner().invoke(app, ["purge", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "would purge campaigns=1" in dry.output
        assert len(_deliveries(world.engine, world.old)) == 14
        real = CliRunner().invoke(app, ["purge"])
        assert real.exit_code == 0, real.output
        assert "purged campaigns=1" in real.output
        assert "deliveries=14" in real.output
    finally:
        get_settings.cache_clear()
    assert _deliveries(world.engine, world.old) == []
