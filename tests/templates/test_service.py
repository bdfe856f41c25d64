"""Template service: usability, acknowledgements, parameters and rendering, seed and sync."""

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from app.audit.models import AuditEvent
from app.auth.principal import cli_principal
from app.campaigns.models import Campaign
from app.config import Settings
from app.db import session_scope, utcnow
from app.errors import Conflict, Invalid
from app.messaging.client import TemplateInfo
from app.templates import acknowledgements, parameters, service, store
from app.templates import sync as template_sync
from app.templates.acknowledgements import compute_findings
from app.templates.models import MessageTemplate, TemplateStatus
from app.templates.rendering import render_body

ACTOR = cli_principal("tester")
NEUTRAL = (
    "Yth. Bapak/Ibu, {{1}} menyampaikan bahwa masa pengisian SPI berakhir pada {{2}}. "
    "Keikutsertaan bersifat sukarela. Balas BERHENTI untuk berhenti."
)
FLAGGED = "Yth. Bapak/Ibu dari {{1}}, pengisian SPI wajib dan harap segera sebelum {{2}}."
PARAMS: list[dict[str, Any]] = [
    {"source": "setting", "key": "institution_name"},
    {"source": "campaign", "key": "window_end", "format": "date_id"},
]


def make_template(
    body: str = NEUTRAL,
    *,
    status: str = TemplateStatus.sandbox.value,
    parameters: list[dict[str, Any]] | None = None,
    acknowledgements: list[dict[str, Any]] | None = None,
) -> MessageTemplate:
    return MessageTemplate(
        id=1,
        name="t",
        body=body,
        status=status,
        parameters=PARAMS if parameters is None else parameters,
        findings=compute_findings(body),
        acknowledgements=acknowledgements or [],
    )


def make_campaign(**values: Any) -> Campaign:
    return Campaign(
        name="SPI 2026 Kota Uji",
        spi_year=2026,
        first_day=date(2026, 8, 3),
        last_day=date(2026, 10, 31),
        template_id=1,
        parameter_values=values,
    )


def render_for_campaign(
    template: MessageTemplate, *, campaign: Campaign, settings: Settings
) -> str:
    """The message exactly as the employee reads it for this campaign."""
    values = parameters.body_parameters(template, campaign=campaign, settings=settings)
    return render_body(template.body, values)


def events(engine: Engine, action: str) -> list[AuditEvent]:
    with session_scope(engine) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


# --- usable_problem -------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["APPROVED", "SANDBOX"])
def test_approved_and_sandbox_templates_are_usable(status: str) -> None:
    assert acknowledgements.usable_problem(make_template(status=status)) is None


@pytest.mark.parametrize("status", ["PAUSED", "REJECTED", "PENDING", "DISABLED", "DELETED"])
def test_other_statuses_are_not_usable(status: str) -> None:
    problem = acknowledgements.usable_problem(make_template(status=status))
    assert problem is not None
    assert status in problem


def test_link_makes_a_template_unusable_even_if_approved() -> None:
    body = "Yth. {{1}}, isi sebelum {{2}} di spi.kpk.go.id ya."
    problem = acknowledgements.usable_problem(make_template(body, status="APPROVED"))
    assert problem is not None
    assert "link" in problem
    assert "spi.kpk.go.id" in problem


def test_placeholder_mapping_mismatch_is_not_usable() -> None:
    problem = acknowledgements.usable_problem(make_template(parameters=PARAMS[:1]))
    assert problem is not None
    assert "2 placeholder(s) but 1" in problem


def test_findings_block_use_until_each_is_acknowledged(engine: Engine) -> None:
    with session_scope(engine) as s:
        template = service.register(
            s,
            actor=ACTOR,
            name="t",
            language="id",
            category="UTILITY",
            body=FLAGGED,
            parameters=PARAMS,
        )
        assert [f["matched"] for f in template.findings] == ["wajib", "segera"]
        first = acknowledgements.usable_problem(template)
        assert first is not None
        assert "2 neutrality finding(s)" in first
        acknowledgements.acknowledge(
            s, actor=ACTOR, template=template, finding_index=0, reason="dikutip dari edaran resmi"
        )
        second = acknowledgements.usable_problem(template)
        assert second is not None
        assert "1 neutrality finding(s)" in second
        assert "segera" in second
        acknowledgements.acknowledge(
            s, actor=ACTOR, template=template, finding_index=1, reason="tenggat yang sebenarnya"
        )
        assert acknowledgements.usable_problem(template) is None
        template_id = template.id
    acks = events(engine, "template.acknowledge")
    assert len(acks) == 2
    assert {e.object_id for e in acks} == {str(template_id)}
    assert acks[0].actor_name == "tester"
    assert acks[0].detail is not None
    assert {e.detail["term"] for e in acks if e.detail} == {"wajib", "segera"}
    with session_scope(engine) as s:
        stored = s.get(MessageTemplate, template_id)
        assert stored is not None
        assert acknowledgements.usable_problem(stored) is None


def test_links_and_repeats_cannot_be_acknowledged(engine: Engine) -> None:
    with session_scope(engine) as s:
        template = template_sync.sync_from_meta(
            s,
            actor=ACTOR,
            templates=[info("linky", body="Lihat https://contoh.test/spi sekarang, wajib.")],
        )
        row = store.find(s, name="linky", language="id")
        assert row is not None
        with pytest.raises(Invalid) as exc:
            acknowledgements.acknowledge(
                s, actor=ACTOR, template=row, finding_index=0, reason="x" * 20
            )
        assert exc.value.code == "link_not_acknowledgeable"
        acknowledgements.acknowledge(s, actor=ACTOR, template=row, finding_index=1, reason="y" * 20)
        with pytest.raises(Conflict):
            acknowledgements.acknowledge(
                s, actor=ACTOR, template=row, finding_index=1, reason="y" * 20
            )
        with pytest.raises(Invalid):
            acknowledgements.acknowledge(
                s, actor=ACTOR, template=row, finding_index=7, reason="y" * 20
            )
        problem = acknowledgements.usable_problem(row)
        assert problem is not None
        assert "link" in problem
        assert template.created == ["linky/id"]


# --- parameters and rendering ---------------------------------------------------------------


def test_body_parameters_and_rendering_use_indonesian_dates_and_the_institution(
    settings: Settings,
) -> None:
    template = make_template()
    campaign = make_campaign()
    assert parameters.body_parameters(template, campaign=campaign, settings=settings) == [
        "Pemerintah Kota Uji",
        "31 Oktober 2026",
    ]
    text = render_for_campaign(template, campaign=campaign, settings=settings)
    assert text == (
        "Yth. Bapak/Ibu, Pemerintah Kota Uji menyampaikan bahwa masa pengisian SPI berakhir "
        "pada 31 Oktober 2026. Keikutsertaan bersifat sukarela. Balas BERHENTI untuk berhenti."
    )


def test_every_parameter_source(settings: Settings) -> None:
    params = [
        {"source": "campaign", "key": "window_start"},
        {"source": "campaign", "key": "spi_year"},
        {"source": "campaign", "key": "campaign_name"},
        {"source": "campaign", "key": "layanan"},
        {"source": "campaign", "key": "hari_akhir", "format": "date_id"},
        {"source": "fixed", "value": "Inspektorat Daerah"},
        {"source": "fixed", "value": "2026-12-01", "format": "date_id"},
    ]
    body = " ".join(f"{{{{{i}}}}}." for i in range(1, len(params) + 1))
    template = make_template(body, parameters=params)
    campaign = make_campaign(layanan="nomor 198", hari_akhir="2026-09-30")
    assert parameters.body_parameters(template, campaign=campaign, settings=settings) == [
        "3 Agustus 2026",  # a date renders the Indonesian way even without a format
        "2026",
        "SPI 2026 Kota Uji",
        "nomor 198",
        "30 September 2026",
        "Inspektorat Daerah",
        "1 Desember 2026",
    ]


def test_missing_or_unsafe_values_are_invalid(settings: Settings) -> None:
    params = [{"source": "campaign", "key": "layanan"}]
    template = make_template("Hubungi {{1}}.", parameters=params)
    with pytest.raises(Invalid, match="layanan"):
        parameters.body_parameters(template, campaign=make_campaign(), settings=settings)
    with pytest.raises(Invalid, match="link"):
        parameters.body_parameters(
            template, campaign=make_campaign(layanan="wa.me/628123"), settings=settings
        )
    with pytest.raises(Invalid, match="coercion"):
        parameters.body_parameters(
            template, campaign=make_campaign(layanan="atasan, wajib"), settings=settings
        )
    with pytest.raises(Invalid):
        parameters.body_parameters(
            template, campaign=make_campaign(layanan="dua\nbaris"), settings=settings
        )
    dated = make_template(
        "Sampai {{1}}.", parameters=[{"source": "campaign", "key": "akhir", "format": "date_id"}]
    )
    with pytest.raises(Invalid, match="date"):
        parameters.body_parameters(dated, campaign=make_campaign(akhir="besok"), settings=settings)


def test_sample_preview_values(settings: Settings) -> None:
    params = [*PARAMS, {"source": "campaign", "key": "layanan"}]
    template = make_template(NEUTRAL + " {{3}}", parameters=params)
    year = utcnow().year
    assert parameters.sample_parameters(template, settings=settings) == [
        "Pemerintah Kota Uji",
        f"31 Oktober {year}",
        "[layanan]",
    ]


def test_validate_parameters_checks_count_and_entries() -> None:
    with pytest.raises(Invalid) as exc:
        parameters.validate_parameters(NEUTRAL, PARAMS[:1])
    assert exc.value.code == "template_placeholder_mismatch"
    with pytest.raises(Invalid):
        parameters.validate_parameters(
            "{{1}}", [{"source": "setting", "key": "whatsapp_access_token"}]
        )
    with pytest.raises(Invalid):
        parameters.validate_parameters("{{1}}", [{"source": "fixed", "value": "lihat bit.ly/spi"}])
    with pytest.raises(Invalid):
        parameters.validate_parameters("{{ 1 }}", PARAMS[:1])
    assert parameters.validate_parameters(
        "{{1}}", [{"source": "fixed", "value": " Inspektorat "}]
    ) == [{"source": "fixed", "value": "Inspektorat"}]


# --- writing --------------------------------------------------------------------------------


def test_register_refuses_links_with_positions(engine: Engine) -> None:
    with session_scope(engine) as s, pytest.raises(acknowledgements.LinkRefused) as exc:
        service.register(
            s,
            actor=ACTOR,
            name="t",
            language="id",
            category="UTILITY",
            body="Isi di spi.kpk.go.id sekarang",
            parameters=[],
        )
    assert exc.value.links == [
        {"family": "link", "term": ".id", "start": 7, "end": 20, "matched": "spi.kpk.go.id"}
    ]


def test_update_with_a_new_body_clears_acknowledgements(engine: Engine) -> None:
    with session_scope(engine) as s:
        template = service.register(
            s,
            actor=ACTOR,
            name="t",
            language="id",
            category="UTILITY",
            body=FLAGGED,
            parameters=PARAMS,
        )
        for i in range(2):
            acknowledgements.acknowledge(
                s, actor=ACTOR, template=template, finding_index=i, reason="r" * 12
            )
        assert acknowledgements.usable_problem(template) is None
        service.update(s, actor=ACTOR, template=template, body=FLAGGED + " Terima kasih.")
        assert template.acknowledgements == []
        assert acknowledgements.usable_problem(template) is not None


def test_delete_refused_while_a_campaign_uses_it(engine: Engine) -> None:
    with session_scope(engine) as s:
        template = service.register(
            s,
            actor=ACTOR,
            name="t",
            language="id",
            category="UTILITY",
            body=NEUTRAL,
            parameters=PARAMS,
        )
        assert template.id is not None
        campaign = make_campaign()
        campaign.template_id = template.id
        s.add(campaign)
        s.flush()
        with pytest.raises(Conflict):
            service.delete(s, actor=ACTOR, template=template)
        s.delete(campaign)
        s.flush()
        service.delete(s, actor=ACTOR, template=template)
    assert len(events(engine, "template.delete")) == 1


# --- seed -----------------------------------------------------------------------------------


def test_seed_is_idempotent_and_the_seeds_are_usable(engine: Engine, settings: Settings) -> None:
    with session_scope(engine) as s:
        assert service.ensure_seed_templates(s, actor=ACTOR) == 2
    with session_scope(engine) as s:
        assert service.ensure_seed_templates(s, actor=ACTOR) == 0
        rows = service.list_templates(s)
        assert len(rows) == 2
        for row in rows:
            assert row.status == "SANDBOX"
            assert row.findings == []
            assert acknowledgements.usable_problem(row) is None
            text = render_for_campaign(row, campaign=make_campaign(), settings=settings)
            assert "Pemerintah Kota Uji" in text
            assert "31 Oktober 2026" in text
    assert len(events(engine, "template.seed")) == 2


# --- sync -----------------------------------------------------------------------------------


def info(
    name: str, *, status: str = "APPROVED", body: str | None = NEUTRAL, language: str = "id"
) -> TemplateInfo:
    return TemplateInfo(name=name, language=language, category="UTILITY", status=status, body=body)


def test_sync_upserts_keeps_meta_status_and_body(engine: Engine) -> None:
    with session_scope(engine) as s:
        service.ensure_seed_templates(s, actor=ACTOR)
        seeded = store.find(s, name="spi_pengingat_umum", language="id")
        assert seeded is not None
        seeded_params = seeded.parameters
    new_body = NEUTRAL.replace("berakhir", "selesai")
    with session_scope(engine) as s:
        summary = template_sync.sync_from_meta(
            s,
            actor=ACTOR,
            templates=[
                info("spi_pengingat_umum", body=new_body),
                info("spi_paused", status="PAUSED"),
                info("no_body", body=None),
            ],
        )
    assert summary.updated == ["spi_pengingat_umum/id"]
    assert summary.created == ["spi_paused/id"]
    assert summary.skipped == ["no_body/id"]
    with session_scope(engine) as s:
        umum = store.find(s, name="spi_pengingat_umum", language="id")
        paused = store.find(s, name="spi_paused", language="id")
        assert umum is not None
        assert paused is not None
        assert (umum.status, umum.source, umum.body) == ("APPROVED", "meta", new_body)
        assert umum.parameters == seeded_params  # the local mapping survives
        assert acknowledgements.usable_problem(umum) is None
        assert paused.status == "PAUSED"
        assert acknowledgements.usable_problem(paused) is not None
    # Meta pauses it and stops listing the other: both stop being usable.
    with session_scope(engine) as s:
        summary = template_sync.sync_from_meta(
            s, actor=ACTOR, templates=[info("spi_pengingat_umum", status="PAUSED", body=new_body)]
        )
    assert summary.updated == ["spi_pengingat_umum/id"]
    assert summary.missing == ["spi_paused/id"]
    with session_scope(engine) as s:
        umum = store.find(s, name="spi_pengingat_umum", language="id")
        paused = store.find(s, name="spi_paused", language="id")
        assert umum is not None
        assert umum.status == "PAUSED"
        assert paused is not None
        assert paused.status == template_sync.MISSING_STATUS
    assert len(events(engine, "template.sync")) == 4


def test_sync_clears_acknowledgements_only_when_the_body_changes(engine: Engine) -> None:
    with session_scope(engine) as s:
        template_sync.sync_from_meta(s, actor=ACTOR, templates=[info("f", body=FLAGGED)])
        row = store.find(s, name="f", language="id")
        assert row is not None
        service.update(s, actor=ACTOR, template=row, parameters=PARAMS)
        for i in range(2):
            acknowledgements.acknowledge(
                s, actor=ACTOR, template=row, finding_index=i, reason="r" * 12
            )
        assert acknowledgements.usable_problem(row) is None
    with session_scope(engine) as s:
        summary = template_sync.sync_from_meta(s, actor=ACTOR, templates=[info("f", body=FLAGGED)])
        assert summary.unchanged == ["f/id"]
        row = store.find(s, name="f", language="id")
        assert row is not None
        assert acknowledgements.usable_problem(row) is None
    with session_scope(engine) as s:
        template_sync.sync_from_meta(s, actor=ACTOR, templates=[info("f", body=FLAGGED + " Ok.")])
        row = store.find(s, name="f", language="id")
        assert row is not None
        assert row.acknowledgements == []
        problem = acknowledgements.usable_problem(row)
        assert problem is not None
        assert "not acknowledged" in problem


def test_synced_body_and_category_cannot_be_edited(engine: Engine) -> None:
    with session_scope(engine) as s:
        template_sync.sync_from_meta(s, actor=ACTOR, templates=[info("m")])
        row = store.find(s, name="m", language="id")
        assert row is not None
        with pytest.raises(Conflict):
            service.update(s, actor=ACTOR, template=row, body="Halo {{1}} {{2}}")
        with pytest.raises(Conflict):
            service.update(s, actor=ACTOR, template=row, category="MARKETING")
        service.update(s, actor=ACTOR, template=row, parameters=PARAMS)
        assert acknowledgements.usable_problem(row) is None
