"""The cost forecast in the campaign plan: people x reminders left x rate, within the limits."""

from datetime import UTC, date, datetime

from sqlalchemy import Engine
from sqlmodel import Session

from app.campaigns import plan
from app.campaigns.models import Campaign
from app.campaigns.schemas import CostForecast
from app.config import Settings
from app.security import PhoneVault
from tests.factories import add_campaign, add_opd, add_people, add_template

BEFORE = datetime(2026, 2, 20, tzinfo=UTC)
RATE = 320  # the default utility rate (SPI_MESSAGE_RATES_IDR)


def _settings(messaging_limit: int) -> Settings:
    return Settings(_env_file=None, messaging_limit=messaging_limit)  # type: ignore[call-arg]


def _forecast(
    engine: Engine,
    campaign_id: int,
    *,
    messaging_limit: int = 0,
    key: bytes | None = None,
    with_reach: bool = True,
) -> CostForecast | None:
    with Session(engine) as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        return plan.campaign_plan(
            s,
            campaign=campaign,
            now=BEFORE,
            limit=1,
            rounding_key=key,
            with_reach=with_reach,
            settings=_settings(messaging_limit),
        ).forecast


def _two_opds(engine: Engine, vault: PhoneVault) -> None:
    add_opd(engine, "BIG")
    add_people(engine, vault, "BIG", 40)
    add_opd(engine, "SML")  # under SPI_STATS_GROUP_MIN (10): only inside "OPD lainnya"
    add_people(engine, vault, "SML", 3, first=40)


def test_people_times_reminders_left_times_the_rate_per_opd_and_in_total(
    engine: Engine, vault: PhoneVault
) -> None:
    _two_opds(engine, vault)
    # Weekly on Monday from 1 March: three reminders each (max_reminders) fit before the end.
    cid = add_campaign(engine, template_id=add_template(engine), now=BEFORE)
    forecast = _forecast(engine, cid)
    assert forecast is not None
    assert (forecast.category, forecast.rate_idr, forecast.rates_as_of) == (
        "utility",
        RATE,
        date(2024, 10, 1),
    )
    rows = {r.opd_code: (r.opd_name, r.reminders, r.cost_idr) for r in forecast.rows}
    assert rows == {
        "BIG": ("BIG", 40 * 3, 40 * 3 * RATE),
        "LAINNYA": ("OPD lainnya", 3 * 3, 3 * 3 * RATE),
    }
    assert (forecast.total.reminders, forecast.total.cost_idr) == (129, 129 * RATE)
    assert forecast.note.startswith("Perkiraan paling banyak")


def test_only_the_rounds_left_before_the_end_count(engine: Engine, vault: PhoneVault) -> None:
    _two_opds(engine, vault)
    # Mondays 2 and 9 March only: two reminders each, although the budget allows three.
    cid = add_campaign(
        engine, template_id=add_template(engine), now=BEFORE, last_day=date(2026, 3, 10)
    )
    forecast = _forecast(engine, cid)
    assert forecast is not None
    assert forecast.total.reminders == 43 * 2


def test_people_the_messaging_limit_cannot_reach_before_the_end_are_not_counted(
    engine: Engine, vault: PhoneVault
) -> None:
    add_opd(engine, "BIG")
    add_people(engine, vault, "BIG", 400)
    # One Monday: at 250 (200 planned per 24 h) half of the 400 cannot be reached.
    cid = add_campaign(
        engine, template_id=add_template(engine), now=BEFORE, last_day=date(2026, 3, 2)
    )
    limited = _forecast(engine, cid, messaging_limit=250)
    unlimited = _forecast(engine, cid, messaging_limit=0)
    assert limited is not None
    assert unlimited is not None
    assert unlimited.total.reminders == 400
    assert limited.total.reminders == 200
    assert limited.total.cost_idr == 200 * RATE


def test_published_forecasts_are_rounded_like_the_statistics_and_for_admins_only(
    engine: Engine, vault: PhoneVault
) -> None:
    add_opd(engine, "ONE")
    add_people(engine, vault, "ONE", 41)
    add_opd(engine, "TWO")
    add_people(engine, vault, "TWO", 17, first=41)
    cid = add_campaign(engine, template_id=add_template(engine), now=BEFORE)
    forecast = _forecast(engine, cid, key=b"k" * 32)
    assert forecast is not None
    truth = {"ONE": 41 * 3, "TWO": 17 * 3}
    for row in forecast.rows:
        assert row.opd_code is not None
        assert row.reminders % 5 == 0
        assert abs(row.reminders - truth[row.opd_code]) <= 4
        assert row.cost_idr == row.reminders * RATE
    assert forecast.total.reminders == sum(r.reminders for r in forecast.rows)
    assert _forecast(engine, cid, key=b"k" * 32) == forecast  # the same coins every time
    assert _forecast(engine, cid, key=b"k" * 32, with_reach=False) is None
