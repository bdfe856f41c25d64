"""A campaign's figures per OPD and per day, from the aggregate counters only (invariants 4, 5).

Sources. Delivery figures are sums of `DeliveryTally` (campaign, OPD, local day, outcome);
enrolment figures are sums of `EnrolmentTally` (OPD, day, event). Neither holds a person, and
both outlive the retention purge, so a campaign's figures are the same before and after its
per-person rows go. No query here reads `delivery` or `enrolment` (`app.stats.queries`).

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
- delivery_rate = delivered / scheduled; opt_out_rate = opted_out / (enrolled + opted_out)
  (computed where the rows are published, `app.stats.service`).

The daily view counts each outcome on the (local) day it happened, so its days add up to the
campaign totals, not to any per-day "scheduled minus outcomes".
"""

from dataclasses import dataclass
from datetime import date, timedelta

from sqlmodel import Session

from app.campaigns.models import Campaign
from app.outbox import tally
from app.stats import queries
from app.stats.queries import OpdRef
from app.stats.schemas import CAMPAIGN_COUNTS, DAILY_COUNTS

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
CAMPAIGN_KEYS = [key for key, _ in CAMPAIGN_COUNTS]
DAILY_KEYS = [key for key, _ in DAILY_COUNTS]
COL = {key: i for i, key in enumerate(CAMPAIGN_KEYS)}
_DAILY_COL = {key: i for i, key in enumerate(DAILY_KEYS)}


@dataclass
class Scope:
    """Which campaign, which OPDs as rows, and up to which day a viewer sees."""

    campaign: Campaign
    opds: list[OpdRef]  # rows, by code
    opd_filter: list[int] | None  # None: every OPD (all-OPD campaign seen by a reader of all)
    coordinator_opd: OpdRef | None
    as_of: date


@dataclass
class Figures:
    """The unprotected counts of one scope."""

    per_opd: list[list[int]]  # rows in CAMPAIGN_KEYS order
    days: list[date]
    per_day: list[list[int]]  # rows in DAILY_KEYS order
    delivery_fingerprint: tuple[int, int]  # rows and sum of the counters read


def read_figures(session: Session, scope: Scope) -> Figures:
    """The counts of a scope per OPD and per day of the period, from the counters."""
    campaign = scope.campaign
    assert campaign.id is not None
    opd_index = {opd.id: i for i, opd in enumerate(scope.opds)}
    per_opd = [[0] * len(CAMPAIGN_KEYS) for _ in scope.opds]
    by_day: dict[date, list[int]] = {}
    first, as_of = campaign.first_day, scope.as_of
    d = first
    while d <= as_of:  # every day of the period, so charts have no gaps
        by_day[d] = [0] * len(DAILY_KEYS)
        d += timedelta(days=1)

    def day_row(day: date) -> list[int]:
        return by_day.setdefault(day, [0] * len(DAILY_KEYS))

    # Outcomes the tables do not show (retried) are dropped here: a filter in SQL costs more
    # than it saves.
    fp_rows = fp_sum = 0
    delivery = queries.delivery_counts(
        session, campaign_id=campaign.id, opd_filter=scope.opd_filter
    )
    for kind, opd_id, day, outcome, n, rows in delivery:
        if kind == 0:
            fp_rows += int(rows)
            fp_sum += int(n)
        if outcome not in DELIVERY_OUTCOMES:
            continue
        if kind == 0:
            if opd_id in opd_index:
                per_opd[opd_index[opd_id]][COL[outcome]] += int(n)
        else:
            day_row(_as_date(day))[_DAILY_COL[outcome]] += int(n)

    # Enrolment counters: the net active count up to as_of, and the period's events per day.
    enrolment = queries.enrolment_counts(
        session,
        opd_filter=scope.opd_filter,
        first=first,
        as_of=as_of,
        day_events=(OPTED_OUT, UNREACHABLE),
    )
    for kind, opd_id, day, event, flag, n in enrolment:
        n = int(n)
        if kind == 0:
            if opd_id not in opd_index:
                continue
            row = per_opd[opd_index[opd_id]]
            if event in ENROL_IN:
                row[COL["enrolled"]] += n
            elif event in ENROL_OUT:
                row[COL["enrolled"]] -= n
            if flag and event in (OPTED_OUT, UNREACHABLE):
                row[COL[event]] += n
        else:
            day_row(_as_date(day))[_DAILY_COL[event]] += n

    for row in per_opd:
        row[COL["enrolled"]] = max(0, row[COL["enrolled"]])
        resolved = sum(row[COL[k]] for k in RESOLVED)
        row[COL["pending"]] = max(0, row[COL["scheduled"]] - resolved)
    days = sorted(by_day)
    return Figures(
        per_opd=per_opd,
        days=days,
        per_day=[by_day[d] for d in days],
        delivery_fingerprint=(fp_rows, fp_sum),
    )


def _as_date(value: object) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))  # SQLite hands back the text of a NULL-typed union
