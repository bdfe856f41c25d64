"""Meta's template notices change the template once and pause the campaigns using it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.auth.models import Role
from app.campaigns.models import Campaign
from app.config import Settings
from app.db import session_scope
from app.sandbox import notices
from app.templates.models import MessageTemplate, TemplateLifecycle
from tests.factories import add_token, bearer
from tests.sender.conftest import T0, alerts, audit_actions, notify, running_campaign

NAME, LANGUAGE, META_ID = "spi_uji", "id", "987654321"


def status(event: str, reason: str = "NONE") -> tuple[str, dict[str, Any]]:
    return notices.template_status(
        template_id=META_ID, name=NAME, language=LANGUAGE, event=event, reason=reason
    )


def template(engine: Engine, template_id: int) -> MessageTemplate:
    with session_scope(engine) as s:
        row = s.get(MessageTemplate, template_id)
        assert row is not None
        return row


def campaign(engine: Engine, campaign_id: int) -> Campaign:
    with session_scope(engine) as s:
        row = s.get(Campaign, campaign_id)
        assert row is not None
        return row


@pytest.mark.parametrize(
    ("event", "reason", "status_after", "word"),
    [
        ("PAUSED", "LOW_QUALITY", "PAUSED", "dijeda oleh Meta"),
        ("DISABLED", "NONE", "DISABLED", "dinonaktifkan oleh Meta"),
        ("REJECTED", "INCORRECT_CATEGORY", "REJECTED", "ditolak oleh Meta"),
    ],
)
def test_a_stopped_template_pauses_its_campaigns_once(
    engine: Engine,
    client: TestClient,
    settings: Settings,
    event: str,
    reason: str,
    status_after: str,
    word: str,
) -> None:
    template_id, campaign_id = running_campaign(engine)
    before = len(audit_actions(engine))

    notify(client, settings, status(event, reason), at=T0)

    assert template(engine, template_id).status == status_after
    paused = campaign(engine, campaign_id)
    assert paused.state == "paused"
    assert paused.paused_reason is not None
    assert f"Templat spi_uji/id {word}" in paused.paused_reason
    assert "admin melanjutkan" in paused.paused_reason
    assert alerts(engine) == [("template_stopped", "spi_uji/id")]
    changed = audit_actions(engine)[before:]
    assert changed == ["template.meta_status", "campaign.pause"]

    # Meta delivers the same notice again: nothing changes twice.
    notify(client, settings, status(event, reason), at=T0)
    assert audit_actions(engine)[before:] == changed
    assert alerts(engine) == [("template_stopped", "spi_uji/id")]


def test_a_late_approval_does_not_undo_a_newer_pause(
    engine: Engine, client: TestClient, settings: Settings
) -> None:
    template_id, campaign_id = running_campaign(engine)
    notify(client, settings, status("PAUSED", "LOW_QUALITY"), at=T0)
    before = len(audit_actions(engine))

    # An APPROVED from before the pause arrives late (reordered): ignored.
    notify(client, settings, status("APPROVED"), at=T0 - 600)
    assert template(engine, template_id).status == "PAUSED"
    assert len(audit_actions(engine)) == before

    # A newer approval applies, but the campaign waits for an admin.
    notify(client, settings, status("APPROVED"), at=T0 + 600)
    assert template(engine, template_id).status == "APPROVED"
    assert campaign(engine, campaign_id).state == "paused"
    with session_scope(engine) as s:
        row = s.get(TemplateLifecycle, template_id)
        assert row is not None
        assert row.status_event == "APPROVED"


def test_only_an_admin_resumes_and_not_while_the_template_is_paused(
    engine: Engine, client: TestClient, settings: Settings
) -> None:
    _, campaign_id = running_campaign(engine)
    admin = bearer(add_token(engine, Role.admin))
    inspector = bearer(add_token(engine, Role.inspectorate))
    notify(client, settings, status("PAUSED", "LOW_QUALITY"), at=T0)

    url = f"/api/v1/campaigns/{campaign_id}/resume"
    assert client.post(url, headers=inspector).status_code == 403
    refused = client.post(url, headers=admin)
    assert refused.status_code == 422, refused.text
    assert campaign(engine, campaign_id).state == "paused"

    notify(client, settings, status("APPROVED"), at=T0 + 60)
    resumed = client.post(url, headers=admin)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["state"] == "active"
    assert resumed.json()["paused_reason"] is None


def test_moving_to_marketing_pauses_and_the_announcement_only_warns(
    engine: Engine, client: TestClient, settings: Settings
) -> None:
    template_id, campaign_id = running_campaign(engine)
    announced = notices.template_category_announced(
        template_id=META_ID,
        name=NAME,
        language=LANGUAGE,
        current="UTILITY",
        correct="MARKETING",
        effective_at=T0 + 86400,
    )
    notify(client, settings, announced, at=T0)
    notify(client, settings, announced, at=T0)
    assert campaign(engine, campaign_id).state == "active"
    assert alerts(engine) == [("template_recategorised", "spi_uji/id")]

    moved = notices.template_category(
        template_id=META_ID, name=NAME, language=LANGUAGE, previous="UTILITY", new="MARKETING"
    )
    notify(client, settings, moved, at=T0 + 86400)
    notify(client, settings, moved, at=T0 + 86400)
    assert template(engine, template_id).category == "MARKETING"
    paused = campaign(engine, campaign_id)
    assert paused.state == "paused"
    assert paused.paused_reason is not None
    assert "ke MARKETING" in paused.paused_reason
    assert alerts(engine) == [("template_recategorised", "spi_uji/id")] * 2

    # A late UTILITY → MARKETING announcement from before the move changes nothing.
    notify(client, settings, announced, at=T0 - 10)
    assert template(engine, template_id).category == "MARKETING"
    assert len(alerts(engine)) == 2


def test_quality_drop_warns_once_and_a_notice_for_an_unknown_template_is_ignored(
    engine: Engine, client: TestClient, settings: Settings
) -> None:
    template_id, campaign_id = running_campaign(engine)
    drop = notices.template_quality(
        template_id=META_ID, name=NAME, language=LANGUAGE, previous="GREEN", new="RED"
    )
    notify(client, settings, drop, at=T0)
    notify(client, settings, drop, at=T0)
    assert alerts(engine) == [("template_quality_low", "spi_uji/id")]
    assert campaign(engine, campaign_id).state == "active"
    with session_scope(engine) as s:
        row = s.get(TemplateLifecycle, template_id)
        assert row is not None
        assert row.quality_score == "RED"

    other = notices.template_status(
        template_id="111", name="bukan_templat_kami", language="id", event="PAUSED"
    )
    notify(client, settings, other, at=T0)
    assert campaign(engine, campaign_id).state == "active"
    assert len(alerts(engine)) == 1


def test_a_notice_found_by_metas_id_when_names_differ(
    engine: Engine, client: TestClient, settings: Settings
) -> None:
    template_id, campaign_id = running_campaign(engine)
    with session_scope(engine) as s:
        row = s.get(MessageTemplate, template_id)
        assert row is not None
        row.meta_template_id = META_ID
        s.add(row)
    renamed = notices.template_status(
        template_id=META_ID, name="nama_lain", language="id", event="DISABLED"
    )
    notify(client, settings, renamed, at=T0)
    assert template(engine, template_id).status == "DISABLED"
    assert campaign(engine, campaign_id).state == "paused"
