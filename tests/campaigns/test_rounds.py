"""Round creation: local times, deferral, the per-person budget, idempotency, eligibility."""

import contextlib
import itertools
import re
import threading
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

from app.auth.principal import cli_principal
from app.campaigns import plan, rounds
from app.campaigns.models import Campaign, Round
from app.db import session_scope
from app.enrolment import service as enrolment_service
from app.enrolment.models import Enrolment, Suppression
from app.outbox.models import Delivery, DeliveryTally
from app.security import PhoneVault
from tests.factories import add_campaign, add_enrolments, add_opd, add_template

WIB, WITA, WIT = ZoneInfo("Asia/Jakarta"), ZoneInfo("Asia/Makassar"), ZoneInfo("Asia/Jayapura")
BEFORE = datetime(2026, 2, 20, tzinfo=UTC)  # campaigns are set up before their window opens


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz).astimezone(UTC)  # type: ignore[misc]


def fire(
    engine: Engine, campaign_id: int, tz: str, nominal_at: datetime, now: datetime | None = None
) -> rounds.FiringResult:
    with session_scope(engine) as s:
        return rounds.fire_scheduled_round(
            s, campaign_id=campaign_id, timezone=tz, nominal_at=nominal_at, now=now or nominal_at
        )


def manual(engine: Engine, campaign_id: int, now: datetime) -> list[rounds.ZoneResult]:
    with session_scope(engine) as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        return rounds.start_manual_round(s, campaign=campaign, now=now, actor=cli_principal())


def deliveries(engine: Engine) -> list[tuple[int | None, datetime, str]]:
    """(enrolment id, round send_at, public id) of every delivery."""
    with Session(engine) as s:
        rows = s.execute(
            select(Delivery.enrolment_id, Round.send_at, Delivery.public_id).join(
                Round, col(Round.id) == col(Delivery.round_id)
            )
        ).all()
    return [(e, at, p) for e, at, p in rows]


def count(engine: Engine, model: type) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


@pytest.fixture
def template(engine: Engine) -> int:
    return add_template(engine)


@pytest.fixture
def three_zones(engine: Engine, vault: PhoneVault, template: int) -> int:
    """OPDs in WIB (2 people), WITA (3) and WIT (4), and an active all-OPD campaign."""
    for code, tz, people in (("JKT", "Asia/Jakarta", 2), ("MKS", "Asia/Makassar", 3)):
        add_opd(engine, code, tz=tz)
        add_enrolments(engine, vault, code, people)
    add_opd(engine, "JPR", tz="Asia/Jayapura")
    add_enrolments(engine, vault, "JPR", 4)
    return add_campaign(engine, template_id=template, now=BEFORE)


@pytest.mark.parametrize(
    ("tz", "expected_utc", "people"),
    [
        ("Asia/Jakarta", datetime(2026, 3, 2, 2, 0, tzinfo=UTC), 2),
        ("Asia/Makassar", datetime(2026, 3, 2, 1, 0, tzinfo=UTC), 3),
        ("Asia/Jayapura", datetime(2026, 3, 2, 0, 0, tzinfo=UTC), 4),
    ],
)
def test_rounds_at_0900_local_in_each_zone(
    engine: Engine, three_zones: int, tz: str, expected_utc: datetime, people: int
) -> None:
    with Session(engine) as s:
        campaign = s.get(Campaign, three_zones)
        assert campaign is not None
        zone = next(
            z
            for z in plan.campaign_plan(s, campaign=campaign, now=BEFORE).zones
            if z.timezone == tz
        )
    first = zone.rounds[0]
    assert first.nominal_at == first.send_at == expected_utc
    assert first.send_local.startswith("2026-03-02T09:00:00")
    assert first.reachable_now == people

    result = fire(engine, three_zones, tz, expected_utc)
    assert result.reason == "created"
    assert result.round is not None
    assert (result.round.send_at, result.round.recipients) == (expected_utc, people)
    with Session(engine) as s:
        due = s.exec(select(Delivery.next_attempt_at, Delivery.state, Delivery.attempts)).all()
    assert due == [(expected_utc, "queued", 0)] * people


def test_plan_lists_zones_with_local_offsets(engine: Engine, three_zones: int) -> None:
    with Session(engine) as s:
        campaign = s.get(Campaign, three_zones)
        assert campaign is not None
        result = plan.campaign_plan(s, campaign=campaign, now=BEFORE, limit=3)
    by_zone = {z.timezone: z for z in result.zones}
    assert sorted(by_zone) == ["Asia/Jakarta", "Asia/Jayapura", "Asia/Makassar"]
    assert [r.nominal_local for r in by_zone["Asia/Jayapura"].rounds] == [
        "2026-03-02T09:00:00+09:00",
        "2026-03-09T09:00:00+09:00",
        "2026-03-16T09:00:00+09:00",
    ]
    assert by_zone["Asia/Makassar"].rounds[0].send_local == "2026-03-02T09:00:00+08:00"
    assert {z.opds for z in result.zones} == {1}


def test_holiday_monday_defers_to_next_working_day(engine: Engine, three_zones: int) -> None:
    # 23 and 24 March 2026 are cuti bersama around Idul Fitri: the round goes out Wednesday.
    nominal = local(WIB, 2026, 3, 23, 9)
    result = fire(engine, three_zones, "Asia/Jakarta", nominal)
    assert result.round is not None
    assert result.round.scheduled_for == nominal
    assert result.round.send_at == local(WIB, 2026, 3, 25, 8)
    with Session(engine) as s:
        campaign = s.get(Campaign, three_zones)
        assert campaign is not None
        planned = plan.campaign_plan(s, campaign=campaign, now=local(WIB, 2026, 3, 20, 12))
    wib = next(z for z in planned.zones if z.timezone == "Asia/Jakarta")
    assert wib.rounds[0].deferred
    assert wib.rounds[0].send_local == "2026-03-25T08:00:00+07:00"


def test_firing_that_would_land_after_the_window_is_skipped(
    engine: Engine, vault: PhoneVault, template: int
) -> None:
    add_opd(engine, "JKT")
    add_enrolments(engine, vault, "JKT", 2)
    cid = add_campaign(
        engine, template_id=template, now=BEFORE, last_day=date(2026, 3, 13), cron="0 16 * * *"
    )
    last_evening = local(WIB, 2026, 3, 13, 16)
    result = fire(engine, cid, "Asia/Jakarta", last_evening)
    assert result.round is None
    assert result.reason.startswith("after_window")
    after = fire(engine, cid, "Asia/Jakarta", local(WIB, 2026, 3, 16, 9))
    assert after.round is None
    assert after.reason.startswith("after_window")
    with pytest.raises(rounds.RoundRefused) as refused:
        manual(engine, cid, local(WIB, 2026, 3, 16, 9))
    assert refused.value.zones[0]["reason"].startswith("after_window")  # type: ignore[union-attr]
    assert refused.value.zones[0]["next_allowed_at"] is None
    assert count(engine, Round) == 0


def test_firing_before_the_window_is_skipped(engine: Engine, three_zones: int) -> None:
    result = fire(engine, three_zones, "Asia/Jakarta", local(WIB, 2026, 2, 23, 9))
    assert result.round is None
    assert result.reason.startswith("before_window")


def test_late_firing_runs_now_if_allowed_else_is_skipped(engine: Engine, three_zones: int) -> None:
    nominal = local(WIB, 2026, 3, 2, 9)
    skipped = fire(engine, three_zones, "Asia/Jakarta", nominal, now=local(WIB, 2026, 3, 2, 16))
    assert skipped.round is None
    assert skipped.reason.startswith("missed: outside_send_window")
    late = fire(engine, three_zones, "Asia/Jakarta", nominal, now=local(WIB, 2026, 3, 2, 11, 30))
    assert late.round is not None
    assert late.round.send_at == local(WIB, 2026, 3, 2, 11, 30)
    assert late.round.scheduled_for == nominal


def test_late_firing_still_before_its_deferred_moment_is_not_missed(
    engine: Engine, three_zones: int
) -> None:
    # Down over the holiday Monday; back on Tuesday evening: Wednesday's send is still ahead.
    nominal = local(WIB, 2026, 3, 23, 9)
    result = fire(engine, three_zones, "Asia/Jakarta", nominal, now=local(WIB, 2026, 3, 24, 20))
    assert result.round is not None
    assert result.round.send_at == local(WIB, 2026, 3, 25, 8)


def test_paused_or_draft_campaign_fires_nothing(engine: Engine, three_zones: int) -> None:
    with session_scope(engine) as s:
        s.execute(update(Campaign).values(state="paused"))
    assert fire(engine, three_zones, "Asia/Jakarta", local(WIB, 2026, 3, 2, 9)).reason == (
        "campaign_not_active: paused"
    )
    with session_scope(engine) as s:
        s.execute(update(Campaign).values(state="draft"))
    assert fire(engine, three_zones, "Asia/Jakarta", local(WIB, 2026, 3, 2, 9)).round is None
    with pytest.raises(Exception, match="rounds start only while it is active"):
        manual(engine, three_zones, local(WIB, 2026, 3, 2, 10))
    assert count(engine, Round) == 0


def test_firing_twice_yields_one_round_and_one_delivery_per_person(
    engine: Engine, three_zones: int
) -> None:
    nominal = local(WIB, 2026, 3, 2, 9)
    first = fire(engine, three_zones, "Asia/Jakarta", nominal)
    again = fire(engine, three_zones, "Asia/Jakarta", nominal, now=nominal + timedelta(minutes=1))
    assert first.round is not None
    assert again.round is None
    assert again.reason.startswith("duplicate")
    with session_scope(engine) as s:
        campaign = s.get(Campaign, three_zones)
        assert campaign is not None
        direct = rounds.create_round(
            s,
            campaign=campaign,
            timezone="Asia/Jakarta",
            scheduled_for=nominal,
            send_at=nominal,
            origin="schedule",
            now=nominal,
        )
    assert direct is None
    assert count(engine, Round) == 1
    people = [e for e, _, _ in deliveries(engine)]
    assert len(people) == len(set(people)) == 2
    with Session(engine) as s:
        scheduled = s.exec(
            select(func.sum(DeliveryTally.count)).where(DeliveryTally.outcome == "scheduled")
        ).one()
    assert scheduled == 2


def crash_mid_firing(engine: Engine, campaign_id: int, nominal: datetime) -> None:
    with session_scope(engine) as s:
        rounds.fire_scheduled_round(
            s, campaign_id=campaign_id, timezone="Asia/Jakarta", nominal_at=nominal, now=nominal
        )
        raise RuntimeError("process killed before commit")


def test_restart_mid_firing_leaves_nothing_half_done(engine: Engine, three_zones: int) -> None:
    nominal = local(WIB, 2026, 3, 2, 9)
    with pytest.raises(RuntimeError, match="killed"):
        crash_mid_firing(engine, three_zones, nominal)
    assert count(engine, Round) == count(engine, Delivery) == 0
    assert fire(engine, three_zones, "Asia/Jakarta", nominal).reason == "created"
    assert count(engine, Delivery) == 2


def _race(engine: Engine, campaign_id: int, firings: list[datetime]) -> None:
    """Two transactions create rounds at the same time; the first holds its commit back."""
    started = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with session_scope(engine) as s:
                campaign = s.get(Campaign, campaign_id)
                assert campaign is not None
                rounds.create_round(
                    s,
                    campaign=campaign,
                    timezone="Asia/Jakarta",
                    scheduled_for=firings[0],
                    send_at=firings[0],
                    origin="schedule",
                    now=firings[0],
                )
                started.set()
                threading.Event().wait(0.5)
        except BaseException as exc:  # pragma: no cover - reported below
            started.set()
            errors.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(10)
    with session_scope(engine) as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        rounds.create_round(
            s,
            campaign=campaign,
            timezone="Asia/Jakarta",
            scheduled_for=firings[1],
            send_at=firings[1],
            origin="manual",
            now=firings[1],
        )
    thread.join()
    assert not errors


def test_racing_double_firing_creates_one_round(engine: Engine, three_zones: int) -> None:
    nominal = local(WIB, 2026, 3, 2, 9)
    _race(engine, three_zones, [nominal, nominal])
    assert count(engine, Round) == 1
    assert count(engine, Delivery) == 2


def test_racing_rounds_respect_the_gap(engine: Engine, three_zones: int) -> None:
    _race(engine, three_zones, [local(WIB, 2026, 3, 2, 9), local(WIB, 2026, 3, 2, 10)])
    assert count(engine, Round) == 2
    assert count(engine, Delivery) == 2


def test_budget_holds_over_a_season_of_scheduled_and_manual_rounds(
    engine: Engine, vault: PhoneVault, template: int
) -> None:
    add_opd(engine, "JKT")
    early = add_enrolments(engine, vault, "JKT", 3)
    cid = add_campaign(
        engine,
        template_id=template,
        now=BEFORE,
        cron="0 9 * * *",
        max_reminders=3,
        min_gap_days=7,
    )
    late: list[int] = []
    day = date(2026, 3, 2)
    while day <= date(2026, 4, 30):
        if day == date(2026, 3, 12):
            late = add_enrolments(engine, vault, "JKT", 2)
        fire(engine, cid, "Asia/Jakarta", local(WIB, day.year, day.month, day.day, 9))
        with contextlib.suppress(rounds.RoundRefused):  # weekend or holiday: refused
            manual(engine, cid, local(WIB, day.year, day.month, day.day, 13, 5))
        day += timedelta(days=1)

    sent: dict[int, list[datetime]] = defaultdict(list)
    for enrolment_id, send_at, _ in deliveries(engine):
        assert enrolment_id is not None
        sent[enrolment_id].append(send_at)
    assert sorted(sent) == sorted(early + late)
    for times in sent.values():
        times.sort()
        assert len(times) == 3
        assert all(b - a >= timedelta(days=7) for a, b in itertools.pairwise(times))
    assert sent[early[0]][0] == local(WIB, 2026, 3, 2, 9)
    # The latecomers start their own budget at the first round after they enrolled.
    # 18-24 March are holidays; the firing of Monday 23 March went out Wednesday 08:00.
    assert sent[late[0]][:2] == [local(WIB, 2026, 3, 12, 9), local(WIB, 2026, 3, 25, 8)]


def test_failed_and_skipped_deliveries_do_not_use_up_the_budget(
    engine: Engine, vault: PhoneVault, template: int
) -> None:
    add_opd(engine, "JKT")
    add_enrolments(engine, vault, "JKT", 2)
    cid = add_campaign(engine, template_id=template, now=BEFORE, max_reminders=1)
    fire(engine, cid, "Asia/Jakarta", local(WIB, 2026, 3, 2, 9))
    with session_scope(engine) as s:
        first = s.exec(select(Delivery).order_by(col(Delivery.id))).first()
        assert first is not None
        first.state = "failed"
        s.add(first)
    second = fire(engine, cid, "Asia/Jakarta", local(WIB, 2026, 3, 9, 9))
    assert second.round is not None
    assert second.round.recipients == 1
    third = fire(engine, cid, "Asia/Jakarta", local(WIB, 2026, 3, 16, 9))
    assert third.round is not None
    assert third.round.recipients == 0


def test_gap_counts_from_round_send_time_and_plan_sees_it(
    engine: Engine, vault: PhoneVault, template: int
) -> None:
    add_opd(engine, "JKT")
    add_enrolments(engine, vault, "JKT", 6)
    cid = add_campaign(engine, template_id=template, now=BEFORE, min_gap_days=8)
    fire(engine, cid, "Asia/Jakarta", local(WIB, 2026, 3, 2, 9))
    with Session(engine) as s:
        campaign = s.get(Campaign, cid)
        assert campaign is not None
        planned = plan.campaign_plan(s, campaign=campaign, now=local(WIB, 2026, 3, 3, 9))
    reach = [(r.send_local[:10], r.reachable_now) for r in planned.zones[0].rounds[:2]]
    assert reach == [("2026-03-09", 0), ("2026-03-16", 6)]
    assert fire(engine, cid, "Asia/Jakarta", local(WIB, 2026, 3, 9, 9)).round.recipients == 0  # type: ignore[union-attr]
    assert fire(engine, cid, "Asia/Jakarta", local(WIB, 2026, 3, 16, 9)).round.recipients == 6  # type: ignore[union-attr]


def test_only_eligible_people_in_scope_and_zone_get_a_delivery(
    engine: Engine, vault: PhoneVault, template: int
) -> None:
    add_opd(engine, "IN")
    add_opd(engine, "OUT")  # same zone, not in the campaign's scope
    add_opd(engine, "EAST", tz="Asia/Jayapura")  # in scope, other zone
    keep, suppressed, unreachable, withdrawn, no_number = add_enrolments(engine, vault, "IN", 5)
    outside = add_enrolments(engine, vault, "OUT", 1)
    east = add_enrolments(engine, vault, "EAST", 1)
    with session_scope(engine) as s:
        gone = s.get(Enrolment, suppressed)
        assert gone is not None
        s.add(Suppression(phone_index=gone.phone_index or "", source="stop"))
        s.execute(
            update(Enrolment).where(col(Enrolment.id) == unreachable).values(unreachable_at=BEFORE)
        )
        s.execute(  # listed while suppressed: no ciphertext, nothing to send to
            update(Enrolment).where(col(Enrolment.id) == no_number).values(phone_ciphertext=None)
        )
        public = s.get(Enrolment, withdrawn)
        assert public is not None
        enrolment_service.withdraw(s, actor=cli_principal(), public_id=public.public_id)
    cid = add_campaign(engine, template_id=template, now=BEFORE, opd_codes=["IN", "EAST"])
    result = fire(engine, cid, "Asia/Jakarta", local(WIB, 2026, 3, 2, 9))
    assert result.round is not None
    assert result.round.recipients == 1
    assert [e for e, _, _ in deliveries(engine)] == [keep]
    assert outside[0] != keep
    east_round = fire(engine, cid, "Asia/Jayapura", local(WIT, 2026, 3, 2, 9))
    assert east_round.round is not None
    assert sorted(e for e, _, _ in deliveries(engine)) == sorted([keep, *east])
    assert fire(engine, cid, "Asia/Makassar", local(WITA, 2026, 3, 2, 9)).reason == (
        "no_opd_in_timezone"
    )


def test_public_ids_are_random_and_never_employee_ids(engine: Engine, three_zones: int) -> None:
    for tz, zone in (("Asia/Jakarta", WIB), ("Asia/Makassar", WITA), ("Asia/Jayapura", WIT)):
        fire(engine, three_zones, tz, local(zone, 2026, 3, 2, 9))
    rows = deliveries(engine)
    public_ids = [p for _, _, p in rows]
    assert len(public_ids) == len(set(public_ids)) == 9
    assert all(re.fullmatch(r"[0-9a-f]{32}", p) for p in public_ids)
    with Session(engine) as s:
        enrolment_ids = {str(i) for i in s.exec(select(Enrolment.id)).all()}
        enrolment_public = set(s.exec(select(Enrolment.public_id)).all())
    assert not set(public_ids) & (enrolment_ids | enrolment_public)
    assert not any(str(e) in p[:4] for e, _, p in rows if e is not None and len(str(e)) > 3)


def test_scheduled_tally_counts_per_opd_on_the_local_send_day(
    engine: Engine, vault: PhoneVault, template: int
) -> None:
    add_opd(engine, "A")
    add_opd(engine, "B")
    add_enrolments(engine, vault, "A", 2)
    add_enrolments(engine, vault, "B", 3)
    cid = add_campaign(engine, template_id=template, now=BEFORE)
    fire(engine, cid, "Asia/Jakarta", local(WIB, 2026, 3, 2, 9))
    with Session(engine) as s:
        rows = s.exec(
            select(DeliveryTally.opd_id, DeliveryTally.day, DeliveryTally.count).where(
                DeliveryTally.outcome == "scheduled"
            )
        ).all()
    assert sorted((d, c) for _, d, c in rows) == [(date(2026, 3, 2), 2), (date(2026, 3, 2), 3)]
