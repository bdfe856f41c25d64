"""Number and account notices change the sender state once, in Meta's order, with alerts."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.config import Settings
from app.db import session_scope
from app.sandbox import notices
from app.sender import service
from app.sender.models import SenderState
from tests.sender.conftest import T0, alerts, audit_actions, notify


def state(engine: Engine) -> SenderState:
    with session_scope(engine) as s:
        row = service.current_state(s)
        assert row is not None
        return row


def limit(engine: Engine) -> int | None:
    with session_scope(engine) as s:
        return service.current_messaging_limit(s)


def throughput(engine: Engine) -> int:
    with session_scope(engine) as s:
        return service.current_throughput_per_second(s)


def test_until_meta_says_otherwise_the_new_portfolio_limits_hold(engine: Engine) -> None:
    assert limit(engine) == 250
    assert throughput(engine) == 80


def test_flagged_then_downgraded_then_upgraded(
    engine: Engine, client: TestClient, settings: Settings
) -> None:
    notify(client, settings, notices.capability(people_per_day=10_000), at=T0)
    assert limit(engine) == 10_000

    flagged = notices.phone_quality(event="FLAGGED", current_limit="TIER_10K")
    notify(client, settings, flagged, at=T0 + 10)
    notify(client, settings, flagged, at=T0 + 10)
    assert state(engine).flagged
    assert alerts(engine) == [("quality_flagged", None)]

    downgrade = notices.phone_quality(
        event="DOWNGRADE", current_limit="TIER_2K", old_limit="TIER_10K"
    )
    notify(client, settings, downgrade, at=T0 + 20)
    assert limit(engine) == 2_000
    assert not state(engine).flagged
    assert alerts(engine) == [("quality_flagged", None), ("limit_downgrade", None)]

    # The flag, delivered again after the downgrade, is older: it changes nothing.
    before = len(audit_actions(engine))
    notify(client, settings, flagged, at=T0 + 10)
    assert not state(engine).flagged
    assert limit(engine) == 2_000
    assert len(audit_actions(engine)) == before
    assert len(alerts(engine)) == 2

    upgrade = notices.phone_quality(event="UPGRADE", current_limit="TIER_100K", old_limit="TIER_2K")
    notify(client, settings, upgrade, at=T0 + 30)
    assert limit(engine) == 100_000
    assert len(alerts(engine)) == 2


def test_a_late_capability_notice_does_not_undo_a_newer_limit(
    engine: Engine, client: TestClient, settings: Settings
) -> None:
    notify(client, settings, notices.capability(people_per_day=None), at=T0)
    assert limit(engine) is None
    notify(client, settings, notices.capability(people_per_day=2_000), at=T0 - 3600)
    assert limit(engine) is None
    assert alerts(engine) == []


def test_throughput_upgrade_raises_the_rate_but_not_the_limit(
    engine: Engine, client: TestClient, settings: Settings
) -> None:
    notify(client, settings, notices.capability(people_per_day=2_000), at=T0)
    upgrade = notices.phone_quality(event="THROUGHPUT_UPGRADE", current_limit="TIER_UNLIMITED")
    notify(client, settings, upgrade, at=T0 + 5)
    assert throughput(engine) == 1_000
    assert limit(engine) == 2_000
    assert audit_actions(engine).count("sender.throughput") == 1
    notify(client, settings, upgrade, at=T0 + 5)
    assert audit_actions(engine).count("sender.throughput") == 1


@pytest.mark.parametrize(
    ("notice", "kind"),
    [
        (notices.account_restriction(kinds=["RESTRICTED_BIZ_INITIATED_MESSAGING"]), "restricted"),
        (notices.account_ban(state="SCHEDULE_FOR_DISABLE"), "disabled"),
        (notices.account_violation(kind="SCAM"), "violation"),
    ],
)
def test_account_notices_alert_once(
    engine: Engine,
    client: TestClient,
    settings: Settings,
    notice: tuple[str, dict[str, object]],
    kind: str,
) -> None:
    notify(client, settings, notice, at=T0)
    notify(client, settings, notice, at=T0)
    assert alerts(engine) == [(f"account_{kind}", None)]
    row = state(engine)
    if kind == "restricted":
        assert row.restrictions == ["RESTRICTED_BIZ_INITIATED_MESSAGING"]
        assert service.is_restricted(row)


def test_a_restriction_lifted_later_clears_and_an_old_one_does_not_return(
    engine: Engine, client: TestClient, settings: Settings
) -> None:
    restricted = notices.account_restriction(kinds=["RESTRICTED_BIZ_INITIATED_MESSAGING"])
    notify(client, settings, restricted, at=T0)
    notify(client, settings, notices.account_restriction(kinds=[]), at=T0 + 60)
    assert state(engine).restrictions == []
    notify(client, settings, restricted, at=T0)
    assert state(engine).restrictions == []
    assert len(alerts(engine)) == 1
