"""Who may get a reminder in a round: the per-person budget, in SQL.

Invariant 9 (per-person budget) is enforced here, in one INSERT … SELECT per round: a person gets a
delivery only while under `max_reminders` counted deliveries of the campaign and with no counted
delivery sent (or planned: a round spread under the messaging limit sends over several days) less
than `min_gap_days` before, or any time after, this round's send_at. Rounds of one campaign are
created one at a time (`lock_campaign`), so two racing rounds cannot both see a person as
eligible.

A person is a blind index, not a row: several OPDs may list the same number (refusing it would
tell a coordinator that another OPD lists it). The campaign reminds each person through one
listing only, the earliest in its scope that holds the number, and counts the budget over
every listing of that number (invariants 8 and 9).
"""

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, case, exists, func, literal, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.selectable import Subquery
from sqlmodel import Session, col

from app.campaigns.models import Campaign, CampaignOpd
from app.db import UTCDateTime
from app.enrolment.models import Enrolment, EnrolmentStatus, Suppression
from app.opds.models import Opd
from app.outbox.models import COUNTED_STATES, Delivery

_COUNTED = [s.value for s in COUNTED_STATES]


def opd_scope(campaign_id: int, all_opds: bool) -> ColumnElement[bool]:
    """A condition on Opd.id: the OPDs this campaign covers."""
    if all_opds:
        return literal(True)
    return col(Opd.id).in_(
        select(col(CampaignOpd.opd_id)).where(col(CampaignOpd.campaign_id) == campaign_id)
    )


def _history(campaign_id: int) -> Subquery:
    """Per person (blind index): counted deliveries of this campaign, latest round send time."""
    listing = aliased(Enrolment, name="listing")
    return (
        select(
            col(listing.phone_index).label("phone_index"),
            func.count().label("sent"),
            # A round spread under the messaging limit sends later than its send_at.
            func.max(col(Delivery.next_attempt_at)).label("last_at"),
        )
        .select_from(Delivery)
        .join(listing, col(listing.id) == col(Delivery.enrolment_id))
        .where(
            col(Delivery.campaign_id) == campaign_id,
            col(Delivery.state).in_(_COUNTED),
            col(listing.phone_index).is_not(None),
        )
        .group_by(col(listing.phone_index))
        .subquery("history")
    )


def _not_first_listing(campaign: Campaign) -> ColumnElement[bool]:
    """True when an earlier listing in the campaign's scope holds the same number."""
    assert campaign.id is not None
    earlier = aliased(Enrolment, name="earlier_listing")
    scope = aliased(Opd, name="earlier_opd")
    in_scope = (
        literal(True)
        if campaign.all_opds
        else col(scope.id).in_(
            select(col(CampaignOpd.opd_id)).where(col(CampaignOpd.campaign_id) == campaign.id)
        )
    )
    # An anti-join on the phone_index index: duplicates across OPDs are rare, so this costs one
    # index probe per person where grouping every listing by number sorted them all.
    return exists().where(
        col(earlier.phone_index) == col(Enrolment.phone_index),
        col(earlier.id) < col(Enrolment.id),
        col(earlier.status) == EnrolmentStatus.active.value,
        col(earlier.phone_ciphertext).is_not(None),
        col(scope.id) == col(earlier.opd_id),
        in_scope,
    )


def _gap_ok(history: Subquery, campaign: Campaign, send_at: datetime) -> ColumnElement[bool]:
    cutoff = literal(send_at - timedelta(days=campaign.min_gap_days), UTCDateTime())
    return or_(history.c.phone_index.is_(None), history.c.last_at <= cutoff)


def _eligible(campaign: Campaign, timezone: str, history: Subquery) -> Select[int | None, int]:
    """Everyone in scope and zone who may get a reminder, before the gap rule."""
    assert campaign.id is not None
    return (
        select(col(Enrolment.id), col(Enrolment.opd_id))
        .select_from(Enrolment)
        .join(Opd, col(Opd.id) == col(Enrolment.opd_id))
        .outerjoin(history, history.c.phone_index == col(Enrolment.phone_index))
        .where(
            # Each person through one listing only: the earliest in scope that holds the number.
            col(Enrolment.status) == EnrolmentStatus.active.value,
            col(Enrolment.phone_index).is_not(None),
            col(Enrolment.phone_ciphertext).is_not(None),
            opd_scope(campaign.id, campaign.all_opds),
            ~_not_first_listing(campaign),
            col(Enrolment.unreachable_at).is_(None),
            col(Opd.timezone) == timezone,
            ~exists().where(col(Suppression.phone_index) == col(Enrolment.phone_index)),
            or_(history.c.phone_index.is_(None), history.c.sent < campaign.max_reminders),
        )
    )


def people_for_round(
    campaign: Campaign, *, timezone: str, send_at: datetime
) -> Select[int | None, int]:
    """Enrolments (rows of Enrolment) a round of the campaign sent at `send_at` may remind."""
    assert campaign.id is not None
    history = _history(campaign.id)
    return _eligible(campaign, timezone, history).where(_gap_ok(history, campaign, send_at))


def reachable_counts(
    session: Session, *, campaign: Campaign, timezone: str, send_times: Sequence[datetime]
) -> list[int]:
    """How many people a round at each send time would reach now; one aggregate query."""
    if not send_times:
        return []
    assert campaign.id is not None
    history = _history(campaign.id)
    sums = [
        func.coalesce(func.sum(case((_gap_ok(history, campaign, at), 1), else_=0)), 0)
        for at in send_times
    ]
    row = session.execute(_eligible(campaign, timezone, history).with_only_columns(*sums)).one()
    return [int(v) for v in row]


def reminders_left(
    session: Session, *, campaign: Campaign, timezone: str, rounds_left: int
) -> dict[int, int]:
    """Per OPD in this zone: reminders its reachable people may still get, each person's
    remaining budget (max_reminders minus counted deliveries) capped at `rounds_left`."""
    assert campaign.id is not None
    if rounds_left <= 0:
        return {}
    history = _history(campaign.id)
    budget = campaign.max_reminders - func.coalesce(history.c.sent, 0)
    each = case((budget > rounds_left, rounds_left), else_=budget)
    rows = session.execute(
        _eligible(campaign, timezone, history)
        .with_only_columns(col(Enrolment.opd_id), func.sum(each))
        .group_by(col(Enrolment.opd_id))
    ).all()
    return {int(opd_id): int(n or 0) for opd_id, n in rows}


def listed_counts(session: Session, *, campaign: Campaign, timezone: str) -> dict[int, int]:
    """Per OPD of the campaign in this zone: how many people its list holds right now.

    Everyone listed counts, suppressed and de-duplicated people included: the statistics need
    the population a coordinator knows, not who could be reminded.
    """
    assert campaign.id is not None
    rows = session.execute(
        select(col(Enrolment.opd_id), func.count())
        .join(Opd, col(Opd.id) == col(Enrolment.opd_id))
        .where(
            col(Enrolment.status) == EnrolmentStatus.active.value,
            col(Opd.timezone) == timezone,
            opd_scope(campaign.id, campaign.all_opds),
        )
        .group_by(col(Enrolment.opd_id))
    ).all()
    return {int(opd_id): int(n) for opd_id, n in rows}


def lock_campaign(session: Session, campaign_id: int) -> None:
    """Serialise round creation per campaign, so each budget check sees the other rounds."""
    # PostgreSQL only needs it (SQLite's BEGIN IMMEDIATE already serialises). FOR NO KEY UPDATE
    # leaves foreign-key checks of other writers (tallies, deliveries) unblocked.
    stmt = select(col(Campaign.id)).where(col(Campaign.id) == campaign_id)
    session.execute(stmt.with_for_update(key_share=True)).all()
