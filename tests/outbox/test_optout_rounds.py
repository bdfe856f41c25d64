"""STOP, MULAI and HAPUS against real rounds and the worker: the list stays, sending stops.

Invariant 6 (opt-out is invisible to coordinators, and nothing is sent afterwards) and
invariant 8 (at most one reminder per person per round, also when several OPDs list them).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func
from sqlmodel import col, select

from app.campaigns.models import Campaign
from app.db import session_scope
from app.enrolment import erasure, optout
from app.enrolment import service as enrolment_service
from app.enrolment.models import Enrolment
from app.opds import service as opd_service
from app.outbox.models import Delivery, DeliveryTally
from app.sandbox.graph import SandboxGraph
from app.security import PhoneVault
from tests.factories import add_campaign, add_opd, add_people, add_round, add_template
from tests.outbox.conftest import NOW, Rig

pytestmark = pytest.mark.usefixtures("no_rate_limit")


def _campaign(engine: Engine, **fields: object) -> int:
    template_id = add_template(engine)
    campaign_id = add_campaign(engine, template_id=template_id, now=NOW - timedelta(days=1))
    with session_scope(engine) as s:
        row = s.get(Campaign, campaign_id)
        assert row is not None
        # Rounds minutes apart, so one test can run several without a holiday in between.
        row.min_gap_days = 0
        row.max_reminders = 5
        for key, value in fields.items():
            setattr(row, key, value)
        s.add(row)
    return campaign_id


def _coordinator_view(engine: Engine, vault: PhoneVault, code: str) -> object:
    with session_scope(engine) as s:
        opd = opd_service.get_by_code(s, code=code)
        page = enrolment_service.list_enrolments(s, vault=vault, opd=opd, limit=500, offset=0)
        return page.model_dump()


def _send_round(engine: Engine, rig: Rig, campaign_id: int, minutes: int) -> None:
    at = NOW + timedelta(minutes=minutes)
    rig.clock.now = at
    add_round(engine, campaign_id=campaign_id, at=at)
    rig.batches(2)


def test_stop_keeps_the_list_and_stops_sending_mulai_resumes_hapus_removes(
    engine: Engine, vault: PhoneVault, rig: Rig, sandbox: SandboxGraph
) -> None:
    add_opd(engine, "DINKES")
    phones = add_people(engine, vault, "DINKES", 3)
    stopped = phones[1]
    campaign_id = _campaign(engine)
    before = _coordinator_view(engine, vault, "DINKES")

    with session_scope(engine) as s:
        optout.stop(s, index=vault.blind_index(stopped), now=NOW)
    assert _coordinator_view(engine, vault, "DINKES") == before  # list and total unchanged
    _send_round(engine, rig, campaign_id, 0)
    assert stopped not in sandbox.by_recipient
    assert sorted(sandbox.by_recipient) == sorted(set(phones) - {stopped})

    with session_scope(engine) as s:
        optout.resume(s, vault=vault, e164=stopped, now=NOW)
    assert _coordinator_view(engine, vault, "DINKES") == before
    _send_round(engine, rig, campaign_id, 10)
    assert sandbox.by_recipient[stopped] == 1

    with session_scope(engine) as s:
        erasure.erase(s, index=vault.blind_index(stopped), now=NOW)
    after = _coordinator_view(engine, vault, "DINKES")
    assert after["total"] == 2  # type: ignore[index]
    with session_scope(engine) as s:
        assert (
            s.exec(
                select(Enrolment).where(Enrolment.phone_index == vault.blind_index(stopped))
            ).all()
            == []
        )
        left = s.exec(select(func.count()).select_from(Delivery)).one()
    assert left == 4  # two rounds of the two others; the erased person's rows are gone
    _send_round(engine, rig, campaign_id, 20)
    assert sandbox.by_recipient[stopped] == 1


def test_a_person_listed_by_two_opds_gets_one_reminder_per_round(
    engine: Engine, vault: PhoneVault, rig: Rig, sandbox: SandboxGraph
) -> None:
    add_opd(engine, "DINKES")
    add_opd(engine, "BAPPEDA")
    both = add_people(engine, vault, "DINKES", 2)
    add_people(engine, vault, "BAPPEDA", 1)  # the same number as DINKES' first
    campaign_id = _campaign(engine)
    for minutes in (0, 10, 20):
        _send_round(engine, rig, campaign_id, minutes)
    assert sandbox.by_recipient[both[0]] == 3
    assert sandbox.by_recipient[both[1]] == 3
    assert sandbox.stats()["max_per_callback"] == 1
    with session_scope(engine) as s:
        first = s.exec(
            select(func.min(col(Enrolment.id))).where(
                Enrolment.phone_index == vault.blind_index(both[0])
            )
        ).one()
        chosen = set(
            s.exec(
                select(Delivery.enrolment_id)
                .join(Enrolment, col(Enrolment.id) == col(Delivery.enrolment_id))
                .where(Enrolment.phone_index == vault.blind_index(both[0]))
            ).all()
        )
        listed = dict(
            s.exec(
                select(DeliveryTally.opd_id, func.sum(DeliveryTally.count))
                .where(DeliveryTally.outcome == "listed")
                .group_by(col(DeliveryTally.opd_id))
            ).all()
        )
    assert chosen == {first}  # deterministic: always the earliest listing
    # Everyone on each list is counted at every round, the de-duplicated person included.
    assert sorted(listed.values()) == [3, 6]


def test_the_budget_counts_per_person_across_listings(
    engine: Engine, vault: PhoneVault, rig: Rig, sandbox: SandboxGraph
) -> None:
    add_opd(engine, "DINKES")
    add_opd(engine, "BAPPEDA")
    [phone] = add_people(engine, vault, "DINKES", 1)
    add_people(engine, vault, "BAPPEDA", 1)
    campaign_id = _campaign(engine, max_reminders=2)
    for minutes in (0, 10, 20):
        _send_round(engine, rig, campaign_id, minutes)
    assert sandbox.by_recipient[phone] == 2  # not 2 per listing (invariant 9)
