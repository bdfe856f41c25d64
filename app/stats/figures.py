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
- opted_out: STOPs by people listed in the OPD since the first day.
Two populations are read but never published; the rounding caps use them (`PUBLISHED_RULE`):
- reminder_population: for every round so far, the people on the list when it was created;
- ever_listed: the list on the day before the campaign plus everyone listed since.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from sqlmodel import Session

from app.campaigns.models import Campaign
from app.outbox import tally
from app.stats import queries
from app.stats.queries import OpdRef
from app.stats.rounding import Cap, SeriesRule

MEASURES = ("enrolled", "scheduled", "delivered", "not_delivered", "opted_out")
POPULATIONS = ("reminder_population", "ever_listed")
PUBLISHED_RULE = SeriesRule(
    monotone=frozenset({"scheduled", "delivered", "not_delivered", "opted_out"}),
    caps=(
        Cap(("scheduled",), "reminder_population"),
        Cap(("delivered", "not_delivered"), "reminder_population"),
        Cap(("opted_out",), "ever_listed"),
    ),
)
_OUTCOME_MEASURE = {
    tally.SCHEDULED: "scheduled",
    tally.DELIVERED: "delivered",
    tally.FAILED_NOT_ON_WHATSAPP: "not_delivered",
    tally.FAILED_REFUSED: "not_delivered",
    tally.FAILED_OTHER: "not_delivered",
    tally.UNKNOWN: "not_delivered",
    tally.SKIPPED: "not_delivered",
    tally.LISTED: "reminder_population",
}
_LIST_CHANGE = {"enrolled": 1, "withdrawn": -1, "erased": -1}

Day = dict[str, int]


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


def read_series(session: Session, scope: Scope) -> dict[int, list[Day]]:
    """Per OPD id, the true figures and populations at the end of each day of the period."""
    days = scope.days
    if not days:
        return {opd.id: [] for opd in scope.opds}
    campaign = scope.campaign
    assert campaign.id is not None
    assert scope.as_of is not None
    first = campaign.first_day
    position = {d: i for i, d in enumerate(days)}
    changes = {
        opd.id: [dict.fromkeys((*MEASURES, *POPULATIONS), 0) for _ in days] for opd in scope.opds
    }
    listed_before: dict[int, int] = dict.fromkeys(changes, 0)

    for opd_id, day, outcome, n, _ in queries.delivery_series(
        session,
        campaign_id=campaign.id,
        opd_filter=scope.opd_filter,
        outcomes=list(_OUTCOME_MEASURE),
        as_of=scope.as_of,
    ):
        i = position.get(_as_date(day))
        if opd_id in changes and i is not None:
            changes[opd_id][i][_OUTCOME_MEASURE[outcome]] += int(n)
    for opd_id, day, event, n in queries.enrolment_series(
        session, opd_filter=scope.opd_filter, first=first, as_of=scope.as_of
    ):
        if opd_id not in changes:
            continue
        i = position.get(_as_date(day))
        if i is None:  # before the campaign: only the list's size matters
            listed_before[opd_id] += _LIST_CHANGE.get(event, 0) * int(n)
            continue
        row = changes[opd_id][i]
        row["enrolled"] += _LIST_CHANGE.get(event, 0) * int(n)
        if event == "enrolled":
            row["ever_listed"] += int(n)
        elif event == "opted_out":
            row["opted_out"] += int(n)

    series: dict[int, list[Day]] = {}
    for opd_id, rows in changes.items():
        running = dict.fromkeys((*MEASURES, *POPULATIONS), 0)
        running["enrolled"] = running["ever_listed"] = max(0, listed_before[opd_id])
        cumulative: list[Day] = []
        for row in rows:
            for key, n in row.items():
                running[key] += n
            cumulative.append({**running, "enrolled": max(0, running["enrolled"])})
        series[opd_id] = cumulative
    return series


def _as_date(value: object) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))  # SQLite may hand back text
