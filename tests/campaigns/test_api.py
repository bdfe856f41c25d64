"""Campaign API: roles, validation, lifecycle, safe changes, manual rounds, plan, audit."""

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.audit.models import AuditEvent
from app.auth.models import Role
from app.campaigns import service as campaign_service
from app.campaigns.router import current_time
from app.db import session_scope
from app.security import PhoneVault
from tests.factories import add_enrolments, add_opd, add_template, add_token, bearer

WIB, WIT = ZoneInfo("Asia/Jakarta"), ZoneInfo("Asia/Jayapura")
BEFORE = datetime(2026, 2, 20, 3, 0, tzinfo=UTC)
URL = "/api/v1/campaigns"


@pytest.fixture
def clock(api: FastAPI) -> Iterator[Callable[[datetime], None]]:
    """Set the API's notion of now."""
    state = {"now": BEFORE}
    api.dependency_overrides[current_time] = lambda: state["now"]

    def set_now(moment: datetime) -> None:
        state["now"] = moment

    yield set_now
    api.dependency_overrides.pop(current_time, None)


@pytest.fixture
def admin(engine: Engine) -> dict[str, str]:
    return bearer(add_token(engine, Role.admin))


@pytest.fixture
def template(engine: Engine) -> int:
    add_opd(engine, "JKT")
    add_opd(engine, "JPR", tz="WIT")
    return add_template(engine)


def body(template: int, **changes: Any) -> dict[str, Any]:
    return {
        "name": "SPI 2026",
        "spi_year": 2026,
        "first_day": "2026-03-01",
        "last_day": "2026-04-30",
        "template_id": template,
        **changes,
    }


def create(client: TestClient, admin: dict[str, str], template: int, **changes: Any) -> int:
    response = client.post(URL, json=body(template, **changes), headers=admin)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def audit_actions(engine: Engine) -> list[tuple[str, str, str]]:
    with Session(engine) as s:
        rows = s.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
    return [(r.action, r.outcome, r.actor_name) for r in rows if r.action.startswith("campaign")]


def test_create_draft_with_defaults(
    client: TestClient, clock: Callable[[datetime], None], admin: dict[str, str], template: int
) -> None:
    response = client.post(URL, json=body(template, opd_codes=["jkt"]), headers=admin)
    assert response.status_code == 201, response.text
    data = response.json()
    assert data["state"] == "draft"
    assert (data["cron"], data["send_start"], data["send_end"]) == (
        "0 9 * * 1",
        "08:00:00",
        "15:00:00",
    )
    assert (data["max_reminders"], data["min_gap_days"], data["retention_days"]) == (3, 7, 30)
    assert (data["skip_holidays"], data["friday_pause"]) == (True, False)
    assert (data["all_opds"], data["opd_codes"], data["timezones"]) == (
        False,
        ["JKT"],
        ["Asia/Jakarta"],
    )
    assert data["paused_reason"] is None
    everyone = client.post(URL, json=body(template, name="Semua"), headers=admin).json()
    assert (everyone["all_opds"], everyone["opd_codes"]) == (True, ["JKT", "JPR"])
    assert everyone["timezones"] == ["Asia/Jakarta", "Asia/Jayapura"]
    listed = client.get(URL, headers=admin).json()
    assert [c["name"] for c in listed] == ["Semua", "SPI 2026"]


@pytest.mark.parametrize(
    ("changes", "code", "words"),
    [
        ({"cron": "0 9 * *"}, "invalid_cron", "expected 5 fields"),
        ({"cron": "0 9 31 2 *"}, "invalid_cron", "never fires"),
        ({"first_day": "2026-02-01", "last_day": "2026-02-19"}, "window_ended", "ended"),
        ({"first_day": "2026-05-01"}, "invalid_window", "first_day"),
        ({"opd_codes": ["JKT", "NOPE"]}, "unknown_opd", "NOPE"),
        ({"template_id": 999}, "template_not_usable", "does not exist"),
        ({"send_start": "15:00", "send_end": "08:00"}, "invalid_send_window", "send_start"),
        ({"max_reminders": 0}, "invalid", "max_reminders"),
        ({"max_reminders": 11}, "invalid", "max_reminders"),
        ({"min_gap_days": 0}, "invalid", "min_gap_days"),
        ({"min_gap_days": 61}, "invalid", "min_gap_days"),
        ({"send_start": "08:00+07:00"}, "invalid", "local time"),
    ],
)
def test_create_refuses_with_a_clear_reason(
    client: TestClient,
    clock: Callable[[datetime], None],
    admin: dict[str, str],
    template: int,
    changes: dict[str, Any],
    code: str,
    words: str,
) -> None:
    response = client.post(URL, json=body(template, **changes), headers=admin)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert words in error["message"]


def test_template_not_usable_is_refused(
    client: TestClient, clock: Callable[[datetime], None], admin: dict[str, str], engine: Engine
) -> None:
    paused = add_template(engine, name="dijeda", status="PAUSED")
    response = client.post(URL, json=body(paused), headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "template_not_usable"
    assert "PAUSED" in response.json()["error"]["message"]


def test_roles(
    client: TestClient,
    clock: Callable[[datetime], None],
    admin: dict[str, str],
    template: int,
    engine: Engine,
) -> None:
    cid = create(client, admin, template)
    inspectorate = bearer(add_token(engine, Role.inspectorate))
    coordinator = bearer(add_token(engine, Role.coordinator, opd_code="JKT"))
    for path in (URL, f"{URL}/{cid}", f"{URL}/{cid}/plan"):
        assert client.get(path, headers=inspectorate).status_code == 200
        assert client.get(path, headers=coordinator).status_code == 403
        assert client.get(path).status_code == 401
    writes = [
        ("post", URL, body(template)),
        ("patch", f"{URL}/{cid}", {"name": "x"}),
        ("post", f"{URL}/{cid}/activate", None),
        ("post", f"{URL}/{cid}/pause", None),
        ("post", f"{URL}/{cid}/resume", None),
        ("post", f"{URL}/{cid}/rounds", None),
    ]
    for method, path, payload in writes:
        for headers in (inspectorate, coordinator):
            response = client.request(method, path, json=payload, headers=headers)
            assert response.status_code == 403, (method, path)
    assert client.get(f"{URL}/9999", headers=admin).status_code == 404


def test_lifecycle_and_safe_changes(
    client: TestClient,
    clock: Callable[[datetime], None],
    admin: dict[str, str],
    template: int,
    engine: Engine,
) -> None:
    cid = create(client, admin, template)
    path = f"{URL}/{cid}"
    draft_edit = {"cron": "30 10 * * 2", "friday_pause": True, "opd_codes": ["JPR"]}
    edited = client.patch(path, json=draft_edit, headers=admin)
    assert edited.status_code == 200, edited.text
    assert (edited.json()["cron"], edited.json()["opd_codes"]) == ("30 10 * * 2", ["JPR"])
    assert client.patch(path, json={"cron": "nope"}, headers=admin).status_code == 422

    assert client.post(f"{path}/activate", headers=admin).json()["state"] == "active"
    assert client.post(f"{path}/activate", headers=admin).status_code == 409

    safe = {"last_day": "2026-05-15", "max_reminders": 2, "min_gap_days": 10, "name": "SPI"}
    assert client.patch(path, json=safe, headers=admin).status_code == 200
    same = {"cron": "30 10 * * 2", "opd_codes": ["JPR"], "max_reminders": 2}
    assert client.patch(path, json=same, headers=admin).status_code == 200
    other_template = add_template(engine, name="lain")
    refused = [
        {"last_day": "2026-05-01"},
        {"max_reminders": 3},
        {"min_gap_days": 9},
        {"cron": "0 9 * * 1"},
        {"template_id": other_template},
        {"opd_codes": []},
        {"first_day": "2026-03-02"},
        {"friday_pause": False},
        {"send_end": "16:00"},
    ]
    for change in refused:
        response = client.patch(path, json=change, headers=admin)
        assert response.status_code == 409, change
        assert response.json()["error"]["code"] == "campaign_change_not_allowed"
    current = client.get(path, headers=admin).json()
    assert (current["last_day"], current["max_reminders"], current["min_gap_days"]) == (
        "2026-05-15",
        2,
        10,
    )

    paused = client.post(f"{path}/pause", json={"reason": "token Meta ditolak"}, headers=admin)
    assert (paused.json()["state"], paused.json()["paused_reason"]) == (
        "paused",
        "token Meta ditolak",
    )
    assert client.post(f"{path}/pause", headers=admin).status_code == 409
    assert client.patch(path, json={"min_gap_days": 14}, headers=admin).status_code == 200
    resumed = client.post(f"{path}/resume", headers=admin).json()
    assert (resumed["state"], resumed["paused_reason"]) == ("active", None)
    assert client.post(f"{path}/resume", headers=admin).status_code == 409
    via_patch = client.patch(path, json={"state": "paused", "paused_reason": "cek"}, headers=admin)
    assert (via_patch.json()["state"], via_patch.json()["paused_reason"]) == ("paused", "cek")
    assert client.patch(path, json={"state": "active"}, headers=admin).json()["state"] == "active"

    with session_scope(engine) as s:
        finished = campaign_service.finish_ended_campaigns(s, now=datetime(2026, 5, 16, tzinfo=UTC))
    assert finished == 1
    ended = client.get(path, headers=admin).json()
    assert ended["state"] == "finished"
    assert ended["finished_at"] is not None
    assert client.patch(path, json={"name": "x"}, headers=admin).status_code == 409
    assert client.post(f"{path}/resume", headers=admin).status_code == 409

    actions = audit_actions(engine)
    ok = [a for a, outcome, _ in actions if outcome == "ok"]
    assert ok == [
        "campaign.create",
        "campaign.update",
        "campaign.activate",
        "campaign.update",
        "campaign.pause",
        "campaign.update",
        "campaign.resume",
        "campaign.pause",
        "campaign.resume",
        "campaign.finish",
    ]
    assert ("campaign.finish", "ok", "system") in actions
    refusals = [a for a, outcome, _ in actions if outcome == "refused"]
    assert refusals.count("campaign.update") == len(refused) + 2
    assert "campaign.activate" in refusals
    assert "campaign.pause" in refusals


def test_activation_rechecks_template_and_window(
    client: TestClient,
    clock: Callable[[datetime], None],
    admin: dict[str, str],
    template: int,
    engine: Engine,
) -> None:
    cid = create(client, admin, template)
    clock(datetime(2026, 5, 1, tzinfo=UTC))
    late = client.post(f"{URL}/{cid}/activate", headers=admin)
    assert (late.status_code, late.json()["error"]["code"]) == (422, "window_ended")
    clock(BEFORE)
    with session_scope(engine) as s:
        from app.templates.models import MessageTemplate

        t = s.get(MessageTemplate, template)
        assert t is not None
        t.status = "PAUSED"
        s.add(t)
    refused = client.post(f"{URL}/{cid}/activate", headers=admin)
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "template_not_usable")
    assert client.get(f"{URL}/{cid}", headers=admin).json()["state"] == "draft"


def test_finish_waits_for_the_last_zone(
    client: TestClient,
    clock: Callable[[datetime], None],
    admin: dict[str, str],
    template: int,
    engine: Engine,
) -> None:
    cid = create(client, admin, template, last_day="2026-03-13")
    client.post(f"{URL}/{cid}/activate", headers=admin)
    # Midnight after 13 March: 15:00 UTC in WIT, 17:00 UTC in WIB.
    with session_scope(engine) as s:
        assert (
            campaign_service.finish_ended_campaigns(s, now=datetime(2026, 3, 13, 16, tzinfo=UTC))
            == 0
        )
    with session_scope(engine) as s:
        assert (
            campaign_service.finish_ended_campaigns(s, now=datetime(2026, 3, 13, 17, tzinfo=UTC))
            == 1
        )
    assert client.get(f"{URL}/{cid}", headers=admin).json()["state"] == "finished"


def at(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz).astimezone(UTC)  # type: ignore[misc]


def test_manual_round_outside_send_window_or_friday_prayer_is_refused(
    client: TestClient,
    clock: Callable[[datetime], None],
    admin: dict[str, str],
    template: int,
    vault: PhoneVault,
    engine: Engine,
) -> None:
    add_enrolments(engine, vault, "JKT", 2)
    cid = create(client, admin, template, opd_codes=["JKT"], friday_pause=True)
    rounds_url = f"{URL}/{cid}/rounds"
    assert client.post(rounds_url, headers=admin).status_code == 409  # still a draft
    client.post(f"{URL}/{cid}/activate", headers=admin)

    clock(at(WIB, 2026, 3, 3, 7, 0))
    early = client.post(rounds_url, headers=admin)
    assert early.status_code == 422
    error = early.json()["error"]
    assert error["code"] == "round_not_allowed"
    assert "outside_send_window" in error["message"]
    assert error["zones"][0]["next_allowed_local"] == "2026-03-03T08:00:00+07:00"

    clock(at(WIB, 2026, 3, 6, 11, 30))
    prayer = client.post(rounds_url, headers=admin).json()["error"]
    assert prayer["zones"][0]["reason"].startswith("friday_prayer")
    assert prayer["zones"][0]["next_allowed_local"] == "2026-03-06T13:00:00+07:00"

    clock(at(WIB, 2026, 3, 7, 10, 0))
    weekend = client.post(rounds_url, headers=admin).json()["error"]
    assert weekend["zones"][0]["reason"].startswith("weekend")
    assert weekend["zones"][0]["next_allowed_local"] == "2026-03-09T08:00:00+07:00"

    clock(at(WIB, 2026, 3, 23, 10, 0))
    holiday = client.post(rounds_url, headers=admin).json()["error"]
    assert holiday["zones"][0]["reason"].startswith("holiday")
    assert holiday["zones"][0]["next_allowed_local"] == "2026-03-25T08:00:00+07:00"

    clock(at(WIB, 2026, 3, 6, 13, 0))
    sent = client.post(rounds_url, headers=admin)
    assert sent.status_code == 201, sent.text
    zone = sent.json()["zones"][0]
    assert zone["created"]
    assert (zone["round"]["origin"], zone["round"]["recipients"]) == ("manual", 2)
    assert client.post(rounds_url, headers=admin).status_code == 422  # same minute: duplicate
    clock(at(WIB, 2026, 3, 9, 13, 0))
    too_soon = client.post(rounds_url, headers=admin).json()
    assert too_soon["zones"][0]["round"]["recipients"] == 0  # min_gap_days holds for manual rounds

    actions = audit_actions(engine)
    assert actions.count(("campaign.round.start", "ok", "test admin")) == 2
    assert actions.count(("campaign.round.start", "refused", "test admin")) == 6


def test_manual_round_runs_only_where_the_local_time_allows(
    client: TestClient,
    clock: Callable[[datetime], None],
    admin: dict[str, str],
    template: int,
    vault: PhoneVault,
    engine: Engine,
) -> None:
    add_enrolments(engine, vault, "JKT", 1)
    add_enrolments(engine, vault, "JPR", 1)
    cid = create(client, admin, template)
    client.post(f"{URL}/{cid}/activate", headers=admin)
    clock(at(WIB, 2026, 3, 3, 14, 30))  # 16:30 in Jayapura: after its send window
    response = client.post(f"{URL}/{cid}/rounds", headers=admin)
    assert response.status_code == 201
    zones = {z["timezone"]: z for z in response.json()["zones"]}
    assert zones["Asia/Jakarta"]["created"]
    assert not zones["Asia/Jayapura"]["created"]
    assert zones["Asia/Jayapura"]["reason"].startswith("outside_send_window")
    assert zones["Asia/Jayapura"]["next_allowed_local"] == "2026-03-04T08:00:00+09:00"


def test_plan_shows_local_times_and_counts_only(
    client: TestClient,
    clock: Callable[[datetime], None],
    admin: dict[str, str],
    template: int,
    vault: PhoneVault,
    engine: Engine,
) -> None:
    add_enrolments(engine, vault, "JKT", 3)
    cid = create(client, admin, template)
    response = client.get(f"{URL}/{cid}/plan", params={"limit": 2}, headers=admin)
    assert response.status_code == 200
    data = response.json()
    assert data["state"] == "draft"
    zones = {z["timezone"]: z for z in data["zones"]}
    jkt = zones["Asia/Jakarta"]["rounds"]
    assert [r["send_local"] for r in jkt] == [
        "2026-03-02T09:00:00+07:00",
        "2026-03-09T09:00:00+07:00",
    ]
    assert jkt[0]["send_at"] == "2026-03-02T02:00:00Z"
    assert zones["Asia/Jayapura"]["rounds"][0]["send_at"] == "2026-03-02T00:00:00Z"
    # Three people: rounded like every published figure (0 or 5, the same on every reading).
    assert jkt[0]["reachable_now"] in (0, 5)
    assert jkt[1]["reachable_now"] == jkt[0]["reachable_now"]
    assert zones["Asia/Jayapura"]["rounds"][0]["reachable_now"] == 0
    again = client.get(f"{URL}/{cid}/plan", params={"limit": 2}, headers=admin).json()
    assert again["zones"] == data["zones"]
    add_enrolments(engine, vault, "JKT", 3)
    grown = client.get(f"{URL}/{cid}/plan", params={"limit": 1}, headers=admin).json()
    jkt_now = next(z for z in grown["zones"] if z["timezone"] == "Asia/Jakarta")
    assert jkt_now["rounds"][0]["reachable_now"] in (5, 10)
    # Per-zone counts could undo the statistics' complementary suppression: admins only.
    inspectorate = bearer(add_token(engine, Role.inspectorate))
    seen = client.get(f"{URL}/{cid}/plan", params={"limit": 1}, headers=inspectorate).json()
    assert {r["reachable_now"] for z in seen["zones"] for r in z["rounds"]} == {None}
    assert set(jkt[0]) == {
        "nominal_at",
        "nominal_local",
        "send_at",
        "send_local",
        "deferred",
        "reachable_now",
        "spread_until",
        "spread_days",
        "reaches_everyone",
        "note",
    }
    # How a round spreads under the messaging limit is a coarse count too: admins only.
    assert {
        (r["spread_until"], r["spread_days"], r["note"]) for z in seen["zones"] for r in z["rounds"]
    } == {(None, None, None)}
    assert client.get(f"{URL}/{cid}/plan", params={"limit": 50}, headers=admin).status_code == 422


def test_window_end_is_not_extended_into_the_past(
    client: TestClient,
    clock: Callable[[datetime], None],
    admin: dict[str, str],
    template: int,
) -> None:
    cid = create(client, admin, template, last_day="2026-03-13")
    client.post(f"{URL}/{cid}/activate", headers=admin)
    clock(datetime(2026, 3, 20, tzinfo=UTC))
    response = client.patch(f"{URL}/{cid}", json={"last_day": "2026-03-19"}, headers=admin)
    assert (response.status_code, response.json()["error"]["code"]) == (422, "window_ended")
    assert client.patch(f"{URL}/{cid}", json={"last_day": "2026-03-31"}, headers=admin).json()[
        "last_day"
    ] == str(date(2026, 3, 31))
