"""Campaign statistics per OPD and per day, from the aggregate counters only (invariants 4, 5).

Sources. Delivery figures are sums of `DeliveryTally` (campaign, OPD, local day, outcome);
enrolment figures are sums of `EnrolmentTally` (OPD, day, event). Neither holds a person, and
both outlive the retention purge, so a campaign's figures are the same before and after its
per-person rows go. No query here reads `delivery` or `enrolment`.

Definitions (per OPD; the total row is the sum over the OPDs shown):
- period: the campaign's first day up to `as_of` = the earlier of today and the campaign's end
  (its last day, or the day it was finished if that came first);
- enrolled: active enrolments at the end of the period: every `enrolled` and `resumed` up to
  `as_of` minus every `withdrawn`, `opted_out` and `erased` (each counted only when an active
  enrolment left that state, as `app.enrolment` and `app.enrolment.optout` do);
- opted_out, unreachable: STOPs and numbers found not on WhatsApp within the period;
- scheduled, accepted, delivered, failed_*, unknown, skipped: the delivery outcome counters;
- pending: scheduled - accepted - failed_* - unknown - skipped, floored at 0. A delivery that
  leaves the outbox counts one of those four; a later status on it (unknown or skipped then
  accepted, accepted then failed) counts a second one, so pending may under-count by those;
- delivery_rate = delivered / scheduled; opt_out_rate = opted_out / (enrolled + opted_out).

The daily view counts each outcome on the (local) day it happened, so its days add up to the
campaign totals, not to any per-day "scheduled minus outcomes".

Suppression. The per-OPD table and the per-day table a viewer can get are protected together
as one system (`app.stats.suppression`): the days' columns add up to the campaign totals, and
scheduled = accepted + failed_* + unknown + skipped + pending holds in every row where pending
was not floored. Rates are published only when both of their counts are. Inspectorate and admin
get every OPD of the campaign; a coordinator gets their own OPD only, as a one-row table that is
its own total, protected the same way.

Queries: one statement for the delivery counters, per OPD and per day (GROUPING SETS on
PostgreSQL, UNION ALL on SQLite; one statement, so both come from one snapshot and add up
exactly), and one for the enrolment counters, both grouped in SQL.
The protected result is cached per process, keyed by everything it depends on, including the
row count and sum of both counter tables (counters only grow, so any write changes the key):
the per-OPD and daily views of a dashboard page share one computation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Date, Integer, and_, case, cast, func, literal, null, tuple_, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.auth.models import Role
from app.auth.principal import Principal
from app.campaigns.models import Campaign, CampaignOpd
from app.db import is_postgresql, utcnow
from app.enrolment.models import EnrolmentTally
from app.errors import Forbidden, NotFound
from app.opds.models import Opd
from app.outbox import tally
from app.outbox.models import DeliveryTally
from app.stats import suppression
from app.stats.schemas import (
    CAMPAIGN_COUNTS,
    DAILY_COUNTS,
    CampaignDaily,
    CampaignStats,
    DailyRow,
    StatsRow,
    marker_notes,
)
from app.stats.suppression import Mark, System

ENROL_IN = ("enrolled", "resumed")
ENROL_OUT = ("withdrawn", "opted_out", "erased")
OPTED_OUT = "opted_out"
UNREACHABLE = "unreachable"
DELIVERY_OUTCOMES = (
    tally.SCHEDULED,
    tally.ACCEPTED,
    tally.DELIVERED,
    tally.FAILED_NOT_ON_WHATSAPP,
    tally.FAILED_REFUSED,
    tally.FAILED_OTHER,
    tally.UNKNOWN,
    tally.SKIPPED,
)
RESOLVED = (
    tally.ACCEPTED,
    tally.FAILED_NOT_ON_WHATSAPP,
    tally.FAILED_REFUSED,
    tally.FAILED_OTHER,
    tally.UNKNOWN,
    tally.SKIPPED,
)
_CAMPAIGN_KEYS = [key for key, _ in CAMPAIGN_COUNTS]
_DAILY_KEYS = [key for key, _ in DAILY_COUNTS]
_COL = {key: i for i, key in enumerate(_CAMPAIGN_KEYS)}
# scheduled = accepted + failed_* + unknown + skipped + pending, in every row where it holds
_RELATION = (_COL["scheduled"], tuple(_COL[k] for k in (*RESOLVED, "pending")))
TOTAL_NAME = "Jumlah"


@dataclass(frozen=True)
class _OpdRef:
    id: int
    code: str
    name: str


@dataclass
class _Scope:
    campaign: Campaign
    opds: list[_OpdRef]  # rows, by code
    opd_filter: list[int] | None  # None: every OPD (all-OPD campaign seen by a reader of all)
    coordinator_opd: _OpdRef | None
    as_of: date


@dataclass
class _Figures:
    per_opd: list[list[int]]  # rows in _CAMPAIGN_KEYS order
    days: list[date]
    per_day: list[list[int]]  # rows in _DAILY_KEYS order
    delivery_fingerprint: tuple[int, int]  # rows and sum of the counters read


@dataclass
class _Protected:
    scope: _Scope
    figures: _Figures
    k: int
    opd_marks: list[list[Mark]]
    total_values: list[int]
    total_marks: list[Mark]
    day_marks: list[list[Mark]]


def campaign_end(campaign: Campaign) -> date:
    """The campaign's last day, or the day it was finished if that came first."""
    if campaign.finished_at is not None and campaign.finished_at.date() < campaign.last_day:
        return campaign.finished_at.date()
    return campaign.last_day


def campaign_stats(
    session: Session,
    *,
    campaign_id: int,
    viewer: Principal,
    min_cell: int,
    today: date | None = None,
) -> CampaignStats:
    """Per-OPD and total figures of a campaign, small cells withheld."""
    p = _protected(session, campaign_id=campaign_id, viewer=viewer, k=min_cell, today=today)
    rows = [
        _stats_row(opd.code, opd.name, values, marks, p.k)
        for opd, values, marks in zip(p.scope.opds, p.figures.per_opd, p.opd_marks, strict=True)
    ]
    total = _stats_row(None, TOTAL_NAME, p.total_values, p.total_marks, p.k)
    return CampaignStats.model_validate({**_header(p), "rows": rows, "total": total})


def campaign_daily(
    session: Session,
    *,
    campaign_id: int,
    viewer: Principal,
    min_cell: int,
    today: date | None = None,
) -> CampaignDaily:
    """The same outcomes per day (and their total), small cells withheld."""
    p = _protected(session, campaign_id=campaign_id, viewer=viewer, k=min_cell, today=today)
    days = [
        DailyRow.model_validate({"day": day, **_counts(_DAILY_KEYS, values, marks, p.k)})
        for day, values, marks in zip(p.figures.days, p.figures.per_day, p.day_marks, strict=True)
    ]
    totals = [_COL[key] for key in _DAILY_KEYS]
    total_values = [p.total_values[c] for c in totals]
    total_marks = [p.total_marks[c] for c in totals]
    total = DailyRow.model_validate(
        {"day": None, **_counts(_DAILY_KEYS, total_values, total_marks, p.k)}
    )
    opd = p.scope.coordinator_opd
    return CampaignDaily.model_validate(
        {**_header(p), "opd_code": opd.code if opd else None, "days": days, "total": total}
    )


# --- scope and figures --------------------------------------------------------------------------


def _scope(session: Session, *, campaign_id: int, viewer: Principal, today: date) -> _Scope:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("no such campaign", code="campaign_not_found")
    as_of = min(today, campaign_end(campaign))
    if viewer.role is Role.coordinator:
        if viewer.opd_id is None:
            raise Forbidden("this coordinator token has no OPD")
        own = _opd_refs(session, col(Opd.id) == viewer.opd_id)
        if not own or not _covers(session, campaign, viewer.opd_id):
            # A campaign that never concerned their OPD is none of their business.
            raise NotFound("no such campaign", code="campaign_not_found")
        return _Scope(campaign, own, [viewer.opd_id], own[0], as_of)
    if campaign.all_opds:
        return _Scope(campaign, _opd_refs(session, None), None, None, as_of)
    in_scope = select(CampaignOpd.opd_id).where(CampaignOpd.campaign_id == campaign_id)
    counted = (
        select(DeliveryTally.opd_id).where(DeliveryTally.campaign_id == campaign_id).distinct()
    )
    opds = _opd_refs(session, col(Opd.id).in_(in_scope) | col(Opd.id).in_(counted))
    return _Scope(campaign, opds, [o.id for o in opds], None, as_of)


def _opd_refs(session: Session, where: Any) -> list[_OpdRef]:
    stmt = select(Opd.id, Opd.code, Opd.name).order_by(col(Opd.code))
    if where is not None:
        stmt = stmt.where(where)
    return [_OpdRef(i, c, n) for i, c, n in session.exec(stmt).all() if i is not None]


def _covers(session: Session, campaign: Campaign, opd_id: int) -> bool:
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


def _figures(session: Session, scope: _Scope) -> _Figures:
    campaign = scope.campaign
    assert campaign.id is not None
    opd_index = {opd.id: i for i, opd in enumerate(scope.opds)}
    per_opd = [[0] * len(_CAMPAIGN_KEYS) for _ in scope.opds]
    by_day: dict[date, list[int]] = {}
    first, as_of = campaign.first_day, scope.as_of
    d = first
    while d <= as_of:  # every day of the period, so charts have no gaps
        by_day[d] = [0] * len(_DAILY_KEYS)
        d += timedelta(days=1)

    def day_row(day: date) -> list[int]:
        return by_day.setdefault(day, [0] * len(_DAILY_KEYS))

    # Delivery counters: per OPD and per day in one statement (one snapshot). Outcomes the
    # tables do not show (retried) are dropped here: a filter in SQL costs more than it saves.
    daily_col = {key: i for i, key in enumerate(_DAILY_KEYS)}
    fp_rows = fp_sum = 0
    query = _delivery_query(session, scope)
    for kind, opd_id, day, outcome, n, rows in session.execute(query).all():
        if kind == 0:
            fp_rows += int(rows)
            fp_sum += int(n)
        if outcome not in DELIVERY_OUTCOMES:
            continue
        if kind == 0:
            if opd_id in opd_index:
                per_opd[opd_index[opd_id]][_COL[outcome]] += int(n)
        else:
            day_row(_as_date(day))[daily_col[outcome]] += int(n)

    # Enrolment counters: the net active count up to as_of, and the period's events per day.
    et = EnrolmentTally
    e_where = [col(et.day) <= as_of]
    if scope.opd_filter is not None:
        e_where.append(col(et.opd_id).in_(scope.opd_filter))
    in_period = and_(col(et.day) >= first, col(et.day) <= as_of)
    period_flag = case((in_period, 1), else_=0)
    e_opd_q: Any = (
        sa_select(
            literal(0).label("kind"),
            col(et.opd_id).label("opd_id"),
            cast(null(), Date).label("day"),
            col(et.event),
            period_flag.label("in_period"),
            cast(func.sum(et.count), Integer).label("n"),
        )
        .where(*e_where)
        .group_by(col(et.opd_id), col(et.event), period_flag)
    )
    e_day_q: Any = (
        sa_select(
            literal(1).label("kind"),
            cast(null(), Integer).label("opd_id"),
            col(et.day).label("day"),
            col(et.event),
            literal(1).label("in_period"),
            cast(func.sum(et.count), Integer).label("n"),
        )
        .where(*e_where, in_period, col(et.event).in_((OPTED_OUT, UNREACHABLE)))
        .group_by(col(et.day), col(et.event))
    )
    for kind, opd_id, day, event, flag, n in session.execute(union_all(e_opd_q, e_day_q)).all():
        n = int(n)
        if kind == 0:
            if opd_id not in opd_index:
                continue
            row = per_opd[opd_index[opd_id]]
            if event in ENROL_IN:
                row[_COL["enrolled"]] += n
            elif event in ENROL_OUT:
                row[_COL["enrolled"]] -= n
            if flag and event in (OPTED_OUT, UNREACHABLE):
                row[_COL[event]] += n
        else:
            day_row(_as_date(day))[daily_col[event]] += n

    for row in per_opd:
        row[_COL["enrolled"]] = max(0, row[_COL["enrolled"]])
        resolved = sum(row[_COL[k]] for k in RESOLVED)
        row[_COL["pending"]] = max(0, row[_COL["scheduled"]] - resolved)
    days = sorted(by_day)
    return _Figures(
        per_opd=per_opd,
        days=days,
        per_day=[by_day[d] for d in days],
        delivery_fingerprint=(fp_rows, fp_sum),
    )


def _delivery_query(session: Session, scope: _Scope) -> Any:
    """(kind, opd_id, day, outcome, n, rows): kind 0 per OPD, kind 1 per day."""
    dt = DeliveryTally
    where = _delivery_where(scope)
    total = cast(func.sum(dt.count), Integer).label("n")
    rows = func.count().label("rows")
    if is_postgresql(session):
        # One scan feeding both groupings (about twice as fast as two scans).
        return (
            sa_select(
                case((col(dt.opd_id).is_(None), 1), else_=0).label("kind"),
                col(dt.opd_id),
                col(dt.day),
                col(dt.outcome),
                total,
                rows,
            )
            .where(*where)
            .group_by(
                func.grouping_sets(
                    tuple_(col(dt.opd_id), col(dt.outcome)), tuple_(col(dt.day), col(dt.outcome))
                )
            )
        )
    per_opd: Any = (
        sa_select(
            literal(0).label("kind"),
            col(dt.opd_id).label("opd_id"),
            cast(null(), Date).label("day"),
            col(dt.outcome),
            total,
            rows,
        )
        .where(*where)
        .group_by(col(dt.opd_id), col(dt.outcome))
    )
    per_day: Any = (
        sa_select(
            literal(1).label("kind"),
            cast(null(), Integer).label("opd_id"),
            col(dt.day).label("day"),
            col(dt.outcome),
            total,
            rows,
        )
        .where(*where)
        .group_by(col(dt.day), col(dt.outcome))
    )
    return union_all(per_opd, per_day)


def _as_date(value: object) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))  # SQLite hands back the text of a NULL-typed union


# --- suppression and output ---------------------------------------------------------------------


def _protected(
    session: Session, *, campaign_id: int, viewer: Principal, k: int, today: date | None
) -> _Protected:
    if k < 1:
        raise ValueError("min_cell must be at least 1")
    scope = _scope(session, campaign_id=campaign_id, viewer=viewer, today=today or utcnow().date())
    key = _cache_key(scope, k)
    with _CACHE_LOCK:
        entry = _CACHE.get(key)
    hit: _Computed | None = None
    if entry is not None and entry.fingerprint == _fingerprint(session, scope):
        hit = entry
    if hit is None:
        hit = _compute(session, scope, k)
    with _CACHE_LOCK:
        _CACHE[key] = hit
        _CACHE.move_to_end(key)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return _Protected(
        scope=scope,
        figures=hit.figures,
        k=k,
        opd_marks=hit.opd_marks,
        total_values=hit.total_values,
        total_marks=hit.total_marks,
        day_marks=hit.day_marks,
    )


@dataclass(frozen=True)
class _Computed:
    fingerprint: tuple[object, ...]
    figures: _Figures
    opd_marks: list[list[Mark]]
    total_values: list[int]
    total_marks: list[Mark]
    day_marks: list[list[Mark]]


# Protected figures per campaign view, with the fingerprint of the counters they were made
# from: the row count and sum of the campaign's delivery counters (for the OPDs shown) and of
# all enrolment counters. Counters only ever grow, so any write changes the fingerprint, and a
# matching one means the figures are the same. The per-OPD and daily views of a dashboard page
# share one computation; a first read pays no fingerprint query (it comes with the figures).
CACHE_SIZE = 64
_CACHE: OrderedDict[tuple[object, ...], _Computed] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget every cached result (tests and benchmarks)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _cache_key(scope: _Scope, k: int) -> tuple[object, ...]:
    campaign = scope.campaign
    return (
        campaign.id,
        campaign.created_at,  # a campaign row, not just an id (a restored database reuses ids)
        campaign.first_day,
        scope.as_of,
        tuple(o.id for o in scope.opds),
        None if scope.opd_filter is None else tuple(scope.opd_filter),
        k,
    )


def _delivery_where(scope: _Scope) -> list[Any]:
    dt = DeliveryTally
    where = [col(dt.campaign_id) == scope.campaign.id]
    if scope.opd_filter is not None:
        where.append(col(dt.opd_id).in_(scope.opd_filter))
    return where


def _enrolment_fingerprint(session: Session) -> tuple[int, int]:
    et = EnrolmentTally
    n, total = session.execute(sa_select(func.count(), func.coalesce(func.sum(et.count), 0))).one()
    return int(n), int(total)


def _fingerprint(session: Session, scope: _Scope) -> tuple[object, ...]:
    dt = DeliveryTally
    n, total = session.execute(
        sa_select(func.count(), func.coalesce(func.sum(dt.count), 0)).where(*_delivery_where(scope))
    ).one()
    return ((int(n), int(total)), _enrolment_fingerprint(session))


def _compute(session: Session, scope: _Scope, k: int) -> _Computed:
    # The enrolment fingerprint is read before the figures: if a write slips in between, the
    # entry looks older than it is and is recomputed next time, never the other way round.
    enrolments = _enrolment_fingerprint(session)
    figures = _figures(session, scope)
    system = System()
    if figures.per_opd:
        master = suppression.add_table(system, figures.per_opd, relations=[_RELATION])
        totals = master.total_row
    else:  # a campaign over no OPD: an all-zero total
        master = None
        totals = [system.cell(0, total=True) for _ in _CAMPAIGN_KEYS]
    daily = suppression.add_table(
        system, figures.per_day, total_row=[totals[_COL[key]] for key in _DAILY_KEYS]
    )
    marks = protect_system(system, k=k)
    return _Computed(
        fingerprint=(figures.delivery_fingerprint, enrolments),
        figures=figures,
        opd_marks=[[marks[c] for c in row] for row in master.cells] if master else [],
        total_values=[system.values[c] for c in totals],
        total_marks=[marks[c] for c in totals],
        day_marks=[[marks[c] for c in row] for row in daily.cells],
    )


def protect_system(system: System, *, k: int) -> list[Mark]:
    """The suppression step (a seam for tests and benchmarks)."""
    return suppression.protect(system, k=k)


def _counts(keys: list[str], values: list[int], marks: list[Mark], k: int) -> dict[str, int | str]:
    return {
        key: suppression.display(v, m, k=k) for key, v, m in zip(keys, values, marks, strict=True)
    }


def _rate(num: int, den: int, published: bool) -> float | str | None:
    if not published:
        return suppression.COMPLEMENTARY_MARKER
    if den == 0:
        return None
    return round(num / den, 4)


def _stats_row(
    code: str | None, name: str, values: list[int], marks: list[Mark], k: int
) -> StatsRow:
    counts = _counts(_CAMPAIGN_KEYS, values, marks, k)

    def shown(*keys: str) -> bool:
        return all(marks[_COL[key]] is Mark.published for key in keys)

    v = {key: values[_COL[key]] for key in _CAMPAIGN_KEYS}
    return StatsRow.model_validate(
        {
            "opd_code": code,
            "opd_name": name,
            **counts,
            "delivery_rate": _rate(v["delivered"], v["scheduled"], shown("delivered", "scheduled")),
            "opt_out_rate": _rate(
                v["opted_out"], v["enrolled"] + v["opted_out"], shown("opted_out", "enrolled")
            ),
        }
    )


def _header(p: _Protected) -> dict[str, object]:
    campaign = p.scope.campaign
    assert campaign.id is not None
    return {
        "campaign_id": campaign.id,
        "campaign_name": campaign.name,
        "state": campaign.state,
        "first_day": campaign.first_day,
        "last_day": campaign.last_day,
        "as_of": p.scope.as_of,
        "min_cell": p.k,
        "notes": marker_notes(p.k),
    }
