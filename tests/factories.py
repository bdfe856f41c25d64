"""Builders for test data, going through the real services."""

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import select

from app.auth import service as auth_service
from app.auth.models import Role
from app.auth.principal import cli_principal
from app.db import session_scope
from app.enrolment.models import Enrolment
from app.opds import service as opd_service
from app.opds.schemas import OpdCreate
from app.security import PhoneVault


def add_opd(engine: Engine, code: str, name: str | None = None, tz: str = "Asia/Jakarta") -> None:
    """Create an OPD directly through the service."""
    with session_scope(engine) as s:
        opd_service.create_opd(
            s, actor=cli_principal(), data=OpdCreate(code=code, name=name or code, timezone=tz)
        )


def add_token(engine: Engine, role: Role, opd_code: str | None = None, name: str = "") -> str:
    """Create a token and return its secret."""
    with session_scope(engine) as s:
        _, secret = auth_service.create_token(
            s,
            actor=cli_principal(),
            role=role,
            name=name or f"test {role.value}",
            opd_code=opd_code,
        )
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


# --- campaigns, rounds and deliveries ---------------------------------------------------------


def add_template(engine: Engine, *, name: str = "spi_uji", status: str = "SANDBOX") -> int:
    """Register a neutral template (the first seed body) and return its id."""
    from app.templates import service as template_service

    seed = template_service.seed_definitions()[0]
    with session_scope(engine) as s:
        template = template_service.register(
            s,
            actor=cli_principal(),
            name=name,
            language="id",
            category="UTILITY",
            body=str(seed["body"]),
            parameters=list(seed["parameters"]),
        )
        if status != template.status:
            template.status = status  # e.g. PAUSED by Meta: no longer usable
            s.add(template)
        assert template.id is not None
        return template.id


def add_campaign(
    engine: Engine,
    *,
    template_id: int,
    now: datetime,
    opd_codes: Sequence[str] = (),
    activate: bool = True,
    **fields: Any,
) -> int:
    """Create a campaign through the service (2026-03-01 – 04-30 by default), optionally active."""
    from app.campaigns import editing as campaign_editing
    from app.campaigns import service as campaign_service
    from app.campaigns.schemas import CampaignCreate
    from app.config import Settings

    values: dict[str, Any] = {
        "name": "SPI 2026",
        "spi_year": 2026,
        "first_day": date(2026, 3, 1),
        "last_day": date(2026, 4, 30),
        "template_id": template_id,
        "opd_codes": list(opd_codes),
        **fields,
    }
    with session_scope(engine) as s:
        campaign = campaign_editing.create_campaign(
            s, actor=cli_principal(), data=CampaignCreate(**values), now=now
        )
        assert campaign.id is not None
        if activate:
            settings = Settings(_env_file=None, institution_name="Pemerintah Kota Uji")  # type: ignore[call-arg]
            campaign_service.activate(
                s, actor=cli_principal(), campaign_id=campaign.id, now=now, settings=settings
            )
        return campaign.id


def add_enrolments(engine: Engine, vault: PhoneVault, opd_code: str, count: int) -> list[int]:
    """Enrol `count` consenting people in an OPD through the service; their enrolment ids."""
    from app.enrolment import service as enrolment_service

    ids: list[int] = []
    with session_scope(engine) as s:
        opd = opd_service.get_by_code(s, code=opd_code)
        start = s.exec(select(func.count()).select_from(Enrolment)).one()
        for n in range(start, start + count):
            enrolment = enrolment_service.enrol(
                s,
                vault=vault,
                actor=cli_principal(),
                opd=opd,
                phone=f"0812{n:08d}",
                label=None,
                consent_method="paper_form",
                consent_recorded_at=None,
                notice_version="2026-1",
                regions=frozenset({"ID"}),
            )
            assert enrolment.id is not None
            ids.append(enrolment.id)
    return ids


# --- webhook: enrolments, rounds and deliveries as plain rows (no campaign-service checks) ----


def enrol_number(
    engine: Engine, vault: PhoneVault, opd_code: str, phone: str, *, label: str | None = None
) -> int:
    """Enrol one number (paper-form consent) in an OPD through the enrolment service."""
    from app.enrolment import service as enrolment_service

    with session_scope(engine) as s:
        enrolment = enrolment_service.enrol(
            s,
            vault=vault,
            actor=cli_principal(),
            opd=opd_service.get_by_code(s, code=opd_code),
            phone=phone,
            label=label,
            consent_method="paper_form",
            consent_recorded_at=None,
            notice_version="2026-1",
            regions=frozenset({"ID"}),
        )
        assert enrolment.id is not None
        return enrolment.id


def add_round_rows(engine: Engine, *, opd_code: str, state: str = "active") -> tuple[int, int]:
    """A template, an all-OPD campaign and one round in the OPD's zone: (campaign, round)."""
    import secrets as _secrets
    from datetime import timedelta

    from app.campaigns.models import Campaign, Round
    from app.db import utcnow
    from app.templates.models import MessageTemplate

    with session_scope(engine) as s:
        opd = opd_service.get_by_code(s, code=opd_code)
        template = MessageTemplate(
            name=f"uji_webhook_{_secrets.token_hex(4)}",
            body="Pengingat SPI. Balas BERHENTI untuk berhenti menerima pengingat.",
            status="SANDBOX",
        )
        s.add(template)
        s.flush()
        assert template.id is not None
        campaign = Campaign(
            name="SPI uji",
            spi_year=2026,
            first_day=utcnow().date() - timedelta(days=30),
            last_day=utcnow().date() + timedelta(days=60),
            template_id=template.id,
            state=state,
        )
        s.add(campaign)
        s.flush()
        assert campaign.id is not None
        now = utcnow()
        round_ = Round(
            campaign_id=campaign.id, timezone=opd.timezone, scheduled_for=now, send_at=now
        )
        s.add(round_)
        s.flush()
        assert round_.id is not None
        return campaign.id, round_.id


def add_delivery_row(
    engine: Engine,
    *,
    round_id: int,
    enrolment_id: int,
    state: str = "queued",
    wamid: str | None = None,
) -> str:
    """One delivery of a round (counted as scheduled, like the scheduler does); its public id."""
    import secrets as _secrets

    from app.campaigns.models import Round
    from app.db import utcnow
    from app.outbox import tally
    from app.outbox.models import Delivery

    with session_scope(engine) as s:
        round_ = s.get(Round, round_id)
        enrolment = s.get(Enrolment, enrolment_id)
        assert round_ is not None
        assert enrolment is not None
        now = utcnow()
        delivery = Delivery(
            public_id=_secrets.token_urlsafe(16),
            round_id=round_id,
            campaign_id=round_.campaign_id,
            opd_id=enrolment.opd_id,
            enrolment_id=enrolment_id,
            state=state,
            next_attempt_at=now,
            wamid=wamid,
        )
        s.add(delivery)
        tally.count_outcome(
            s,
            campaign_id=round_.campaign_id,
            opd_id=enrolment.opd_id,
            timezone=round_.timezone,
            outcome=tally.SCHEDULED,
            at=now,
        )
        return delivery.public_id


# --- outbox: many people and a round, fast (imports local so this block only appends) -------


def add_people(
    engine: Engine, vault: PhoneVault, opd_code: str, count: int, *, first: int = 0
) -> list[str]:
    """Enrol `count` consenting people in bulk (straight into the table); their numbers."""
    import secrets as _secrets

    from sqlalchemy import insert as _insert

    from app.db import utcnow
    from app.enrolment.models import Enrolment as _Enrolment

    now = utcnow()
    phones = [f"+62812{n:08d}" for n in range(first, first + count)]
    with session_scope(engine) as s:
        opd = opd_service.get_by_code(s, code=opd_code)
        rows = [
            {
                "public_id": _secrets.token_hex(8),
                "opd_id": opd.id,
                "phone_ciphertext": vault.encrypt(phone),
                "phone_index": vault.blind_index(phone),
                "consent_method": "paper_form",
                "consent_recorded_at": now,
                "consent_notice_version": "2026-1",
                "consent_recorded_by": "test",
                "status": "active",
                "enrolled_at": now,
            }
            for phone in phones
        ]
        for start in range(0, len(rows), 1000):
            s.execute(_insert(_Enrolment), rows[start : start + 1000])
    return phones


def add_round(
    engine: Engine, *, campaign_id: int, at: datetime, timezone: str = "Asia/Jakarta"
) -> int:
    """Create a manual round of the campaign sent at `at`, through create_round; its id."""
    from app.campaigns.models import Campaign
    from app.campaigns.rounds import MANUAL, create_round

    with session_scope(engine) as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        created = create_round(
            s,
            campaign=campaign,
            timezone=timezone,
            scheduled_for=at,
            send_at=at,
            origin=MANUAL,
            now=at,
        )
        assert created is not None
        assert created.id is not None
        return created.id


def every_cell(engine: Engine) -> list[object]:
    """Every value of every row of every table, to scan for what must not remain."""
    from sqlalchemy import select as _select
    from sqlmodel import SQLModel

    with session_scope(engine) as s:
        return [
            cell
            for table in SQLModel.metadata.sorted_tables
            for row in s.execute(_select(table)).all()
            for cell in row
        ]
