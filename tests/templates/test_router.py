"""Template routes: registration, findings, acknowledgements, preview, roles."""

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select

from app.audit.models import AuditEvent
from app.auth.models import Role
from app.campaigns.models import Campaign
from app.db import session_scope, utcnow
from tests.factories import add_opd, add_token, bearer

NEUTRAL = (
    "Yth. Bapak/Ibu, {{1}} menyampaikan bahwa masa pengisian SPI berakhir pada {{2}}. "
    "Keikutsertaan bersifat sukarela. Balas BERHENTI untuk berhenti."
)
FLAGGED = "Yth. Bapak/Ibu dari {{1}}, pengisian SPI wajib dan harap segera sebelum {{2}}."
PARAMS: list[dict[str, Any]] = [
    {"source": "setting", "key": "institution_name"},
    {"source": "campaign", "key": "window_end", "format": "date_id"},
]
URL = "/api/v1/templates"


@pytest.fixture
def admin(engine: Engine) -> dict[str, str]:
    return bearer(add_token(engine, Role.admin, name="admin ani"))


def register(client: TestClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"name": "pengingat", "body": NEUTRAL, "parameters": PARAMS}
    payload.update(overrides)
    response = client.post(URL, json=payload, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def audit(engine: Engine, action: str) -> list[AuditEvent]:
    with session_scope(engine) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def add_campaign(engine: Engine, template_id: int, **values: Any) -> int:
    with session_scope(engine) as s:
        campaign = Campaign(
            name="SPI 2026",
            spi_year=2026,
            first_day=date(2026, 8, 3),
            last_day=date(2026, 10, 31),
            template_id=template_id,
            parameter_values=values,
        )
        s.add(campaign)
        s.flush()
        assert campaign.id is not None
        return campaign.id


def test_register_shows_findings_with_positions(
    client: TestClient, admin: dict[str, str], engine: Engine
) -> None:
    created = register(client, admin, body=FLAGGED)
    assert created["status"] == "SANDBOX"
    assert created["source"] == "manual"
    assert created["placeholders"] == 2
    assert created["warnings"] == []
    assert [
        (f["index"], f["family"], f["term"], f["start"], f["end"], f["matched"], f["acknowledged"])
        for f in created["findings"]
    ] == [
        (0, "coercion", "wajib", 41, 46, "wajib", False),
        (1, "coercion", "segera", 57, 63, "segera", False),
    ]
    assert created["usable"] is False
    assert "2 neutrality finding(s)" in created["usable_problem"]
    assert FLAGGED[41:46] == "wajib"
    fetched = client.get(f"{URL}/{created['id']}", headers=admin).json()
    assert fetched["findings"] == created["findings"]
    listed = client.get(URL, headers=admin).json()
    assert [t["id"] for t in listed] == [created["id"]]
    assert len(audit(engine, "template.create")) == 1


def test_a_neutral_template_is_usable_at_once(client: TestClient, admin: dict[str, str]) -> None:
    created = register(client, admin, status="APPROVED")
    assert created["findings"] == []
    assert created["usable"] is True
    assert created["usable_problem"] is None
    assert created["status"] == "APPROVED"


def test_a_link_is_refused_with_its_position(
    client: TestClient, admin: dict[str, str], engine: Engine
) -> None:
    body = "Yth. {{1}}, isi sebelum {{2}} di wa.me/6281234 atau spi.kpk.go.id."
    response = client.post(
        URL, json={"name": "berlink", "body": body, "parameters": PARAMS}, headers=admin
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "template_contains_link"
    spans = [(f["start"], f["end"], f["matched"]) for f in error["findings"]]
    wa, kpk = body.index("wa.me"), body.index("spi.kpk")
    assert spans == [(wa, wa + 13, "wa.me/6281234"), (kpk, kpk + 13, "spi.kpk.go.id")]
    assert all(body[s:e] == m for s, e, m in spans)
    assert client.get(URL, headers=admin).json() == []
    refused = audit(engine, "template.create")
    assert [(e.outcome, e.detail) for e in refused] == [
        ("refused", {"reason": "template_contains_link"})
    ]


@pytest.mark.parametrize(
    ("body", "parameters"),
    [
        (NEUTRAL, PARAMS[:1]),
        ("Halo {{1}} dan {{3}}", PARAMS),
        ("Halo {{nama}}", PARAMS[:1]),
        ("Tanpa isian.", PARAMS[:1]),
    ],
)
def test_placeholder_count_must_match_parameters(
    client: TestClient, admin: dict[str, str], body: str, parameters: list[dict[str, Any]]
) -> None:
    response = client.post(
        URL, json={"name": "salah", "body": body, "parameters": parameters}, headers=admin
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] in {
        "template_placeholder_mismatch",
        "template_placeholders_invalid",
    }


@pytest.mark.parametrize(
    "parameter",
    [
        {"source": "setting", "key": "whatsapp_access_token"},
        {"source": "somewhere", "key": "x"},
        {"source": "fixed", "value": ""},
        {"source": "fixed", "value": "dua\nbaris"},
        {"source": "campaign", "key": "spi_year", "format": "date_id"},
        {"source": "campaign", "key": "window_end", "format": "rupiah"},
    ],
)
def test_bad_parameter_entries_are_422(
    client: TestClient, admin: dict[str, str], parameter: dict[str, Any]
) -> None:
    response = client.post(
        URL, json={"name": "p", "body": "Dari {{1}}.", "parameters": [parameter]}, headers=admin
    )
    assert response.status_code == 422


def test_status_other_than_sandbox_or_approved_is_refused(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.post(
        URL,
        json={"name": "p", "body": NEUTRAL, "parameters": PARAMS, "status": "PAUSED"},
        headers=admin,
    )
    assert response.status_code == 422


def test_marketing_is_accepted_with_a_warning(client: TestClient, admin: dict[str, str]) -> None:
    created = register(client, admin, category="MARKETING")
    assert created["category"] == "MARKETING"
    assert len(created["warnings"]) == 1
    assert "MARKETING" in created["warnings"][0]
    assert created["usable"] is True


def test_duplicate_name_and_language_is_409(client: TestClient, admin: dict[str, str]) -> None:
    register(client, admin)
    again = client.post(
        URL, json={"name": "pengingat", "body": NEUTRAL, "parameters": PARAMS}, headers=admin
    )
    assert again.status_code == 409
    register(client, admin, language="en")


def test_acknowledging_every_finding_makes_it_usable_and_is_audited(
    client: TestClient, admin: dict[str, str], engine: Engine
) -> None:
    created = register(client, admin, body=FLAGGED)
    ack_url = f"{URL}/{created['id']}/acknowledgements"
    short = client.post(ack_url, json={"finding_index": 0, "reason": "ok"}, headers=admin)
    assert short.status_code == 422
    first = client.post(
        ack_url, json={"finding_index": 0, "reason": "kutipan edaran resmi KPK"}, headers=admin
    )
    assert first.status_code == 201
    body = first.json()
    assert body["findings"][0]["acknowledged"] is True
    assert body["findings"][0]["acknowledged_by"] == "admin ani"
    assert body["findings"][0]["acknowledgement_reason"] == "kutipan edaran resmi KPK"
    assert body["findings"][1]["acknowledged"] is False
    assert body["usable"] is False
    assert "segera" in body["usable_problem"]
    repeat = client.post(
        ack_url, json={"finding_index": 0, "reason": "kutipan edaran resmi KPK"}, headers=admin
    )
    assert repeat.status_code == 409
    missing = client.post(
        ack_url, json={"finding_index": 5, "reason": "tidak ada temuan ini"}, headers=admin
    )
    assert missing.status_code == 422
    second = client.post(
        ack_url,
        json={"finding_index": 1, "reason": "tenggat sebenarnya, bukan tekanan"},
        headers=admin,
    )
    assert second.status_code == 201
    assert second.json()["usable"] is True
    assert second.json()["usable_problem"] is None
    events = [e for e in audit(engine, "template.acknowledge") if e.outcome == "ok"]
    assert len(events) == 2
    assert all(e.actor_name == "admin ani" for e in events)
    assert [e.detail["reason"] for e in events if e.detail] == [
        "kutipan edaran resmi KPK",
        "tenggat sebenarnya, bukan tekanan",
    ]


def test_patch_recomputes_findings_and_clears_acknowledgements(
    client: TestClient, admin: dict[str, str], engine: Engine
) -> None:
    created = register(client, admin, body=FLAGGED)
    url = f"{URL}/{created['id']}"
    for index in (0, 1):
        client.post(
            f"{url}/acknowledgements",
            json={"finding_index": index, "reason": "alasan yang cukup panjang"},
            headers=admin,
        )
    assert client.get(url, headers=admin).json()["usable"] is True
    patched = client.patch(url, json={"body": FLAGGED + " Terima kasih."}, headers=admin)
    assert patched.status_code == 200
    result = patched.json()
    assert [f["matched"] for f in result["findings"]] == ["wajib", "segera"]
    assert not any(f["acknowledged"] for f in result["findings"])
    assert result["usable"] is False
    # A body made neutral has no findings left, so it is usable again.
    clean = client.patch(url, json={"body": NEUTRAL}, headers=admin).json()
    assert clean["findings"] == []
    assert clean["usable"] is True
    assert (
        client.patch(
            url, json={"body": "Isi di www.contoh.test {{1}} {{2}}"}, headers=admin
        ).status_code
        == 422
    )
    mismatch = client.patch(url, json={"parameters": PARAMS[:1]}, headers=admin)
    assert mismatch.status_code == 422
    assert client.get(url, headers=admin).json()["body"] == NEUTRAL
    assert len([e for e in audit(engine, "template.update") if e.outcome == "ok"]) == 2


def test_preview_for_a_campaign_and_with_sample_values(
    client: TestClient, admin: dict[str, str], engine: Engine
) -> None:
    created = register(client, admin)
    campaign_id = add_campaign(engine, created["id"])
    url = f"{URL}/{created['id']}/preview"
    preview = client.get(url, params={"campaign_id": campaign_id}, headers=admin)
    assert preview.status_code == 200
    body = preview.json()
    assert body["sample"] is False
    assert body["parameters"] == ["Pemerintah Kota Uji", "31 Oktober 2026"]
    assert body["text"] == (
        "Yth. Bapak/Ibu, Pemerintah Kota Uji menyampaikan bahwa masa pengisian SPI berakhir "
        "pada 31 Oktober 2026. Keikutsertaan bersifat sukarela. Balas BERHENTI untuk berhenti."
    )
    sample = client.get(url, headers=admin).json()
    assert sample["sample"] is True
    assert sample["parameters"] == ["Pemerintah Kota Uji", f"31 Oktober {utcnow().year}"]
    assert client.get(url, params={"campaign_id": 999}, headers=admin).status_code == 404


def test_preview_reports_a_missing_campaign_value(
    client: TestClient, admin: dict[str, str], engine: Engine
) -> None:
    created = register(
        client,
        admin,
        body="Hubungi {{1}}.",
        parameters=[{"source": "campaign", "key": "layanan"}],
    )
    campaign_id = add_campaign(engine, created["id"])
    response = client.get(
        f"{URL}/{created['id']}/preview", params={"campaign_id": campaign_id}, headers=admin
    )
    assert response.status_code == 422
    assert "layanan" in response.json()["error"]["message"]
    sample = client.get(f"{URL}/{created['id']}/preview", headers=admin).json()
    assert sample["text"] == "Hubungi [layanan]."


def test_delete_only_when_no_campaign_uses_it(
    client: TestClient, admin: dict[str, str], engine: Engine
) -> None:
    used = register(client, admin)
    unused = register(client, admin, name="cadangan")
    add_campaign(engine, used["id"])
    assert client.delete(f"{URL}/{used['id']}", headers=admin).status_code == 409
    assert client.delete(f"{URL}/{unused['id']}", headers=admin).status_code == 204
    assert client.get(f"{URL}/{unused['id']}", headers=admin).status_code == 404
    assert [t["id"] for t in client.get(URL, headers=admin).json()] == [used["id"]]
    assert [e.outcome for e in audit(engine, "template.delete")] == ["refused", "ok"]


@pytest.mark.parametrize(
    ("role", "expected"),
    [(None, 401), (Role.coordinator, 403), (Role.inspectorate, 403)],
)
def test_only_admins_may_touch_templates(
    client: TestClient,
    admin: dict[str, str],
    engine: Engine,
    role: Role | None,
    expected: int,
) -> None:
    created = register(client, admin, body=FLAGGED)
    tid = created["id"]
    add_opd(engine, "DINKES")
    headers = (
        {}
        if role is None
        else bearer(add_token(engine, role, "DINKES" if role is Role.coordinator else None))
    )
    calls = [
        client.get(URL, headers=headers),
        client.get(f"{URL}/{tid}", headers=headers),
        client.post(
            URL, json={"name": "x", "body": NEUTRAL, "parameters": PARAMS}, headers=headers
        ),
        client.patch(f"{URL}/{tid}", json={"body": NEUTRAL}, headers=headers),
        client.post(
            f"{URL}/{tid}/acknowledgements",
            json={"finding_index": 0, "reason": "bukan admin mencoba"},
            headers=headers,
        ),
        client.get(f"{URL}/{tid}/preview", headers=headers),
        client.delete(f"{URL}/{tid}", headers=headers),
    ]
    assert [c.status_code for c in calls] == [expected] * len(calls)
    still = client.get(f"{URL}/{tid}", headers=admin).json()
    assert still["body"] == FLAGGED
    assert not any(f["acknowledged"] for f in still["findings"])
