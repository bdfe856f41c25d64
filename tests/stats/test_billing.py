"""What Meta billed: the `billed` figure per OPD and closed day, in messages and in rupiah.

It is published by the statistics' own rule (closed days, grouping, keyed rounding to base 5),
takes the coin of `delivered` so that two roundings of one value never narrow it, and rupiah
come from the published count at the configured rate.
"""

from datetime import timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.stats.figures import PUBLISHED_RULE
from app.stats.rounding import SeriesRule, publish_array
from tests.stats.helpers import TODAY, as_json, delivery_counts
from tests.stats.test_api import FIRST, YESTERDAY, World, build_world, near

RATE = 320  # the default utility rate (SPI_MESSAGE_RATES_IDR)
BILLED = {"DINKES": 150, "BAPPEDA": 38, "DISDIK": 57}


@pytest.fixture
def world(client: TestClient, engine: Engine) -> World:
    world = build_world(client, engine, small=True)
    ids, campaign = world.ids, world.campaign
    # DINKES: every delivered reminder billed (150 delivered); the others: some were free.
    delivery_counts(engine, campaign, ids["DINKES"], FIRST, billed_utility=80)
    delivery_counts(engine, campaign, ids["DINKES"], FIRST + timedelta(days=7), billed_utility=70)
    delivery_counts(engine, campaign, ids["BAPPEDA"], FIRST, billed_utility=36, billed_other=2)
    delivery_counts(engine, campaign, ids["DISDIK"], FIRST, billed_utility=57)
    # Today has not closed: its bill is not published yet.
    delivery_counts(engine, campaign, ids["DINKES"], TODAY, billed_utility=30)
    return world


def _rows(body: dict[str, object]) -> dict[str, dict[str, object]]:
    rows = body["rows"]
    assert isinstance(rows, list)
    return {r["opd_code"]: r for r in rows}


def test_billed_messages_and_their_cost_per_opd_and_closed_day(world: World) -> None:
    url = f"/api/v1/stats/campaigns/{world.campaign}"
    body = as_json(world.get("inspectorate", f"{url}/billing"))
    assert (body["as_of"], body["category"], body["rate_idr"]) == (
        YESTERDAY.isoformat(),
        "utility",
        RATE,
    )
    assert body["rates_as_of"] == "2024-10-01"
    rows = _rows(body)
    assert set(rows) == set(BILLED)
    for code, truth in BILLED.items():
        row = rows[code]
        assert near(row["billed"], truth), (code, row["billed"])
        assert row["cost_idr"] == row["billed"] * RATE
        days = row["days"]
        assert days[0]["day"] == FIRST.isoformat()
        assert days[-1]["day"] == YESTERDAY.isoformat()
        assert days[-1]["billed"] == row["billed"]
        assert all(d["cost_idr"] == d["billed"] * RATE for d in days)
    # DINKES's second batch was billed a week in; the days before show only the first.
    dinkes_days = {d["day"]: d["billed"] for d in rows["DINKES"]["days"]}
    assert near(dinkes_days[(FIRST + timedelta(days=6)).isoformat()], 80)
    total = body["total"]
    assert total["billed"] == sum(r["billed"] for r in rows.values())
    assert total["cost_idr"] == total["billed"] * RATE
    per_opd = [[d["billed"] for d in r["days"]] for r in rows.values()]
    assert [d["billed"] for d in total["days"]] == [sum(day) for day in zip(*per_opd, strict=True)]
    # The very figure the statistics publish, where every delivered reminder was billed.
    stats = _rows(as_json(world.get("inspectorate", url)))
    assert {code: r["billed"] for code, r in stats.items()} == {
        code: r["billed"] for code, r in rows.items()
    }
    assert stats["DINKES"]["billed"] == stats["DINKES"]["delivered"]


def test_a_coordinator_sees_the_same_cells_of_their_own_opd_only(world: World) -> None:
    path = f"/api/v1/stats/campaigns/{world.campaign}/billing"
    seen = as_json(world.get("inspectorate", path))
    own = as_json(world.get("coordinator", path))
    assert own["rows"] == [_rows(seen)["DINKES"]]
    assert world.get("outsider", path).status_code == 404  # type: ignore[attr-defined]


def test_billed_takes_the_coin_of_delivered_and_never_exceeds_it() -> None:
    rule = SeriesRule(monotone=frozenset(), within={"billed": "delivered"})
    for delivered in range(0, 40):
        for billed in range(0, delivered + 1):
            truth = np.array([[delivered, billed]], dtype=np.int64)
            shown = publish_array(
                truth, ("delivered", "billed"), key=b"k" * 32, cell="c", rule=rule
            )
            d, b = int(shown[0][0]), int(shown[0][1])
            assert b % 5 == 0
            assert abs(b - billed) <= 4
            assert b <= d
            if billed == delivered:
                assert b == d  # one value, one coin: nothing to intersect
    assert PUBLISHED_RULE.within == {"billed": "delivered"}
