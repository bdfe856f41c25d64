"""Campaign statistics per OPD and per closed day, rounded as docs/privacy.md says (invariant 5).

The true figures and what each one means are defined in `app.stats.figures`; this module scopes
them to the viewer, groups small OPDs, rounds every figure with `app.stats.rounding`, and shapes
the published rows. Every viewer and every surface (JSON, CSV, dashboard) gets the same rounded
figure for the same cell: a coordinator's own OPD is the very row the inspectorate sees, unless
their OPD is grouped, and then it is its own cell, rounded by the same rule.

The published result is cached per process, keyed by everything it depends on, including the
row count and sum of both counter tables (counters only grow, so any write changes the key):
the per-OPD and daily views of a dashboard page share one computation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlmodel import Session

from app.auth.models import Role
from app.auth.principal import Principal
from app.campaigns.models import Campaign
from app.db import utcnow
from app.errors import Forbidden, NotFound
from app.security import PhoneVault
from app.stats import queries
from app.stats.figures import FIELDS, MEASURES, PUBLISHED_RULE, Scope, Series, read_series
from app.stats.queries import OpdRef
from app.stats.rounding import publish_arrays, rounding_key
from app.stats.schemas import (
    OTHER_OPDS_CODE,
    OTHER_OPDS_NAME,
    CampaignDaily,
    CampaignStats,
    DailyRow,
    StatsRow,
    method_notes,
)

TOTAL_NAME = "Jumlah"
ENROLLED = FIELDS.index("enrolled")
RATE_MIN_DENOMINATOR = 10
# A day is closed once it has ended in WIB, the westernmost zone (it has ended in WITA and WIT).
CLOSING_ZONE = ZoneInfo("Asia/Jakarta")


@dataclass(frozen=True)
class Unit:
    """A published row: one OPD, or the small OPDs together."""

    code: str
    name: str
    members: tuple[int, ...]


@dataclass(frozen=True)
class Published:
    scope: Scope
    group_min: int
    units: list[Unit]
    series: list[Series]  # per unit: the published figures per day (populations zero)


def stats_key(vault: PhoneVault) -> bytes:
    """The key of the rounding coins, derived from the blind-index key."""
    return rounding_key(vault.index_key)


def campaign_end(campaign: Campaign) -> date:
    """The campaign's last day, or the day it was finished if that came first."""
    if campaign.finished_at is not None and campaign.finished_at.date() < campaign.last_day:
        return campaign.finished_at.date()
    return campaign.last_day


def last_closed_day(now: datetime) -> date:
    """Yesterday in WIB: the latest day no event can still be added to."""
    return now.astimezone(CLOSING_ZONE).date() - timedelta(days=1)


def campaign_stats(
    session: Session,
    *,
    campaign_id: int,
    viewer: Principal,
    key: bytes,
    group_min: int,
    now: datetime | None = None,
) -> CampaignStats:
    """Per-OPD and total figures of a campaign, rounded, up to the last closed day."""
    p = published(session, campaign_id, viewer, key, group_min, now)
    rows = [_row(u.code, u.name, _last(s)) for u, s in zip(p.units, p.series, strict=True)]
    total = {m: sum(getattr(r, m) for r in rows) for m in MEASURES}
    return CampaignStats.model_validate(
        {**header(p), "rows": rows, "total": _row(None, TOTAL_NAME, total)}
    )


def campaign_daily(
    session: Session,
    *,
    campaign_id: int,
    viewer: Principal,
    key: bytes,
    group_min: int,
    now: datetime | None = None,
) -> CampaignDaily:
    """The same figures at the end of each closed day: the viewer's OPDs together."""
    p = published(session, campaign_id, viewer, key, group_min, now)
    summed = np.zeros((len(p.scope.days), len(FIELDS)), dtype=np.int64)
    for unit_series in p.series:
        summed += unit_series
    days = [
        DailyRow.model_validate(
            {"day": day, **{m: int(summed[i][FIELDS.index(m)]) for m in MEASURES}}
        )
        for i, day in enumerate(p.scope.days)
    ]
    opd = p.scope.coordinator_opd
    return CampaignDaily.model_validate(
        {**header(p), "opd_code": opd.code if opd else None, "days": days}
    )


def _scope(session: Session, *, campaign_id: int, viewer: Principal, now: datetime) -> Scope:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("no such campaign", code="campaign_not_found")
    as_of: date | None = min(last_closed_day(now), campaign_end(campaign))
    if as_of is not None and as_of < campaign.first_day:
        as_of = None
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


def _units(scope: Scope, series: dict[int, Series], group_min: int) -> list[Unit]:
    """One unit per OPD with at least `group_min` people listed; the others in one group."""
    if scope.coordinator_opd is not None:
        own = scope.coordinator_opd
        return [Unit(own.code, own.name, (own.id,))]
    units: list[Unit] = []
    small: list[OpdRef] = []
    for opd in scope.opds:
        history = series[opd.id]
        listed = int(history[-1][ENROLLED]) if len(history) else 0
        if listed >= group_min:
            units.append(Unit(opd.code, opd.name, (opd.id,)))
        else:
            small.append(opd)
    if small:
        # The group is a cell of its own: its members are part of its identity.
        code = f"{OTHER_OPDS_CODE}:{','.join(o.code for o in small)}"
        units.append(Unit(code, OTHER_OPDS_NAME, tuple(o.id for o in small)))
    return units


def _publish(scope: Scope, series: dict[int, Series], group_min: int, key: bytes) -> _Computed:
    units = _units(scope, series, group_min)
    if not units:
        return _Computed(fingerprint=(), units=units, series=[])
    truths = np.stack([np.sum([series[m] for m in unit.members], axis=0) for unit in units])
    cells = [f"campaign:{scope.campaign.id}|{unit.code}" for unit in units]
    published = publish_arrays(truths, FIELDS, key=key, cells=cells, rule=PUBLISHED_RULE)
    return _Computed(fingerprint=(), units=units, series=list(published))


# --- cache ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Computed:
    fingerprint: tuple[object, ...]
    units: list[Unit]
    series: list[Series]


CACHE_SIZE = 64
_CACHE: OrderedDict[tuple[object, ...], _Computed] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget every cached result (tests and benchmarks)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def published(
    session: Session,
    campaign_id: int,
    viewer: Principal,
    key: bytes,
    group_min: int,
    now: datetime | None,
) -> Published:
    scope = _scope(session, campaign_id=campaign_id, viewer=viewer, now=now or utcnow())
    cache_key = _cache_key(scope, group_min, key)
    fingerprint = _fingerprint(session, scope)
    with _CACHE_LOCK:
        entry = _CACHE.get(cache_key)
    if entry is None or entry.fingerprint != fingerprint:
        # The fingerprint is read before the figures: if a write slips in between, the entry
        # looks older than it is and is recomputed next time, never the other way round.
        computed = _publish(scope, read_series(session, scope), group_min, key)
        entry = _Computed(fingerprint=fingerprint, units=computed.units, series=computed.series)
    with _CACHE_LOCK:
        _CACHE[cache_key] = entry
        _CACHE.move_to_end(cache_key)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return Published(scope=scope, group_min=group_min, units=entry.units, series=entry.series)


def _cache_key(scope: Scope, group_min: int, key: bytes) -> tuple[object, ...]:
    campaign = scope.campaign
    return (
        campaign.id,
        campaign.created_at,  # a campaign row, not just an id (a restored database reuses ids)
        campaign.first_day,
        scope.as_of,
        tuple(o.id for o in scope.opds),
        None if scope.opd_filter is None else tuple(scope.opd_filter),
        scope.coordinator_opd.id if scope.coordinator_opd else None,
        group_min,
        hash(key),
    )


def _fingerprint(session: Session, scope: Scope) -> tuple[object, ...]:
    assert scope.campaign.id is not None
    delivery = queries.delivery_fingerprint(
        session, campaign_id=scope.campaign.id, opd_filter=scope.opd_filter
    )
    return (delivery, queries.enrolment_fingerprint(session))


# --- published rows ---------------------------------------------------------------------------


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den >= RATE_MIN_DENOMINATOR else None


def _last(series: Series) -> dict[str, int]:
    if not len(series):
        return dict.fromkeys(MEASURES, 0)
    return {m: int(series[-1][FIELDS.index(m)]) for m in MEASURES}


def shown_code(code: str | None) -> str | None:
    """The code a row shows: LAINNYA for the group (its members stay out of sight)."""
    return OTHER_OPDS_CODE if code and code.startswith(f"{OTHER_OPDS_CODE}:") else code


def _row(code: str | None, name: str, values: dict[str, int]) -> StatsRow:
    return StatsRow.model_validate(
        {
            "opd_code": shown_code(code),
            "opd_name": name,
            **values,
            "delivery_rate": _rate(values["delivered"], values["scheduled"]),
            "opt_out_rate": _rate(values["opted_out"], values["enrolled"]),
        }
    )


def header(p: Published) -> dict[str, object]:
    campaign = p.scope.campaign
    assert campaign.id is not None
    return {
        "campaign_id": campaign.id,
        "campaign_name": campaign.name,
        "state": campaign.state,
        "first_day": campaign.first_day,
        "last_day": campaign.last_day,
        "as_of": p.scope.as_of,
        "group_min": p.group_min,
        "notes": method_notes(p.group_min),
    }
