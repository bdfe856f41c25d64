"""A campaign's true figures per OPD and closed day, from the aggregate counters (invariants 4, 5).

Sources. Delivery figures are sums of `DeliveryTally` (campaign, OPD, local day, outcome);
enrolment figures are sums of `EnrolmentTally` (OPD, day, event). Neither holds a person, and both
outlive the retention purge, so a campaign's figures are the same before and after its per-person
rows go. No query here reads `delivery` or `enrolment` (`app.stats.queries`).

Definitions, per OPD at the end of each day of the period (the campaign's first day to `as_of`):
- enrolled: people on the list: every `enrolled` minus every `withdrawn` and `erased` so far (a STOP
  leaves the list unchanged: the service simply never messages that number);
- scheduled, delivered: reminders planned, and reported delivered, since the first day;
- not_delivered: reminders that failed for good, were skipped, or whose outcome is unknown;
- expired: reminders Meta accepted that were not delivered before their send window ended
  ("kedaluwarsa", `app.campaigns.expiry`);
- opted_out: STOPs by people listed in the OPD since the first day;
- billed: delivered reminders Meta charged for (the `pricing` of their status), any category.
Two populations are read but never published; the rounding caps use them (`PUBLISHED_RULE`):
- reminder_population: for every round so far, the people on the list when it was created;
- ever_listed: the list on the day before the campaign plus everyone listed since.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlmodel import Session

from app.campaigns.models import Campaign
from app.outbox import tally
from app.stats import queries
from app.stats.queries import OpdRef
from app.stats.rounding import Cap, SeriesRule

MEASURES = (
    "enrolled",
    "scheduled",
    "delivered",
    "not_delivered",
    "opted_out",
    "expired",
    "billed",
)
POPULATIONS = ("reminder_population", "ever_listed")
FIELDS = (*MEASURES, *POPULATIONS)  # the columns of a series
PUBLISHED_RULE = SeriesRule(
    monotone=frozenset(
        {"scheduled", "delivered", "not_delivered", "opted_out", "expired", "billed"}
    ),
    caps=(
        Cap(("scheduled",), "reminder_population"),
        Cap(("delivered", "not_delivered", "expired"), "reminder_population"),
        Cap(("opted_out",), "ever_listed"),
    ),
    # Meta bills delivered messages: billed counts a part of delivered, usually all of it.
    within={"billed": "delivered"},
)
_DELIVERY_MEASURES = {
    "scheduled": (tally.SCHEDULED,),
    "delivered": (tally.DELIVERED,),
    "not_delivered": (
        tally.FAILED_NOT_ON_WHATSAPP,
        tally.FAILED_REFUSED,
        tally.FAILED_OTHER,
        tally.UNKNOWN,
        tally.SKIPPED,
    ),
    "reminder_population": (tally.LISTED,),
    "expired": (tally.EXPIRED,),
    "billed": (tally.BILLED_UTILITY, tally.BILLED_MARKETING, tally.BILLED_OTHER),
}
_ENROLMENT_EVENTS = {
    "joined": ("enrolled",),
    "left": ("withdrawn", "erased"),
    "stopped": ("opted_out",),
}
_COL = {name: i for i, name in enumerate(FIELDS)}

Series = np.ndarray  # (days, FIELDS): cumulative true counts at the end of each day


@dataclass
class Scope:
    """Which campaign, which OPDs, and up to which closed day (None: none yet) a viewer sees."""

    campaign: Campaign
    opds: list[OpdRef]  # by code
    opd_filter: list[int] | None  # None: every OPD (all-OPD campaign seen by a reader of all)
    coordinator_opd: OpdRef | None
    as_of: date | None

    @property
    def days(self) -> list[date]:
        """Every day of the period, so series and charts have no gaps."""
        if self.as_of is None:
            return []
        first = self.campaign.first_day
        return [first + timedelta(days=i) for i in range((self.as_of - first).days + 1)]


def read_series(session: Session, scope: Scope) -> dict[int, Series]:
    """Per OPD id, the true figures and populations at the end of each day of the period."""
    days = scope.days
    n_days = len(days)
    changes = np.zeros((len(scope.opds), n_days, len(FIELDS)), dtype=np.int64)
    row_of = {opd.id: i for i, opd in enumerate(scope.opds)}
    if not days:
        return {opd.id: changes[i] for i, opd in enumerate(scope.opds)}
    campaign = scope.campaign
    assert campaign.id is not None
    assert scope.as_of is not None
    first = campaign.first_day
    listed_before = np.zeros(len(scope.opds), dtype=np.int64)

    delivery = queries.delivery_series(
        session,
        campaign_id=campaign.id,
        opd_filter=scope.opd_filter,
        measures=_DELIVERY_MEASURES,
        first=first,
        as_of=scope.as_of,
    )
    columns = [_COL[m] for m in _DELIVERY_MEASURES]
    i, t, sums = _indexed(delivery, row_of, n_days, width=len(columns))
    changes[i, t, :] += _spread(sums, columns)  # one query row per (OPD, day): no repeats

    enrolment = queries.enrolment_series(
        session,
        opd_filter=scope.opd_filter,
        events=_ENROLMENT_EVENTS,
        first=first,
        as_of=scope.as_of,
    )
    i, t, sums = _indexed(enrolment, row_of, n_days, width=len(_ENROLMENT_EVENTS), keep_before=True)
    joined, left, stopped = sums[:, 0], sums[:, 1], sums[:, 2]
    before = t < 0  # before the campaign: only the list's size matters (one row per OPD)
    listed_before[i[before]] += (joined - left)[before]
    i, t = i[~before], t[~before]
    changes[i, t, _COL["enrolled"]] += (joined - left)[~before]
    changes[i, t, _COL["ever_listed"]] += joined[~before]
    changes[i, t, _COL["opted_out"]] += stopped[~before]

    start = np.maximum(listed_before, 0)
    changes[:, 0, _COL["enrolled"]] += start
    changes[:, 0, _COL["ever_listed"]] += start
    cumulative = np.cumsum(changes, axis=1)
    cumulative[:, :, _COL["enrolled"]] = np.maximum(cumulative[:, :, _COL["enrolled"]], 0)
    return {opd.id: cumulative[i] for i, opd in enumerate(scope.opds)}


def _indexed(
    rows: Sequence[Any],
    row_of: dict[int, int],
    n_days: int,
    *,
    width: int,
    keep_before: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(OPD row, day offset, sums) of query rows for OPDs and days in scope (one row each)."""
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros((0, width), dtype=np.int64)
    # Column-wise: transposing the result rows is far cheaper than reading them one by one.
    columns = list(zip(*rows, strict=True))
    opd_ids = np.array(columns[0], dtype=np.int64)
    lookup = np.full(max(int(opd_ids.max()), max(row_of, default=0)) + 1, -1, dtype=np.int64)
    lookup[list(row_of)] = list(row_of.values())
    opd_rows = lookup[opd_ids]
    offsets = np.array(columns[1], dtype=np.int64)
    sums = np.array(columns[2:], dtype=np.int64).T.reshape(len(rows), width)
    keep = (opd_rows >= 0) & (offsets < n_days) & ((offsets >= 0) | keep_before)
    return opd_rows[keep], offsets[keep], sums[keep]


def _spread(sums: np.ndarray, columns: list[int]) -> np.ndarray:
    """Sums laid out in the columns of a series (one (OPD, day) pair per row)."""
    out = np.zeros((sums.shape[0], len(FIELDS)), dtype=np.int64)
    out[:, columns] = sums
    return out
