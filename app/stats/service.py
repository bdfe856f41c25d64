"""Campaign statistics per OPD and per day, protected against small cells (invariants 4, 5).

The figures and what each one means are defined in `app.stats.figures`; this module scopes them
to the viewer, protects them, and shapes the published rows.

Suppression. The per-OPD table and the per-day table a viewer can get are protected together
as one system (`app.stats.suppression`): the days' columns add up to the campaign totals, and
scheduled = accepted + failed_* + unknown + skipped + pending holds in every row where pending
was not floored. Rates are published only when both of their counts are. Inspectorate and admin
get every OPD of the campaign; a coordinator gets their own OPD only, as a one-row table that is
its own total, protected the same way.

The protected result is cached per process, keyed by everything it depends on, including the
row count and sum of both counter tables (counters only grow, so any write changes the key):
the per-OPD and daily views of a dashboard page share one computation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session

from app.auth.models import Role
from app.auth.principal import Principal
from app.campaigns.models import Campaign
from app.db import utcnow
from app.errors import Forbidden, NotFound
from app.stats import figures as stats_figures
from app.stats import queries, suppression
from app.stats.cells import COMPLEMENTARY_MARKER, Mark, System, display
from app.stats.figures import CAMPAIGN_KEYS, COL, DAILY_KEYS, RESOLVED, Figures, Scope
from app.stats.schemas import CampaignDaily, CampaignStats, DailyRow, StatsRow, marker_notes

# scheduled = accepted + failed_* + unknown + skipped + pending, in every row where it holds
_RELATION = (COL["scheduled"], tuple(COL[k] for k in (*RESOLVED, "pending")))
TOTAL_NAME = "Jumlah"


@dataclass
class _Protected:
    scope: Scope
    figures: Figures
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
        DailyRow.model_validate({"day": day, **_counts(DAILY_KEYS, values, marks, p.k)})
        for day, values, marks in zip(p.figures.days, p.figures.per_day, p.day_marks, strict=True)
    ]
    totals = [COL[key] for key in DAILY_KEYS]
    total_values = [p.total_values[c] for c in totals]
    total_marks = [p.total_marks[c] for c in totals]
    total = DailyRow.model_validate(
        {"day": None, **_counts(DAILY_KEYS, total_values, total_marks, p.k)}
    )
    opd = p.scope.coordinator_opd
    return CampaignDaily.model_validate(
        {**_header(p), "opd_code": opd.code if opd else None, "days": days, "total": total}
    )


def _scope(session: Session, *, campaign_id: int, viewer: Principal, today: date) -> Scope:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("no such campaign", code="campaign_not_found")
    as_of = min(today, campaign_end(campaign))
    if viewer.role is Role.coordinator:
        if viewer.opd_id is None:
            raise Forbidden("this coordinator token has no OPD")
        own = queries.opd_ref(session, opd_id=viewer.opd_id)
        if own is None or not queries.covers(session, campaign=campaign, opd_id=viewer.opd_id):
            # A campaign that never concerned their OPD is none of their business.
            raise NotFound("no such campaign", code="campaign_not_found")
        return Scope(campaign, [own], [viewer.opd_id], own, as_of)
    if campaign.all_opds:
        return Scope(campaign, queries.all_opd_refs(session), None, None, as_of)
    opds = queries.campaign_opd_refs(session, campaign_id=campaign_id)
    return Scope(campaign, opds, [o.id for o in opds], None, as_of)


# --- protection and its cache -------------------------------------------------------------------


@dataclass(frozen=True)
class _Computed:
    fingerprint: tuple[object, ...]
    figures: Figures
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


def _cache_key(scope: Scope, k: int) -> tuple[object, ...]:
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


def _fingerprint(session: Session, scope: Scope) -> tuple[object, ...]:
    assert scope.campaign.id is not None
    delivery = queries.delivery_fingerprint(
        session, campaign_id=scope.campaign.id, opd_filter=scope.opd_filter
    )
    return (delivery, queries.enrolment_fingerprint(session))


def _compute(session: Session, scope: Scope, k: int) -> _Computed:
    # The enrolment fingerprint is read before the figures: if a write slips in between, the
    # entry looks older than it is and is recomputed next time, never the other way round.
    enrolments = queries.enrolment_fingerprint(session)
    figures = stats_figures.read_figures(session, scope)
    system = System()
    if figures.per_opd:
        master = suppression.add_table(system, figures.per_opd, relations=[_RELATION])
        totals = master.total_row
    else:  # a campaign over no OPD: an all-zero total
        master = None
        totals = [system.cell(0, total=True) for _ in CAMPAIGN_KEYS]
    daily = suppression.add_table(
        system, figures.per_day, total_row=[totals[COL[key]] for key in DAILY_KEYS]
    )
    marks = suppression.protect(system, k=k)
    return _Computed(
        fingerprint=(figures.delivery_fingerprint, enrolments),
        figures=figures,
        opd_marks=[[marks[c] for c in row] for row in master.cells] if master else [],
        total_values=[system.values[c] for c in totals],
        total_marks=[marks[c] for c in totals],
        day_marks=[[marks[c] for c in row] for row in daily.cells],
    )


# --- published rows -----------------------------------------------------------------------------


def _counts(keys: list[str], values: list[int], marks: list[Mark], k: int) -> dict[str, int | str]:
    return {key: display(v, m, k=k) for key, v, m in zip(keys, values, marks, strict=True)}


def _rate(num: int, den: int, published: bool) -> float | str | None:
    if not published:
        return COMPLEMENTARY_MARKER
    if den == 0:
        return None
    return round(num / den, 4)


def _stats_row(
    code: str | None, name: str, values: list[int], marks: list[Mark], k: int
) -> StatsRow:
    counts = _counts(CAMPAIGN_KEYS, values, marks, k)

    def shown(*keys: str) -> bool:
        return all(marks[COL[key]] is Mark.published for key in keys)

    v = {key: values[COL[key]] for key in CAMPAIGN_KEYS}
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
