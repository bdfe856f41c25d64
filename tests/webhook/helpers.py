"""Small helpers shared by the webhook tests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import select

from app.config import Settings
from app.db import session_scope
from app.enrolment.models import Enrolment, EnrolmentTally, Suppression
from app.outbox.models import Delivery, DeliveryTally
from app.security import PhoneVault
from tests.webhook import payloads

NUMBER = "+6281298765432"
WA_ID = NUMBER[1:]
OTHER_NUMBER = "+6281311112222"
OTHER_WA_ID = OTHER_NUMBER[1:]


def say(
    client: TestClient,
    settings: Settings,
    body: str,
    *,
    wa_id: str = WA_ID,
    msg_id: str | None = None,
) -> None:
    """The employee sends a text; the webhook must answer 200."""
    response = payloads.post(
        client, settings, payloads.inbound(payloads.text(wa_id, body, msg_id=msg_id))
    )
    assert response.status_code == 200, response.text


def send(client: TestClient, settings: Settings, payload: dict[str, Any]) -> None:
    response = payloads.post(client, settings, payload)
    assert response.status_code == 200, response.text


def enrolments(engine: Engine) -> list[Enrolment]:
    with session_scope(engine) as s:
        return list(s.exec(select(Enrolment).order_by(Enrolment.id)).all())  # type: ignore[arg-type]


def enrolment(engine: Engine, enrolment_id: int) -> Enrolment:
    with session_scope(engine) as s:
        row = s.get(Enrolment, enrolment_id)
        assert row is not None
        return row


def suppression(engine: Engine, vault: PhoneVault, number: str = NUMBER) -> str | None:
    with session_scope(engine) as s:
        row = s.get(Suppression, vault.blind_index(number))
        return row.source if row else None


def enrolment_tally(engine: Engine, event: str) -> int:
    with session_scope(engine) as s:
        total = s.exec(
            select(func.coalesce(func.sum(EnrolmentTally.count), 0)).where(
                EnrolmentTally.event == event
            )
        ).one()
        return int(total)


def delivery_tallies(engine: Engine, *, billed: bool = False) -> dict[str, int]:
    """Tally totals by outcome; the billed charges (tests/campaigns/test_costs.py) only if asked."""
    with session_scope(engine) as s:
        rows = s.exec(
            select(DeliveryTally.outcome, func.sum(DeliveryTally.count)).group_by(
                DeliveryTally.outcome
            )
        ).all()
        return {
            outcome: int(total)
            for outcome, total in rows
            if billed or not outcome.startswith("billed_")
        }


def delivery(engine: Engine, public_id: str) -> Delivery | None:
    with session_scope(engine) as s:
        return s.exec(select(Delivery).where(Delivery.public_id == public_id)).first()


def all_stored_text(engine: Engine) -> str:
    """Every value in every table, as text."""
    from sqlalchemy import inspect, text

    chunks = []
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                chunks.append(" ".join(str(v) for v in row))
    return "\n".join(chunks)
