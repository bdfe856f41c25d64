"""Statistics API: figures from the counters, suppression, roles, CSV export and its audit."""

from dataclasses import dataclass
from datetime import timedelta

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
from app.errors import Forbidden
from app.security import PhoneVault
from app.stats import figures as stats_figures
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

FIRST = TODAY - timedelta(days=10)
COUNT_KEYS = (
    "enrolled",
    "opted_out",
    "unreachable",
    "scheduled",
    "accepted",
    "delivered",
    "failed_not_on_whatsapp",
    "failed_refused",
    "failed_other",
    "unknown",
    "skipped",
    "pending",
)


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
    # DINKES: large figures everywhere
    enrolment_counts(engine, ids["DINKES"], before, enrolled=120, withdrawn=5, opted_out=9)
    enrolment_counts(engine, ids["DINKES"], FIRST + timedelta(days=1), opted_out=7, unreachable=6)
    enrolment_counts(engine, ids["DINKES"], FIRST + timedelta(days=2), resumed=2)
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
    # counters of another campaign and of an OPD outside this one are not mixed in
    other = add_campaign_row(engine, name="lain")
    delivery_counts(engine, other, ids["DINKES"], FIRST, scheduled=1000, accepted=1000)
    enrolment_counts(engine, ids["LAIN"], FIRST, enrolled=500, opted_out=100)
    return World(client, engine, campaign, ids, tokens)


@pytest.fixture
def world(client: TestClient, engine: Engine) -> World:
    """Three OPDs; BAPPEDA has small counts (2 opt-outs, 3 refusals)."""
    return build_world(client, engine, small=True)


@pytest.fixture
def clean_world(client: TestClient, engine: Engine) -> World:
    """The same without any count below 5."""
    return build_world(client, engine, small=False)


def _by_code(body: dict[str, object]) -> dict[str, dict[str, object]]:
    rows = body["rows"]
    assert isinstance(rows, list)
    return {r["opd_code"]: r for r in rows}


def test_figures_per_opd_and_total_come_from_the_counters(clean_world: World) -> None:
    world = clean_world
    body = as_json(world.get("inspectorate", f"/api/v1/stats/campaigns/{world.campaign}"))
    rows = _by_code(body)
    assert list(rows) == ["BAPPEDA", "DINKES", "DISDIK"]  # by code; LAIN is not in scope
    dinkes = rows["DINKES"]
    assert dinkes["enrolled"] == 120 + 2 - 5 - 9 - 7  # resumed adds, every exit subtracts
    assert dinkes["opted_out"] == 7  # only STOPs within the campaign period
    assert dinkes["unreachable"] == 6
    assert dinkes["scheduled"] == 190
    assert dinkes["accepted"] == 190 - 6 - 5 - 5 - 8
    assert dinkes["delivered"] == 150
    assert dinkes["failed_not_on_whatsapp"] == 6
    assert dinkes["failed_other"] == 5
    assert dinkes["unknown"] == 5
    assert dinkes["pending"] == 8
    assert dinkes["delivery_rate"] == round(150 / 190, 4)
    assert dinkes["opt_out_rate"] == round(7 / (101 + 7), 4)
    total = body["total"]
    assert total["opd_code"] is None
    assert total["scheduled"] == 190 + 50 + 70
    assert total["delivered"] == 150 + 40 + 60
    assert total["enrolled"] == 101 + 48 + (80 - 9)
    assert total["opted_out"] == 7 + 12 + 9
    assert all(isinstance(v, int) for r in rows.values() for k, v in r.items() if k in COUNT_KEYS)
    assert total["delivery_rate"] == round(250 / 310, 4)
    assert body["min_cell"] == 5
    assert body["as_of"] == TODAY.isoformat()
    assert set(body["notes"]) == {"<5", "x"}


def test_small_counts_are_withheld_with_their_rates_and_partners(world: World) -> None:
    body = as_json(world.get("admin", f"/api/v1/stats/campaigns/{world.campaign}"))
    rows = _by_code(body)
    assert rows["BAPPEDA"]["opted_out"] == "<5"
    assert rows["BAPPEDA"]["opt_out_rate"] == "x"  # built on a withheld count
    assert rows["BAPPEDA"]["failed_refused"] == "<5"
    for key in COUNT_KEYS:
        column = [rows[c][key] for c in rows]
        withheld = [v for v in column if isinstance(v, str)]
        # with a published total, a lone withheld cell would be total minus the others
        if not isinstance(body["total"][key], str):
            assert len(withheld) != 1, key
    for row in [*rows.values(), body["total"]]:
        for key in COUNT_KEYS:
            value = row[key]
            assert value in ("<5", "x") or (isinstance(value, int) and (value == 0 or value >= 5))
        # scheduled = accepted + failures + unknown + skipped + pending, in every row
        parts = [row[k] for k in COUNT_KEYS[4:5] + COUNT_KEYS[6:]]
        linked = [row["scheduled"], *parts]
        assert sum(isinstance(v, str) for v in linked) != 1


def test_daily_counts_each_outcome_on_its_day_and_adds_up(clean_world: World) -> None:
    world = clean_world
    body = as_json(world.get("inspectorate", f"/api/v1/stats/campaigns/{world.campaign}/daily"))
    days = {d["day"]: d for d in body["days"]}
    assert min(days) == FIRST.isoformat()
    assert max(days) == TODAY.isoformat()
    assert len(days) == 11  # every day of the period, also the empty ones
    first = days[FIRST.isoformat()]
    assert first["scheduled"] == 100 + 50 + 70
    assert first["delivered"] == 80 + 40 + 60
    assert days[(FIRST + timedelta(days=7)).isoformat()]["scheduled"] == 90
    assert days[(FIRST + timedelta(days=5)).isoformat()]["scheduled"] == 0
    assert days[(FIRST + timedelta(days=3)).isoformat()]["opted_out"] == 9
    assert days[(FIRST + timedelta(days=1)).isoformat()]["opted_out"] == 7 + 12
    totals = as_json(world.get("inspectorate", f"/api/v1/stats/campaigns/{world.campaign}"))
    for key, value in body["total"].items():
        if key != "day":
            assert value == totals["total"][key], key


def test_coordinator_sees_only_their_own_opd(clean_world: World) -> None:
    world = clean_world
    body = as_json(world.get("coordinator", f"/api/v1/stats/campaigns/{world.campaign}"))
    assert [r["opd_code"] for r in body["rows"]] == ["DINKES"]
    row = body["rows"][0]
    assert row["scheduled"] == 190
    assert {k: v for k, v in body["total"].items() if k not in ("opd_code", "opd_name")} == {
        k: v for k, v in row.items() if k not in ("opd_code", "opd_name")
    }
    daily = as_json(world.get("coordinator", f"/api/v1/stats/campaigns/{world.campaign}/daily"))
    assert daily["opd_code"] == "DINKES"
    assert daily["total"]["scheduled"] == 190  # not the other OPDs' 120
    assert daily["total"]["opted_out"] == 7


def test_one_row_table_is_suppressed_too(engine: Engine, world: World) -> None:
    ids = world.ids
    lonely = add_campaign_row(engine, name="kecil", opds=[ids["BAPPEDA"]])
    delivery_counts(engine, lonely, ids["BAPPEDA"], TODAY, **outcome_row(40, failed_refused=2))
    coord = add_token(engine, Role.coordinator, "BAPPEDA")
    body = as_json(world.client.get(f"/api/v1/stats/campaigns/{lonely}", headers=bearer(coord)))
    row = body["rows"][0]
    assert row["failed_refused"] == "<5"
    # 40 scheduled = accepted + 2: accepted (or scheduled) must be withheld as well
    assert "x" in (row["accepted"], row["scheduled"])


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


def test_csv_export_opens_in_excel_and_is_audited(world: World) -> None:
    url = f"/api/v1/stats/campaigns/{world.campaign}"
    response = world.get("inspectorate", url, format="csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw.decode("utf-8-sig").split("\r\n")
    assert lines[0].startswith("Kode OPD;Nama OPD;Terdaftar aktif;Berhenti (STOP);")
    bappeda = next(line.split(";") for line in lines if line.startswith("BAPPEDA;"))
    assert bappeda[3] == "<5"  # opted out
    total = next(line.split(";") for line in lines if line.startswith("Jumlah;"))
    assert total[5] == "310"
    assert total[-2] == "80,65"  # delivery rate in percent, decimal comma next to ';'
    comma = world.get("inspectorate", url, format="csv", sep=",").content.decode("utf-8-sig")
    assert comma.split("\r\n")[0].startswith("Kode OPD,Nama OPD,Terdaftar aktif,")
    assert comma.split("\r\n")[-2].split(",")[-2] == "80.65"
    daily = world.get("coordinator", f"{url}/daily", format="csv", sep="tab")
    day_lines = daily.content.decode("utf-8-sig").split("\r\n")
    assert day_lines[0].startswith("Tanggal\tPengingat dijadwalkan\t")
    assert day_lines[1].startswith(FIRST.isoformat() + "\t100\t")
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


def test_a_finished_campaign_counts_enrolments_up_to_its_end(engine: Engine) -> None:
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
        stats = service.campaign_stats(s, campaign_id=campaign, viewer=cli_principal(), min_cell=5)
    assert stats.as_of == last
    assert stats.rows[0].enrolled == 44
    assert stats.rows[0].opted_out == 6


def test_figures_follow_real_enrolments_and_withdrawals(engine: Engine, vault: PhoneVault) -> None:
    add_opd(engine, "DINKES")
    campaign = add_campaign_row(engine, first_day=TODAY, last_day=TODAY + timedelta(days=5))
    enrolments = add_enrolments(engine, vault, "DINKES", 12)
    with session_scope(engine) as s:
        from app.enrolment.models import Enrolment

        first = s.get(Enrolment, enrolments[0])
        assert first is not None
        enrolment_service.withdraw(s, actor=cli_principal(), public_id=first.public_id)
    with session_scope(engine) as s:
        stats = service.campaign_stats(s, campaign_id=campaign, viewer=cli_principal(), min_cell=5)
        k3 = service.campaign_stats(s, campaign_id=campaign, viewer=cli_principal(), min_cell=20)
    assert stats.rows[0].enrolled == 11
    assert stats.total.enrolled == 11
    assert k3.rows[0].enrolled == "<20"
    assert "<20" in k3.notes


def test_a_principal_without_opd_cannot_read_as_coordinator(world: World) -> None:
    nobody = Principal(name="x", role=Role.coordinator)
    with session_scope(world.engine) as s, pytest.raises(Forbidden, match="no OPD"):
        service.campaign_stats(s, campaign_id=world.campaign, viewer=nobody, min_cell=5)


def test_cached_figures_follow_every_counter_write(
    clean_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = clean_world
    service.clear_cache()
    computed: list[int] = []
    real = stats_figures.read_figures

    def counting(*args: object, **kwargs: object) -> object:
        computed.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(stats_figures, "read_figures", counting)
    url = f"/api/v1/stats/campaigns/{world.campaign}"
    first = as_json(world.get("inspectorate", url))
    as_json(world.get("inspectorate", f"{url}/daily"))
    as_json(world.get("inspectorate", url))
    assert len(computed) == 1  # one computation for both views and the repeat
    delivery_counts(world.engine, world.campaign, world.ids["DINKES"], TODAY, delivered=1)
    second = as_json(world.get("inspectorate", url))
    assert second["total"]["delivered"] == first["total"]["delivered"] + 1
    enrolment_counts(world.engine, world.ids["DISDIK"], TODAY, opted_out=1)
    third = as_json(world.get("inspectorate", url))
    assert third["total"]["opted_out"] == first["total"]["opted_out"] + 1
    assert len(computed) == 3
    as_json(world.get("coordinator", url))  # another scope: its own entry
    assert len(computed) == 4


def test_an_upcoming_campaign_has_zero_figures_and_no_days(engine: Engine) -> None:
    add_opd(engine, "DINKES")
    enrolment_counts(engine, opd_ids(engine)["DINKES"], TODAY, enrolled=30)
    campaign = add_campaign_row(
        engine,
        state=CampaignState.draft,
        first_day=TODAY + timedelta(days=30),
        last_day=TODAY + timedelta(days=60),
    )
    with session_scope(engine) as s:
        stats = service.campaign_stats(s, campaign_id=campaign, viewer=cli_principal(), min_cell=5)
        daily = service.campaign_daily(s, campaign_id=campaign, viewer=cli_principal(), min_cell=5)
    assert stats.rows[0].enrolled == 30
    assert stats.total.scheduled == 0
    assert stats.total.delivery_rate is None  # nothing scheduled yet: no rate
    assert daily.days == []
    assert daily.total.scheduled == 0
