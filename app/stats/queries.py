"""Every SQL statement of the statistics package, for the figures and for /metrics.

All of them read aggregate counters (`DeliveryTally`, `EnrolmentTally`), OPDs, campaign scopes
and indexed states only; none reads a person's `delivery` or `enrolment` row.

The counters come grouped in SQL per OPD, day and outcome (or event), one statement each.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Date,
    Integer,
    Row,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    type_coerce,
)
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.campaigns.models import Campaign, CampaignOpd
from app.db import is_postgresql
from app.enrolment.models import EnrolmentTally
from app.opds.models import Opd
from app.outbox.models import Delivery, DeliveryState, DeliveryTally

# Result rows of any width (unpacked by the caller).
Rows = Sequence[Row[*tuple[Any, ...]]]


@dataclass(frozen=True)
class OpdRef:
    """An OPD as a row of the statistics tables."""

    id: int
    code: str
    name: str


# --- scope --------------------------------------------------------------------------------------


def _opd_refs(session: Session, where: Any) -> list[OpdRef]:
    stmt = select(Opd.id, Opd.code, Opd.name).order_by(col(Opd.code))
    if where is not None:
        stmt = stmt.where(where)
    return [OpdRef(i, c, n) for i, c, n in session.exec(stmt).all() if i is not None]


def opd_ref(session: Session, *, opd_id: int) -> OpdRef | None:
    """One OPD, if it exists."""
    found = _opd_refs(session, col(Opd.id) == opd_id)
    return found[0] if found else None


def all_opd_refs(session: Session) -> list[OpdRef]:
    """Every OPD, by code."""
    return _opd_refs(session, None)


def campaign_opd_refs(session: Session, *, campaign_id: int) -> list[OpdRef]:
    """The OPDs a campaign covers or has counters for, by code."""
    in_scope = select(CampaignOpd.opd_id).where(CampaignOpd.campaign_id == campaign_id)
    counted = (
        select(DeliveryTally.opd_id).where(DeliveryTally.campaign_id == campaign_id).distinct()
    )
    return _opd_refs(session, col(Opd.id).in_(in_scope) | col(Opd.id).in_(counted))


def covers(session: Session, *, campaign: Campaign, opd_id: int) -> bool:
    """Whether the campaign concerns this OPD: in its scope, or counted for it."""
    if campaign.all_opds:
        return True
    scoped = session.exec(
        select(CampaignOpd.opd_id).where(
            CampaignOpd.campaign_id == campaign.id, CampaignOpd.opd_id == opd_id
        )
    ).first()
    if scoped is not None:
        return True
    counted = session.exec(
        select(DeliveryTally.id).where(
            DeliveryTally.campaign_id == campaign.id, DeliveryTally.opd_id == opd_id
        )
    ).first()
    return counted is not None


# --- counters -----------------------------------------------------------------------------------


def _delivery_where(campaign_id: int, opd_filter: Sequence[int] | None) -> list[Any]:
    dt = DeliveryTally
    where = [col(dt.campaign_id) == campaign_id]
    if opd_filter is not None:
        where.append(col(dt.opd_id).in_(opd_filter))
    return where


def _sums_by(column: Any, groups: Mapping[str, Sequence[str]], count: Any) -> list[Any]:
    """One SUM per group of values of `column` (a pivot done in SQL)."""
    return [
        cast(func.sum(case((col(column).in_(list(values)), count), else_=0)), Integer).label(name)
        for name, values in groups.items()
    ]


def _day_offset(session: Session, day: Any, first: date) -> Any:
    """Whole days from `first` to `day`, computed by the database.

    An integer column is read far faster than dates, which Python and numpy convert one by one.
    """
    if is_postgresql(session):
        return type_coerce(day - literal(first, Date), Integer)
    return cast(func.julianday(day) - func.julianday(first.isoformat()), Integer)


def delivery_series(
    session: Session,
    *,
    campaign_id: int,
    opd_filter: Sequence[int] | None,
    measures: Mapping[str, Sequence[str]],
    first: date,
    as_of: date,
) -> Rows:
    """(opd_id, days since `first`, *one sum per measure) of a campaign's delivery counters up to
    `as_of`."""
    dt = DeliveryTally
    outcomes = [o for group in measures.values() for o in group]
    where = [*_delivery_where(campaign_id, opd_filter), col(dt.day) <= as_of]
    offset = _day_offset(session, col(dt.day), first)
    stmt = (
        sa_select(col(dt.opd_id), offset, *_sums_by(dt.outcome, measures, dt.count))
        .where(*where, col(dt.outcome).in_(outcomes))
        .group_by(col(dt.opd_id), col(dt.day))
    )
    return session.connection().execute(stmt).all()


def enrolment_series(
    session: Session,
    *,
    opd_filter: Sequence[int] | None,
    events: Mapping[str, Sequence[str]],
    first: date,
    as_of: date,
) -> Rows:
    """(opd_id, days since `first`, *one sum per group of events) up to `as_of`; earlier days
    come as -1."""
    et = EnrolmentTally
    before = first - timedelta(days=1)
    day = case((col(et.day) < first, literal(before, Date)), else_=col(et.day))
    where = [col(et.day) <= as_of]
    if opd_filter is not None:
        where.append(col(et.opd_id).in_(opd_filter))
    stmt = (
        sa_select(
            col(et.opd_id),
            _day_offset(session, day, first),
            *_sums_by(et.event, events, et.count),
        )
        .where(*where)
        .group_by(col(et.opd_id), day)
    )
    return session.connection().execute(stmt).all()


def delivery_fingerprint(
    session: Session, *, campaign_id: int, opd_filter: Sequence[int] | None
) -> tuple[int, int]:
    """Row count and sum of the campaign's delivery counters for these OPDs."""
    dt = DeliveryTally
    n, total = session.execute(
        sa_select(func.count(), func.coalesce(func.sum(dt.count), 0)).where(
            *_delivery_where(campaign_id, opd_filter)
        )
    ).one()
    return int(n), int(total)


def enrolment_fingerprint(session: Session) -> tuple[int, int]:
    """Row count and sum of all enrolment counters."""
    et = EnrolmentTally
    n, total = session.execute(sa_select(func.count(), func.coalesce(func.sum(et.count), 0))).one()
    return int(n), int(total)


# --- /metrics -----------------------------------------------------------------------------------


def outbox_waiting(conn: Connection, *, now: datetime) -> Rows:
    """(state, retried, n) of deliveries sending or queued and due; retried is 1 after an attempt.

    Queued deliveries that are not due yet are left out: a STOP skips them at once, so counting
    them would show the moment of an opt-out while nothing else moves (e.g. at night).
    """
    retrying = case((col(Delivery.attempts) > 0, 1), else_=0)
    due = or_(
        col(Delivery.state) == DeliveryState.sending,
        and_(col(Delivery.state) == DeliveryState.queued, col(Delivery.next_attempt_at) <= now),
    )
    return conn.execute(
        sa_select(col(Delivery.state), retrying, func.count())
        .where(due)
        .group_by(col(Delivery.state), retrying)
    ).all()


def campaigns_by_state(conn: Connection) -> Rows:
    """(state, n) of campaigns."""
    return conn.execute(
        sa_select(col(Campaign.state), func.count()).group_by(col(Campaign.state))
    ).all()


def delivery_outcome_totals(conn: Connection) -> Rows:
    """(outcome, n) summed over every campaign's delivery counters."""
    return conn.execute(
        sa_select(col(DeliveryTally.outcome), func.sum(DeliveryTally.count)).group_by(
            col(DeliveryTally.outcome)
        )
    ).all()
