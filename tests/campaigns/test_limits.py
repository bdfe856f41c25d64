"""Rounds under Meta's messaging limit: spread over allowed moments, never over the safety share."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from app.campaigns import limits, plan, rounds
from app.campaigns.models import Campaign, Round
from app.campaigns.timing import closed_reason
from app.config import Settings
from app.db import session_scope
from app.messaging.tiers import tier_word
from app.outbox.models import Delivery, DeliveryTally
from app.security import PhoneVault
from app.sender import changes
from tests.factories import add_campaign, add_opd, add_people, add_template

WIB = ZoneInfo("Asia/Jakarta")
BEFORE = datetime(2026, 2, 20, tzinfo=UTC)
# 3,000 people in three OPDs of different sizes.
SIZES = {"BIG": 1500, "MID": 1000, "SML": 500}


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=WIB).astimezone(UTC)  # type: ignore[misc]


def meta_limit(engine: Engine, limit: int, share: float = 0.8) -> Settings:
    """Meta says the portfolio's limit, recorded as the sender records a reading; settings
    that leave it alone (no operator ceiling)."""
    with session_scope(engine) as s:
        state = changes.state_row(s, lock=True)
        changes.set_limit(s, state, tier=tier_word(limit), at=BEFORE, source="reading")
    return Settings(  # type: ignore[call-arg]
        _env_file=None, messaging_limit=None, messaging_limit_safety_share=share
    )


def no_limit() -> Settings:
    """The operator's SPI_MESSAGING_LIMIT=0: rounds are planned with no limit at all."""
    return Settings(_env_file=None, messaging_limit=0)  # type: ignore[call-arg]


def three_opds(engine: Engine, vault: PhoneVault) -> None:
    first = 0
    for code, size in SIZES.items():
        add_opd(engine, code)
        add_people(engine, vault, code, size, first=first)
        first += size


def start_round(engine: Engine, campaign_id: int, at: datetime, settings: Settings) -> Round:
    with session_scope(engine) as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        created = rounds.create_round(
            s,
            campaign=campaign,
            timezone="Asia/Jakarta",
            scheduled_for=at,
            send_at=at,
            origin=rounds.MANUAL,
            now=at,
            settings=settings,
        )
        assert created is not None
        s.expunge(created)
        return created


def planned(engine: Engine, *, campaign_id: int | None = None) -> list[tuple[datetime, str, int]]:
    """(send moment, OPD code, how many) of every queued delivery."""
    from app.opds.models import Opd

    with Session(engine) as s:
        stmt = (
            select(Delivery.next_attempt_at, Opd.code, func.count())
            .join(Opd, col(Opd.id) == col(Delivery.opd_id))
            .where(Delivery.state == "queued")
            .group_by(col(Delivery.next_attempt_at), col(Opd.code))
        )
        if campaign_id is not None:
            stmt = stmt.where(Delivery.campaign_id == campaign_id)
        return [(at, code, int(n)) for at, code, n in s.exec(stmt).all()]


def busiest_24h(moments: Counter[datetime]) -> int:
    """The most sends in any window [x, x + 24 h); it is reached at a window opening on a send."""
    return max(
        sum(n for t, n in moments.items() if start <= t < start + limits.DAY) for start in moments
    )


@pytest.mark.parametrize(
    ("limit", "start", "days", "last_local"),
    [
        # 200 a day: 15 working days around the Nyepi and Lebaran holidays and Good Friday.
        (250, local(2026, 3, 13, 9), 15, date(2026, 4, 10)),
        # 1,600 a day: Tuesday, then Lebaran and cuti bersama, then Wednesday the 25th.
        (2000, local(2026, 3, 17, 9), 2, date(2026, 3, 25)),
    ],
)
def test_a_round_of_3000_is_spread_under_the_safety_share_and_reaches_everyone(
    engine: Engine, vault: PhoneVault, limit: int, start: datetime, days: int, last_local: date
) -> None:
    three_opds(engine, vault)
    cid = add_campaign(engine, template_id=add_template(engine), now=BEFORE)
    created = start_round(engine, cid, start, meta_limit(engine, limit))
    assert created.recipients == 3000

    rows = planned(engine)
    moments: Counter[datetime] = Counter()
    for at, _, n in rows:
        moments[at] += n
    cap = int(limit * 0.8)
    assert sum(moments.values()) == 3000
    assert busiest_24h(moments) == cap
    assert moments[start] == cap
    # Every batch is sent at a moment the campaign allows: no weekend, holiday or night.
    with Session(engine) as s:
        campaign = s.get(Campaign, cid)
        assert campaign is not None
        policy = rounds.policy_for(campaign)
    assert all(closed_reason(policy, "Asia/Jakarta", at) is None for at in moments)
    local_days = {at.astimezone(WIB).date() for at in moments}
    assert len(local_days) == days
    assert max(local_days) == last_local

    # Fair across OPDs: each full batch holds every OPD in proportion to its size.
    for at in moments:
        if moments[at] != cap:
            continue
        per_opd = {code: n for t, code, n in rows if t == at}
        for code, size in SIZES.items():
            assert abs(per_opd.get(code, 0) - cap * size / 3000) <= 1


def test_a_campaign_ending_too_soon_warns_and_skips_whom_it_cannot_reach(
    engine: Engine, vault: PhoneVault
) -> None:
    three_opds(engine, vault)
    cid = add_campaign(
        engine,
        template_id=add_template(engine),
        now=BEFORE,
        last_day=date(2026, 3, 31),
        cron="0 9 * * 5",  # Fridays
    )
    start = local(2026, 3, 13, 9)
    settings = meta_limit(engine, 250)
    with Session(engine) as s:
        campaign = s.get(Campaign, cid)
        assert campaign is not None
        forecast = plan.campaign_plan(
            s, campaign=campaign, now=start - timedelta(minutes=1), limit=1, settings=settings
        )
    first = forecast.zones[0].rounds[0]
    assert not first.reaches_everyone
    assert forecast.warnings == [
        "Putaran 1 (Asia/Jakarta, 2026-03-13) tidak dapat menjangkau sekitar 1.400 orang "
        "sebelum kampanye berakhir pada 2026-03-31 pada batas 250/24 jam."
    ]

    created = start_round(engine, cid, start, settings)
    # Eight working days of 200 before the end: Mar 13, 16, 17, 25, 26, 27, 30 and 31.
    assert created.recipients == 1600
    assert sum(n for _, _, n in planned(engine)) == 1600
    with Session(engine) as s:
        skipped = s.exec(
            select(func.count()).where(
                Delivery.state == "skipped", Delivery.error_class == "messaging_limit"
            )
        ).one()
        tallied = s.exec(
            select(func.sum(DeliveryTally.count)).where(DeliveryTally.outcome == "skipped")
        ).one()
    assert skipped == tallied == 1400


def test_the_plan_says_how_long_a_round_takes_at_the_limit(
    engine: Engine, vault: PhoneVault
) -> None:
    three_opds(engine, vault)
    cid = add_campaign(engine, template_id=add_template(engine), now=BEFORE)
    settings = meta_limit(engine, 2000)
    with Session(engine) as s:
        campaign = s.get(Campaign, cid)
        assert campaign is not None
        forecast = plan.campaign_plan(s, campaign=campaign, now=BEFORE, limit=1, settings=settings)
        unlimited = plan.campaign_plan(
            s, campaign=campaign, now=BEFORE, limit=1, settings=no_limit()
        )
    # Monday 2 March 09:00: 1,600 that day, 1,400 on Tuesday.
    first = forecast.zones[0].rounds[0]
    assert (forecast.messaging_limit, forecast.planned_per_24h) == (2000, 1600)
    assert first.note == "menjangkau semua dalam 2 hari kerja pada batas 2.000/24 jam"
    assert first.spread_until == local(2026, 3, 3, 9)
    assert forecast.warnings == []
    assert unlimited.messaging_limit is None
    assert unlimited.zones[0].rounds[0].spread_until == local(2026, 3, 2, 9)


def test_rounds_of_all_campaigns_share_the_limit(engine: Engine, vault: PhoneVault) -> None:
    for code, first in (("ONE", 0), ("TWO", 1000)):
        add_opd(engine, code)
        add_people(engine, vault, code, 1000, first=first)
    template = add_template(engine)
    one = add_campaign(engine, template_id=template, now=BEFORE, opd_codes=["ONE"])
    two = add_campaign(engine, template_id=template, now=BEFORE, opd_codes=["TWO"])
    settings = meta_limit(engine, 2000)
    start_round(engine, one, local(2026, 3, 2, 9), settings)
    start_round(engine, two, local(2026, 3, 2, 10), settings)

    moments: Counter[datetime] = Counter()
    for at, _, n in planned(engine):
        moments[at] += n
    assert busiest_24h(moments) <= 1600
    assert sum(moments.values()) == 2000
    second = Counter({at: n for at, _, n in planned(engine, campaign_id=two)})
    # Campaign one's 1,000 leave 600 on Monday; on Tuesday 09:00 they are 24 h old.
    assert second == Counter({local(2026, 3, 2, 10): 600, local(2026, 3, 3, 9): 400})


def test_a_spread_round_counts_for_the_gap_from_when_it_is_sent(
    engine: Engine, vault: PhoneVault
) -> None:
    add_opd(engine, "JKT")
    add_people(engine, vault, "JKT", 400)
    cid = add_campaign(engine, template_id=add_template(engine), now=BEFORE, min_gap_days=7)
    settings = meta_limit(engine, 250)
    start_round(engine, cid, local(2026, 3, 2, 9), settings)  # 200 on Monday, 200 on Tuesday
    # A week after Monday, only Monday's half is past the gap.
    again = start_round(engine, cid, local(2026, 3, 9, 9), no_limit())
    assert again.recipients == 200


def test_spread_places_nothing_over_the_cap_next_to_other_load() -> None:
    monday = datetime(2026, 3, 2, 2, tzinfo=UTC)
    other = [(monday + timedelta(hours=20), 150)]  # another campaign's batch that evening
    load = list(other)
    result = limits.spread(500, first=monday, cap=200, load=load, next_allowed=lambda at: at)
    # The load gains the batches placed, for the next round planned against it.
    assert load == other + [(slot.at, slot.people) for slot in result.slots]
    moments = Counter(dict(other))
    for slot in result.slots:
        moments[slot.at] += slot.people
    assert result.unplaced == 0
    assert result.placed == 500
    assert busiest_24h(moments) <= 200
    assert result.slots[0] == limits.Slot(monday, 50)  # the evening's 150 is within 24 h of it


def test_spread_without_a_limit_sends_everyone_at_once() -> None:
    at = datetime(2026, 3, 2, 2, tzinfo=UTC)
    result = limits.spread(3000, first=at, cap=None, load=[], next_allowed=lambda t: None)
    assert result.slots == [limits.Slot(at, 3000)]


def test_the_limit_follows_meta_and_the_operator_may_only_lower_it(engine: Engine) -> None:
    def limit(messaging_limit: int | None = None) -> int | None:
        settings = Settings(_env_file=None, messaging_limit=messaging_limit)  # type: ignore[call-arg]
        with Session(engine) as s:
            return limits.messaging_limit(s, settings=settings)

    assert limit() == 250  # a new portfolio's limit until Meta has said otherwise
    meta_limit(engine, 10_000)
    assert limit() == 10_000
    assert limit(messaging_limit=2000) == 2000
    assert limit(messaging_limit=100_000) == 10_000  # a ceiling never raises Meta's limit
    assert limit(messaging_limit=0) is None  # SPI_MESSAGING_LIMIT=0: no limit (benchmarks)
    with session_scope(engine) as s:
        state = changes.state_row(s, lock=True)
        later = BEFORE + timedelta(hours=1)
        changes.set_limit(s, state, tier="TIER_UNLIMITED", at=later, source="reading")
    assert limit() is None
    assert limit(messaging_limit=2000) == 2000
    assert limits.cap_per_24h(250, share=0.8) == 200
    assert limits.cap_per_24h(None, share=0.8) is None
    assert Settings.model_fields["messaging_limit"].default is None
