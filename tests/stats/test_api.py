"""Statistics API: rounded figures from the counters, closed days, roles, CSV export and audit."""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select

from app.audit.models import AuditEvent
from app.auth.models import Role
from app.auth.principal import Principal, cli_principal
from app.campaigns.models import CampaignState
from app.db import session_scope
from app.enrolment import service as enrolment_service
from app.enrolment.models import Enrolment
from app.errors import Forbidden
from app.security import PhoneVault
from app.stats import service
from tests.factories import add_enrolments, add_opd, add_token, bearer
from tests.stats.helpers import (
    TODAY,
    add_campaign_row,
    as_json,
    delivery_counts,
    enrolment_counts,
    opd_ids,
    outcome_row,
)

KEY = b"s" * 32

FIRST = TODAY - timedelta(days=10)
YESTERDAY = TODAY - timedelta(days=1)
MEASURES = (
    "enrolled",
    "scheduled",
    "delivered",
    "not_delivered",
    "opted_out",
    "expired",
    "billed",
)
# What build_world puts in, per OPD, counted up to yesterday (the last closed day).
TRUTH = {
    "DINKES": {
        "enrolled": 115,
        "scheduled": 190,
        "delivered": 150,
        "not_delivered": 16,
        "opted_out": 7,
        "expired": 0,
        "billed": 0,
    },
    "BAPPEDA": {
        "enrolled": 60,
        "scheduled": 50,
        "delivered": 40,
        "not_delivered": 3,
        "opted_out": 2,
        "expired": 2,
        "billed": 0,
    },
    "DISDIK": {
        "enrolled": 80,
        "scheduled": 70,
        "delivered": 60,
        "not_delivered": 6,
        "opted_out": 9,
        "expired": 3,
        "billed": 0,
    },
}


@dataclass
class World:
    client: TestClient
    engine: Engine
    campaign: int
    ids: dict[str, int]
    tokens: dict[str, str]

    def get(self, who: str, path: str, **params: str) -> object:
        return self.client.get(path, params=params, headers=bearer(self.tokens[who]))


def build_world(client: TestClient, engine: Engine, *, small: bool) -> World:
    for code, name in (("DINKES", "Dinas Kesehatan"), ("BAPPEDA", "Bappeda"), ("DISDIK", "Dik")):
        add_opd(engine, code, name)
    add_opd(engine, "LAIN", "OPD di luar kampanye")
    ids = opd_ids(engine)
    tokens = {
        "admin": add_token(engine, Role.admin),
        "inspectorate": add_token(engine, Role.inspectorate),
        "coordinator": add_token(engine, Role.coordinator, "DINKES"),
        "outsider": add_token(engine, Role.coordinator, "LAIN"),
    }
    campaign = add_campaign_row(engine, opds=[ids["DINKES"], ids["BAPPEDA"], ids["DISDIK"]])
    before = FIRST - timedelta(days=5)
    # DINKES: large figures everywhere; a STOP before the campaign is not in its period
    enrolment_counts(engine, ids["DINKES"], before, enrolled=120, withdrawn=5, opted_out=9)
    enrolment_counts(engine, ids["DINKES"], FIRST + timedelta(days=1), opted_out=7, unreachable=6)
    enrolment_counts(engine, ids["DINKES"], FIRST + timedelta(days=2), resumed=2)
    # today is not closed: nothing of it is published yet
    enrolment_counts(engine, ids["DINKES"], TODAY, opted_out=1, enrolled=3)
    delivery_counts(engine, campaign, ids["DINKES"], TODAY, scheduled=40, delivered=30)
    for day, row in (
        (FIRST, outcome_row(100, delivered=80, failed_not_on_whatsapp=6, failed_other=5)),
        (FIRST + timedelta(days=7), outcome_row(90, delivered=70, unknown=5, pending=8)),
    ):
        delivery_counts(engine, campaign, ids["DINKES"], day, **row)
    # BAPPEDA: a few small cells
    enrolment_counts(engine, ids["BAPPEDA"], before, enrolled=60)
    enrolment_counts(
        engine, ids["BAPPEDA"], FIRST + timedelta(days=1), opted_out=2 if small else 12
    )
    delivery_counts(
        engine,
        campaign,
        ids["BAPPEDA"],
        FIRST,
        **outcome_row(50, delivered=40, failed_refused=3 if small else 0),
    )
    # DISDIK: large again
    enrolment_counts(engine, ids["DISDIK"], before, enrolled=80)
    enrolment_counts(engine, ids["DISDIK"], FIRST + timedelta(days=3), opted_out=9, unreachable=7)
    delivery_counts(
        engine, campaign, ids["DISDIK"], FIRST, **outcome_row(70, delivered=60, failed_other=6)
    )
    # Accepted but undelivered when their window closed: kedaluwarsa (2 is a small cell).
    delivery_counts(engine, campaign, ids["BAPPEDA"], FIRST + timedelta(days=1), expired=2)
    delivery_counts(engine, campaign, ids["DISDIK"], FIRST + timedelta(days=1), expired=3)
    # counters of another campaign and of an OPD outside this one are not mixed in
    other = add_campaign_row(engine, name="lain")
    delivery_counts(engine, other, ids["DINKES"], FIRST, scheduled=1000, accepted=1000)
    enrolment_counts(engine, ids["LAIN"], FIRST, enrolled=500, opted_out=100)
    return World(client, engine, campaign, ids, tokens)


@pytest.fixture
def world(client: TestClient, engine: Engine) -> World:
    """Three OPDs; BAPPEDA has small counts (2 opt-outs, 3 refusals)."""
    return build_world(client, engine, small=True)


def _by_code(body: dict[str, object]) -> dict[str, dict[str, object]]:
    rows = body["rows"]
    assert isinstance(rows, list)
    return {r["opd_code"]: r for r in rows}


def near(published: object, truth: int) -> bool:
    """A published figure: a multiple of 5 within 4 of the truth."""
    return isinstance(published, int) and published % 5 == 0 and abs(published - truth) <= 4


def test_figures_are_rounded_counts_up_to_yesterday(world: World) -> None:
    body = as_json(world.get("inspectorate", f"/api/v1/stats/campaigns/{world.campaign}"))
    assert body["as_of"] == YESTERDAY.isoformat()
    rows = _by_code(body)
    assert set(rows) == set(TRUTH)
    for code, truth in TRUTH.items():
        for measure, value in truth.items():
            assert near(rows[code][measure], value), (code, measure, rows[code][measure])
    # The total is the sum of the published rows, never rounded on its own.
    for measure in MEASURES:
        assert body["total"][measure] == sum(r[measure] for r in rows.values())
    assert "Counts" not in body["notes"]
    assert set(body["notes"]) == {"pembulatan", "hari_tertutup", "opd_lainnya", "persentase"}


def test_rates_come_from_the_published_figures(world: World) -> None:
    body = as_json(world.get("admin", f"/api/v1/stats/campaigns/{world.campaign}"))
    for row in [*body["rows"], body["total"]]:
        assert row["delivery_rate"] == round(row["delivered"] / row["scheduled"], 4)
        assert row["opt_out_rate"] == round(row["opted_out"] / row["enrolled"], 4)


def test_the_same_cell_is_the_same_figure_for_every_viewer_and_reading(world: World) -> None:
    url = f"/api/v1/stats/campaigns/{world.campaign}"
    seen = as_json(world.get("inspectorate", url))
    assert as_json(world.get("admin", url)) == seen
    service.clear_cache()
    assert as_json(world.get("inspectorate", url)) == seen  # recomputed: the same coins
    own = as_json(world.get("coordinator", url))
    assert own["rows"] == [_by_code(seen)["DINKES"]]
    daily = as_json(world.get("coordinator", f"{url}/daily"))
    last = {k: v for k, v in daily["days"][-1].items() if k != "day"}
    assert last == {m: own["rows"][0][m] for m in MEASURES}


def test_small_opds_are_published_together(world: World) -> None:
    ids = world.ids
    enrolment_counts(world.engine, ids["BAPPEDA"], FIRST, erased=55)  # 5 people left
    body = as_json(world.get("inspectorate", f"/api/v1/stats/campaigns/{world.campaign}"))
    codes = [r["opd_code"] for r in body["rows"]]
    assert codes == ["DINKES", "DISDIK", "LAINNYA"]
    group = _by_code(body)["LAINNYA"]
    assert group["opd_name"] == "OPD lainnya"
    assert near(group["enrolled"], 5)
    assert near(group["scheduled"], 50)
    # The coordinator of the small OPD still sees their own OPD, rounded by the same rule.
    coord = add_token(world.engine, Role.coordinator, "BAPPEDA")
    own = as_json(
        world.client.get(f"/api/v1/stats/campaigns/{world.campaign}", headers=bearer(coord))
    )
    assert [r["opd_code"] for r in own["rows"]] == ["BAPPEDA"]
    assert near(own["rows"][0]["enrolled"], 5)


def test_today_counts_only_once_it_has_closed(world: World) -> None:
    tomorrow = datetime.combine(TODAY + timedelta(days=1), time(12), UTC)
    with session_scope(world.engine) as s:
        now = service.campaign_stats(
            s, campaign_id=world.campaign, viewer=cli_principal(), key=KEY, group_min=10
        )
        later = service.campaign_stats(
            s,
            campaign_id=world.campaign,
            viewer=cli_principal(),
            key=KEY,
            group_min=10,
            now=tomorrow,
        )
    assert now.as_of == YESTERDAY
    assert later.as_of == TODAY
    dinkes_now = next(r for r in now.rows if r.opd_code == "DINKES")
    dinkes_later = next(r for r in later.rows if r.opd_code == "DINKES")
    assert near(dinkes_now.scheduled, 190)
    assert near(dinkes_later.scheduled, 230)
    assert near(dinkes_later.opted_out, 8)


def test_daily_figures_are_cumulative_per_closed_day(world: World) -> None:
    daily = as_json(world.get("inspectorate", f"/api/v1/stats/campaigns/{world.campaign}/daily"))
    days = daily["days"]
    assert days[0]["day"] == FIRST.isoformat()
    assert days[-1]["day"] == YESTERDAY.isoformat()
    assert len(days) == (YESTERDAY - FIRST).days + 1
    for measure in ("scheduled", "delivered", "not_delivered", "opted_out"):
        values = [d[measure] for d in days]
        assert all(v % 5 == 0 for v in values)
    # Three OPDs' rows, each within 4 of the truth, summed: within 12 of the 220 scheduled.
    assert abs(days[0]["scheduled"] - 220) <= 12
    stats = as_json(world.get("inspectorate", f"/api/v1/stats/campaigns/{world.campaign}"))
    assert {m: days[-1][m] for m in MEASURES} == {m: stats["total"][m] for m in MEASURES}


def test_coordinator_sees_only_their_own_opd(world: World) -> None:
    body = as_json(world.get("coordinator", f"/api/v1/stats/campaigns/{world.campaign}"))
    assert [r["opd_code"] for r in body["rows"]] == ["DINKES"]
    assert near(body["rows"][0]["scheduled"], 190)
    assert {k: v for k, v in body["total"].items() if k not in ("opd_code", "opd_name")} == {
        k: v for k, v in body["rows"][0].items() if k not in ("opd_code", "opd_name")
    }
    daily = as_json(world.get("coordinator", f"/api/v1/stats/campaigns/{world.campaign}/daily"))
    assert daily["opd_code"] == "DINKES"
    assert near(daily["days"][-1]["scheduled"], 190)  # not the other OPDs' 120


def test_a_campaign_outside_the_coordinators_opd_is_not_found(world: World) -> None:
    response = world.get("outsider", f"/api/v1/stats/campaigns/{world.campaign}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "campaign_not_found"


@pytest.mark.parametrize("path", ["", "/daily"])
def test_unknown_campaign_and_missing_token(world: World, path: str) -> None:
    url = f"/api/v1/stats/campaigns/999999{path}"
    assert world.get("admin", url).status_code == 404
    ok = f"/api/v1/stats/campaigns/{world.campaign}{path}"
    assert world.client.get(ok).status_code == 401
    assert world.client.get(ok, headers=bearer("not-a-token")).status_code == 401
    for who in ("admin", "inspectorate", "coordinator"):
        assert world.get(who, ok).status_code == 200


def test_csv_export_opens_in_excel_matches_the_api_and_is_audited(world: World) -> None:
    url = f"/api/v1/stats/campaigns/{world.campaign}"
    response = world.get("inspectorate", url, format="csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw.decode("utf-8-sig").split("\r\n")
    assert lines[0] == (
        "Kode OPD;Nama OPD;Terdaftar;Pengingat dijadwalkan;Terkirim;Tidak terkirim;"
        "Berhenti (STOP);Kedaluwarsa;Ditagih Meta;Tingkat terkirim (%);Tingkat berhenti (%)"
    )
    body = as_json(world.get("inspectorate", url))
    dinkes = next(line.split(";") for line in lines if line.startswith("DINKES;"))
    assert dinkes[2:9] == [str(_by_code(body)["DINKES"][m]) for m in MEASURES]
    total = next(line.split(";") for line in lines if line.startswith("Jumlah;"))
    assert total[2:9] == [str(body["total"][m]) for m in MEASURES]
    rate = f"{body['total']['delivery_rate'] * 100:.2f}"
    assert total[-2] == rate.replace(".", ",")  # decimal comma next to ';'
    comma = world.get("inspectorate", url, format="csv", sep=",").content.decode("utf-8-sig")
    assert comma.split("\r\n")[0].startswith("Kode OPD,Nama OPD,Terdaftar,")
    assert comma.split("\r\n")[-2].split(",")[-2] == rate
    daily = world.get("coordinator", f"{url}/daily", format="csv", sep="tab")
    day_lines = daily.content.decode("utf-8-sig").split("\r\n")
    assert day_lines[0].startswith("Tanggal\tTerdaftar\tPengingat dijadwalkan\t")
    assert day_lines[1].startswith(FIRST.isoformat() + "\t")
    assert world.get("inspectorate", url, format="csv", sep="x").status_code == 422
    world.get("inspectorate", url)  # a JSON read is not an export
    with session_scope(world.engine) as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "stats.export")).all()
    assert [(e.actor_name, (e.detail or {}).get("view")) for e in events] == [
        ("test inspectorate", "campaign"),
        ("test inspectorate", "campaign"),
        ("test coordinator", "daily"),
    ]
    assert all(e.object_id == str(world.campaign) for e in events)


def test_a_finished_campaign_counts_up_to_its_end(engine: Engine) -> None:
    add_opd(engine, "DINKES")
    opd = opd_ids(engine)["DINKES"]
    last = TODAY - timedelta(days=20)
    campaign = add_campaign_row(
        engine, state=CampaignState.finished, first_day=last - timedelta(days=30), last_day=last
    )
    enrolment_counts(engine, opd, last - timedelta(days=40), enrolled=50)
    enrolment_counts(engine, opd, last - timedelta(days=3), opted_out=6)
    enrolment_counts(engine, opd, last + timedelta(days=2), opted_out=10, erased=20)
    with session_scope(engine) as s:
        stats = service.campaign_stats(
            s, campaign_id=campaign, viewer=cli_principal(), key=KEY, group_min=10
        )
    assert stats.as_of == last
    assert near(stats.rows[0].enrolled, 50)
    assert near(stats.rows[0].opted_out, 6)


def test_figures_follow_real_enrolments_and_withdrawals(engine: Engine, vault: PhoneVault) -> None:
    add_opd(engine, "DINKES")
    campaign = add_campaign_row(
        engine, first_day=TODAY - timedelta(days=1), last_day=TODAY + timedelta(days=5)
    )
    enrolments = add_enrolments(engine, vault, "DINKES", 12)
    with session_scope(engine) as s:
        first = s.get(Enrolment, enrolments[0])
        assert first is not None
        enrolment_service.withdraw(s, actor=cli_principal(), public_id=first.public_id)
    tomorrow = datetime.combine(TODAY + timedelta(days=1), time(12), UTC)
    with session_scope(engine) as s:
        stats = service.campaign_stats(
            s, campaign_id=campaign, viewer=cli_principal(), key=KEY, group_min=10, now=tomorrow
        )
        grouped = service.campaign_stats(
            s, campaign_id=campaign, viewer=cli_principal(), key=KEY, group_min=20, now=tomorrow
        )
    assert near(stats.rows[0].enrolled, 11)
    assert stats.rows[0].opd_code == "DINKES"
    assert stats.total.enrolled == stats.rows[0].enrolled
    assert grouped.rows[0].opd_code == "LAINNYA"
    assert "20" in grouped.notes["opd_lainnya"]


def test_a_principal_without_opd_cannot_read_as_coordinator(world: World) -> None:
    nobody = Principal(name="x", role=Role.coordinator)
    with session_scope(world.engine) as s, pytest.raises(Forbidden, match="no OPD"):
        service.campaign_stats(s, campaign_id=world.campaign, viewer=nobody, key=KEY, group_min=10)


def test_cached_figures_follow_every_counter_write(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.clear_cache()
    computed: list[int] = []
    real = service.read_series

    def counting(*args: object, **kwargs: object) -> object:
        computed.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "read_series", counting)
    url = f"/api/v1/stats/campaigns/{world.campaign}"
    first = as_json(world.get("inspectorate", url))
    as_json(world.get("inspectorate", f"{url}/daily"))
    as_json(world.get("inspectorate", url))
    assert len(computed) == 1  # one computation for both views and the repeat
    delivery_counts(world.engine, world.campaign, world.ids["DINKES"], YESTERDAY, delivered=9)
    second = as_json(world.get("inspectorate", url))
    assert near(_by_code(second)["DINKES"]["delivered"], 159)
    enrolment_counts(world.engine, world.ids["DISDIK"], YESTERDAY, opted_out=10)
    third = as_json(world.get("inspectorate", url))
    assert near(_by_code(third)["DISDIK"]["opted_out"], 19)
    assert _by_code(third)["DINKES"] == _by_code(second)["DINKES"]
    assert len(computed) == 3
    assert first["as_of"] == third["as_of"]
    as_json(world.get("coordinator", url))  # another scope: its own entry
    assert len(computed) == 4


def test_an_upcoming_campaign_has_zero_figures_and_no_days(engine: Engine) -> None:
    add_opd(engine, "DINKES")
    enrolment_counts(engine, opd_ids(engine)["DINKES"], TODAY - timedelta(days=3), enrolled=30)
    campaign = add_campaign_row(
        engine,
        state=CampaignState.draft,
        first_day=TODAY + timedelta(days=30),
        last_day=TODAY + timedelta(days=60),
    )
    with session_scope(engine) as s:
        stats = service.campaign_stats(
            s, campaign_id=campaign, viewer=cli_principal(), key=KEY, group_min=10
        )
        daily = service.campaign_daily(
            s, campaign_id=campaign, viewer=cli_principal(), key=KEY, group_min=10
        )
    assert stats.as_of is None
    assert stats.total.scheduled == 0
    assert stats.total.delivery_rate is None  # nothing scheduled yet: no rate
    assert daily.days == []
