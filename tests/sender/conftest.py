"""Sender fixtures: a signed webhook, notices as Meta shapes them, and a running campaign."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, func
from sqlmodel import select

from app.audit.models import AuditEvent
from app.config import Settings
from app.db import session_scope, utcnow
from app.sandbox import notices
from app.sender.models import SenderAlert
from tests.factories import add_campaign, add_opd, add_template
from tests.webhook import payloads

APP_SECRET = "uji-app-secret-sender"
# Meta's time of a notice: each test moves it forward or back to replay or reorder.
T0 = int(datetime(2026, 12, 1, 2, 0, tzinfo=UTC).timestamp())


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"whatsapp_app_secret": SecretStr(APP_SECRET)})


def notify(
    client: TestClient, settings: Settings, notice: tuple[str, dict[str, Any]], *, at: int
) -> None:
    """Meta posts one signed notice with entry.time `at`; it must be stored (200)."""
    field, value = notice
    body = notices.envelope(field, value, waba_id=payloads.WABA_ID, at=at)
    response = payloads.post(client, settings, body)
    assert response.status_code == 200, response.text


def running_campaign(engine: Engine, *, template_status: str = "APPROVED") -> tuple[int, int]:
    """An APPROVED template `spi_uji/id` and an active campaign using it: (template, campaign)."""
    add_opd(engine, "DINKES")
    template_id = add_template(engine, status=template_status)
    today = utcnow().date()
    campaign_id = add_campaign(
        engine,
        template_id=template_id,
        now=utcnow(),
        first_day=today - timedelta(days=1),
        last_day=today + timedelta(days=60),
    )
    return template_id, campaign_id


def audit_actions(engine: Engine) -> list[str]:
    with session_scope(engine) as s:
        return list(s.exec(select(AuditEvent.action).order_by(AuditEvent.id)).all())  # type: ignore[arg-type]


def alerts(engine: Engine) -> list[tuple[str, str | None]]:
    with session_scope(engine) as s:
        rows = s.exec(select(SenderAlert).order_by(SenderAlert.id)).all()  # type: ignore[arg-type]
        return [(a.kind, a.subject) for a in rows]


def alert_count(engine: Engine) -> int:
    with session_scope(engine) as s:
        return int(s.exec(select(func.count()).select_from(SenderAlert)).one())
