"""Retention (UU PDP: delete when the purpose is met; invariant 4).

A campaign is due when it is `finished` and `retention_days` have passed since its end (its last
day, or the day it was finished if earlier). Purging a due campaign:

- deletes its per-person delivery rows (with their wamids, error codes, public ids); its rounds
  stay (a time zone and a time, nothing personal);
- deletes the enrolments that belonged to it and belong to no upcoming or running campaign:
  enrolments of OPDs in its scope, made before it ended, whose OPD is covered by no `draft`,
  `active` or `paused` campaign (listed or withdrawn alike: no id or timestamp a coordinator
  saw survives), with any delivery rows of other campaigns that still name them. A listed one
  adds to the `erased` tally, so the listed count stays right. The suppression list (blind
  indexes of STOP/HAPUS, no timestamps) is kept: a STOP must outlive the data;
- keeps every aggregate (`DeliveryTally`, `EnrolmentTally`), so statistics do not change;
- marks the campaign `purged` (purged_at) and audits it with counts only.

Independently, audit events older than `audit_retention_days` are deleted, and that too is
audited; browser sessions that no cookie can use any more (logged out, revoked, expired, idle)
are deleted too. A dry run counts the same things and changes nothing (it writes no audit event).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, or_
from sqlmodel import Session, col, select

from app.audit import service as audit_service
from app.audit.models import AuditEvent
from app.auth import sessions as user_sessions
from app.auth.principal import Principal, cli_principal
from app.campaigns.models import Campaign, CampaignOpd, CampaignState
from app.enrolment import erasure
from app.enrolment import service as enrolment_service
from app.enrolment.models import Enrolment, EnrolmentStatus
from app.opds.models import Opd
from app.outbox import lifecycle as delivery_lifecycle
from app.outbox import service as outbox_service
from app.stats.service import campaign_end

DEFAULT_AUDIT_RETENTION_DAYS = 365
UPCOMING_OR_RUNNING = (CampaignState.draft, CampaignState.active, CampaignState.paused)
RETENTION_ACTOR = cli_principal("retention")


@dataclass
class CampaignPurge:
    campaign_id: int
    name: str
    ended: date
    due_since: date
    deliveries: int
    enrolments_erased: int


@dataclass
class PurgeReport:
    dry_run: bool
    campaigns: list[CampaignPurge] = field(default_factory=list)
    audit_events: int = 0
    sessions: int = 0

    @property
    def deliveries(self) -> int:
        return sum(c.deliveries for c in self.campaigns)

    @property
    def enrolments_erased(self) -> int:
        return sum(c.enrolments_erased for c in self.campaigns)

    def summary(self) -> str:
        """One line for logs and the CLI (counts only)."""
        verb = "would purge" if self.dry_run else "purged"
        ids = ",".join(str(c.campaign_id) for c in self.campaigns) or "-"
        return (
            f"{verb} campaigns={len(self.campaigns)} ids={ids} deliveries={self.deliveries} "
            f"enrolments_erased={self.enrolments_erased} audit_events={self.audit_events} "
            f"sessions={self.sessions}"
        )


def due_campaigns(session: Session, *, now: datetime) -> list[Campaign]:
    """Finished campaigns whose retention period after their end has passed."""
    today = now.astimezone(UTC).date()
    finished = session.exec(
        select(Campaign)
        .where(col(Campaign.state) == CampaignState.finished)
        .order_by(col(Campaign.id))
    ).all()
    return [c for c in finished if today > campaign_end(c) + timedelta(days=c.retention_days)]


def purge_due(
    session: Session,
    *,
    now: datetime,
    dry_run: bool,
    audit_retention_days: int = DEFAULT_AUDIT_RETENTION_DAYS,
    actor: Principal = RETENTION_ACTOR,
) -> PurgeReport:
    """Purge every due campaign and the audit events past their retention (see module doc)."""
    report = PurgeReport(dry_run=dry_run)
    report.audit_events = _purge_audit(
        session, cutoff=now - timedelta(days=audit_retention_days), dry_run=dry_run
    )
    if report.audit_events and not dry_run:
        audit_service.record(
            session,
            actor=actor,
            action="audit.purge",
            object_type="audit_event",
            detail={"deleted": report.audit_events, "retention_days": audit_retention_days},
        )
    report.sessions = user_sessions.purge_ended(session, now=now, dry_run=dry_run)
    for campaign in due_campaigns(session, now=now):
        report.campaigns.append(_purge_campaign(session, campaign, now=now, dry_run=dry_run))
        if not dry_run:
            purged = report.campaigns[-1]
            audit_service.record(
                session,
                actor=actor,
                action="campaign.purge",
                object_type="campaign",
                object_id=campaign.id,
                detail={
                    "deliveries": purged.deliveries,
                    "enrolments_erased": purged.enrolments_erased,
                    "retention_days": campaign.retention_days,
                },
            )
    if not dry_run:
        session.flush()
    return report


def _purge_audit(session: Session, *, cutoff: datetime, dry_run: bool) -> int:
    if dry_run:
        stmt = select(func.count()).select_from(AuditEvent).where(col(AuditEvent.at) < cutoff)
        return int(session.exec(stmt).one())
    return audit_service.purge_older_than(session, cutoff=cutoff)


def _purge_campaign(
    session: Session, campaign: Campaign, *, now: datetime, dry_run: bool
) -> CampaignPurge:
    assert campaign.id is not None
    ended = campaign_end(campaign)
    deliveries = outbox_service.delivery_count(session, campaign_id=campaign.id)
    erasable = _erasable_enrolments(session, campaign, ended)
    if dry_run:
        erased = int(
            session.exec(select(func.count()).select_from(Enrolment).where(erasable)).one()
        )
    else:
        delivery_lifecycle.purge_campaign(session, campaign_id=campaign.id)
        erased = _erase(session, erasable, now=now)
        campaign.state = CampaignState.purged
        campaign.purged_at = now
        campaign.updated_at = now
        session.add(campaign)
    return CampaignPurge(
        campaign_id=campaign.id,
        name=campaign.name,
        ended=ended,
        due_since=ended + timedelta(days=campaign.retention_days + 1),
        deliveries=deliveries,
        enrolments_erased=erased,
    )


def _erasable_enrolments(session: Session, campaign: Campaign, ended: date) -> ColumnElement[bool]:
    """Enrolments of this campaign (its OPDs, made before it ended) that no upcoming or running
    campaign covers."""
    upcoming = session.exec(
        select(Campaign.id, Campaign.all_opds).where(col(Campaign.state).in_(UPCOMING_OR_RUNNING))
    ).all()
    if any(all_opds for _, all_opds in upcoming):
        return col(Enrolment.id).is_(None)  # every OPD is still in use: nothing to erase
    kept: set[int] = set()
    if upcoming:
        kept = set(
            session.exec(
                select(CampaignOpd.opd_id).where(
                    col(CampaignOpd.campaign_id).in_([cid for cid, _ in upcoming])
                )
            ).all()
        )
    scope = select(Opd.id, Opd.timezone)
    if not campaign.all_opds:
        scope = scope.where(
            col(Opd.id).in_(
                select(CampaignOpd.opd_id).where(CampaignOpd.campaign_id == campaign.id)
            )
        )
    by_zone: dict[str, list[int]] = {}
    for opd_id, tz in session.exec(scope).all():
        if opd_id is not None and opd_id not in kept:
            by_zone.setdefault(tz, []).append(opd_id)
    if not by_zone:
        return col(Enrolment.id).is_(None)
    # "Made before it ended": before midnight after the last day, in the OPD's own zone.
    per_zone = [
        col(Enrolment.opd_id).in_(ids)
        & (
            col(Enrolment.enrolled_at)
            < datetime.combine(ended + timedelta(days=1), time(0), ZoneInfo(tz))
        )
        for tz, ids in sorted(by_zone.items())
    ]
    return or_(*per_zone)


def _erase(session: Session, erasable: ColumnElement[bool], *, now: datetime) -> int:
    rows = session.exec(select(Enrolment.id, Enrolment.opd_id, Enrolment.status).where(erasable))
    ids: list[int] = []
    listed_per_opd: Counter[int] = Counter()
    for enrolment_id, opd_id, status in rows.all():
        assert enrolment_id is not None
        ids.append(enrolment_id)
        if status == EnrolmentStatus.active:
            listed_per_opd[opd_id] += 1
    erasure.delete_enrolments(session, enrolment_ids=ids, now=now)
    for opd_id, n in sorted(listed_per_opd.items()):
        enrolment_service.tally(session, opd_id=opd_id, event="erased", at=now, amount=n)
    return len(ids)
