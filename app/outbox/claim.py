"""Claiming due deliveries: who may still be messaged, now, and with which template.

A claim reserves queued deliveries for one worker (its name and a lease on the queued row);
the worker moves each to `sending` just before its request leaves (`start_sending`), and only
the worker whose move succeeded sends it (invariant 8, `app.outbox.lifecycle`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.fernet import InvalidToken
from sqlmodel import Session

from app.campaigns.models import Campaign, CampaignState
from app.campaigns.rounds import policy_for
from app.campaigns.timing import SendPolicy, closed_reason, next_allowed
from app.config import Settings
from app.enrolment.models import EnrolmentStatus
from app.errors import AppError
from app.outbox import lifecycle, metrics, queries, tally
from app.outbox.halts import HALT_TEXT, pause_campaign
from app.security import PhoneVault
from app.templates import service as template_service
from app.templates.models import MessageTemplate, TemplateStatus

# Campaign states whose queued deliveries a worker picks up: active ones are sent, finished
# or purged ones are skipped. Paused and draft campaigns keep theirs queued, untouched.
_CLAIMABLE = (CampaignState.active, CampaignState.finished, CampaignState.purged)


@dataclass(frozen=True)
class Job:
    """A claimed delivery, ready to send. Holds the number in memory only."""

    delivery_id: int
    public_id: str
    campaign_id: int
    opd_id: int
    enrolment_id: int
    timezone: str
    attempts: int
    template_name: str
    language: str
    parameters: tuple[str, ...]
    to: str = field(repr=False)


@dataclass
class BatchSummary:
    """What one claim or record step did, for logs and tests."""

    counts: Counter[str] = field(default_factory=Counter)
    paused_campaigns: list[int] = field(default_factory=list)


@dataclass
class _CampaignPlan:
    campaign: Campaign
    policy: SendPolicy
    template: MessageTemplate | None
    parameters: tuple[str, ...] | None
    problem: str | None = None


def _template_problem(template: MessageTemplate | None, *, sandbox: bool) -> str | None:
    # Checked again at send time: a template edited, paused or left with an unacknowledged
    # finding since the campaign started must not go out (invariant 7).
    if template is None:
        return "the template no longer exists"
    problem = template_service.usable_problem(template)
    if problem is None and not sandbox and template.status != TemplateStatus.approved:
        problem = f"template status is {template.status}; Meta sends only APPROVED templates"
    return problem


def _plans(
    session: Session, campaign_ids: Iterable[int], settings: Settings, *, sandbox: bool
) -> dict[int, _CampaignPlan]:
    plans: dict[int, _CampaignPlan] = {}
    for campaign in queries.campaigns_by_id(session, campaign_ids):
        assert campaign.id is not None
        template = session.get(MessageTemplate, campaign.template_id)
        plan = _CampaignPlan(campaign, policy_for(campaign), template, None)
        if campaign.state == CampaignState.active:
            problem = _template_problem(template, sandbox=sandbox)
            if problem is not None or template is None:
                plan.problem = f"{HALT_TEXT['template_unusable']}: {problem}"
            else:
                try:
                    plan.parameters = tuple(
                        template_service.body_parameters(
                            template, campaign=campaign, settings=settings
                        )
                    )
                except AppError as exc:
                    plan.problem = f"{HALT_TEXT['template_parameters']}: {exc.message}"
        plans[campaign.id] = plan
    return plans


def claim_batch(
    session: Session,
    *,
    worker_id: str,
    now: datetime,
    limit: int,
    lease_seconds: float,
    vault: PhoneVault,
    settings: Settings,
    sandbox: bool = False,
) -> tuple[list[Job], BatchSummary]:
    """Reserve up to `limit` due deliveries for this worker until its lease ends.

    In the same transaction each one is checked again: campaign still active, person still
    enrolled and not on the suppression list (a STOP committed before this claim wins), and
    the send window open in the OPD's zone (else deferred to its next opening, or skipped
    when none is left). The template must still be usable (APPROVED unless `sandbox`), or
    the campaign is paused with the reason.
    """
    summary = BatchSummary()
    ids = queries.due_ids(session, now=now, limit=limit, campaign_states=_CLAIMABLE)
    if not ids:
        return [], summary
    # Send in due order (oldest first), which the database does not keep for this query.
    position = {d_id: n for n, d_id in enumerate(ids)}
    rows = sorted(queries.claim_rows(session, ids), key=lambda row: position[row[0]])
    plans = _plans(session, {r[2] for r in rows}, settings, sandbox=sandbox)

    jobs: list[Job] = []
    skipped: dict[str, list[int]] = defaultdict(list)
    deferred: dict[datetime, list[int]] = defaultdict(list)
    failed: list[int] = []
    tallies: Counter[lifecycle.TallyKey] = Counter()
    halted: dict[int, str] = {}
    # Per (campaign, zone): whether the window is closed now, and its next opening if any.
    windows: dict[tuple[int, str], tuple[bool, datetime | None]] = {}
    for row in rows:
        d_id, public_id, c_id, opd_id, e_id, attempts, tz, status, cipher, unreachable, supp = row
        plan = plans[c_id]
        skip = None
        if plan.campaign.state != CampaignState.active:
            skip = "campaign_" + plan.campaign.state
        elif supp:
            skip = "suppressed"
        elif status != EnrolmentStatus.active or cipher is None or e_id is None:
            skip = "not_enrolled"
        elif unreachable is not None:
            skip = "unreachable"
        if skip is None:
            key = (c_id, tz)
            if key not in windows:
                closed = closed_reason(plan.policy, tz, now) is not None
                windows[key] = (closed, next_allowed(plan.policy, tz, now) if closed else None)
            closed, later = windows[key]
            if closed and later is None:
                skip = "window_closed"
            elif closed and later is not None:
                deferred[later].append(d_id)
                continue
        if skip is not None:
            skipped[skip].append(d_id)
            tallies[(c_id, opd_id, tz, tally.SKIPPED)] += 1
            continue
        if plan.problem is not None or plan.parameters is None or plan.template is None:
            halted[c_id] = plan.problem or HALT_TEXT["template_parameters"]
            continue  # stays queued; the campaign is paused below
        try:
            to = vault.decrypt(cipher)
        except InvalidToken:
            failed.append(d_id)
            tallies[(c_id, opd_id, tz, tally.FAILED_OTHER)] += 1
            continue
        jobs.append(
            Job(
                delivery_id=d_id,
                public_id=public_id,
                campaign_id=c_id,
                opd_id=opd_id,
                enrolment_id=e_id,
                timezone=tz,
                attempts=attempts,
                template_name=plan.template.name,
                language=plan.template.language,
                parameters=plan.parameters,
                to=to,
            )
        )

    lifecycle.settle_claim(
        session,
        worker_id=worker_id,
        now=now,
        lease_until=now + timedelta(seconds=lease_seconds),
        reserved=[j.delivery_id for j in jobs],
        skipped=skipped,
        deferred=deferred,
        undecryptable=failed,
        counts=tallies,
    )
    for campaign_id, reason in halted.items():
        if pause_campaign(session, campaign_id=campaign_id, reason=reason, now=now):
            summary.paused_campaigns.append(campaign_id)

    summary.counts.update(
        sending=len(jobs),
        skipped=sum(map(len, skipped.values())),
        deferred=sum(map(len, deferred.values())),
        failed=len(failed),
    )
    metrics.DEFERRED.inc(summary.counts["deferred"])
    return jobs, summary


def start_sending(
    session: Session,
    *,
    worker_id: str,
    delivery_ids: Iterable[int],
    now: datetime,
    lease_seconds: float,
) -> set[int]:
    """Move reserved deliveries to `sending` just before their requests leave; which moved."""
    return lifecycle.mark_sending(
        session,
        worker_id=worker_id,
        ids=sorted(set(delivery_ids)),
        now=now,
        lease_until=now + timedelta(seconds=lease_seconds),
    )
