"""The outbox's database side: claim due deliveries, record outcomes, recover dead leases.

Invariant 8 lives here. A delivery is sent only by the worker that moved it to `sending`;
whatever happens after the request may have left ends in a final state (`accepted`,
`failed`, `unknown`), never back in `queued`. Only sends that certainly did not happen
(refused before sending, throttled, halted, or never attempted) return to `queued`.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from cryptography.fernet import InvalidToken
from sqlalchemy import Integer, bindparam, case, exists, func, update
from sqlmodel import Session, col, select

from app.auth.principal import cli_principal
from app.campaigns import service as campaign_service
from app.campaigns.models import Campaign, CampaignState, Round
from app.campaigns.rounds import policy_for
from app.campaigns.timing import SendPolicy, closed_reason, next_allowed
from app.config import Settings
from app.db import is_postgresql, one_of
from app.enrolment.models import Enrolment, EnrolmentStatus, Suppression
from app.errors import AppError
from app.messaging.results import SendOutcome, SendResult, backoff_seconds
from app.outbox import metrics, tally
from app.outbox.models import Delivery, DeliveryState
from app.security import PhoneVault
from app.templates import service as template_service
from app.templates.models import MessageTemplate, TemplateStatus

logger = logging.getLogger(__name__)

S = TypeVar("S")
_RNG = random.Random()

WORKER = cli_principal("outbox-worker")
# While a batch is being sent, its workers re-read every this many seconds who may still be
# messaged, so a STOP (or HAPUS, or a withdrawal) committed after the claim holds within it.
OPT_OUT_RECHECK_SECONDS = 0.1
# A STOP's webhook answers only after this long: by then every sending worker has re-read,
# so after the 200 nothing more leaves for that number (a request already on the wire aside).
OPT_OUT_SETTLE_SECONDS = 3 * OPT_OUT_RECHECK_SECONDS
MAX_ERROR_CLASS = 32
# Campaign states whose queued deliveries a worker picks up: active ones are sent, finished
# or purged ones are skipped. Paused and draft campaigns keep theirs queued, untouched.
_CLAIMABLE = (CampaignState.active, CampaignState.finished, CampaignState.purged)
# Why WhatsApp refused the sender, as the dashboard shows it (Bahasa Indonesia).
HALT_TEXT = {
    "access_token_invalid": "Token WhatsApp tidak valid atau kedaluwarsa",
    "auth_exception": "Autentikasi ke WhatsApp gagal",
    "permission_denied": "Token WhatsApp tidak punya izin yang diperlukan",
    "access_denied": "Akses ke WhatsApp ditolak",
    "unauthorized": "WhatsApp menolak kredensial layanan",
    "waba_policy_restricted": "Akun WhatsApp Business dibatasi karena pelanggaran kebijakan",
    "account_locked": "Akun WhatsApp Business terkunci",
    "payment_issue": "Ada masalah metode pembayaran akun WhatsApp Business",
    "spam_rate_limited": "WhatsApp membatasi pengiriman karena pesan diblokir/dilaporkan",
    "template_categorization_limit": "WhatsApp membatasi pesan karena pelanggaran kategori templat",
    "template_paused": "Templat dijeda oleh WhatsApp karena kualitasnya rendah",
    "template_disabled": "Templat dinonaktifkan oleh WhatsApp",
    "graph_object_unavailable": "ID nomor pengirim atau WABA salah atau tidak diizinkan",
    "local_configuration_error": "Konfigurasi koneksi ke WhatsApp salah",
    "unexpected_response": "Jawaban tak terduga dari WhatsApp",
    "template_parameters": "Parameter templat kampanye tidak lengkap atau tidak valid",
    "template_unusable": "Templat kampanye tidak dapat dikirim",
}
_HALT_SUFFIX = "; pengiriman dihentikan sampai admin melanjutkan kampanye"


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


def halt_reason(result: SendResult) -> str:
    """The paused_reason for a campaign stopped by this result, e.g. '… (190)'."""
    text = HALT_TEXT.get(result.reason, "WhatsApp menolak pengirim")
    if result.error_code is not None:
        where = str(result.error_code)
    elif result.http_status is not None:
        where = f"HTTP {result.http_status}"
    else:
        where = result.reason
    return f"{text} ({where}){_HALT_SUFFIX}"


def _tally(session: Session, counts: Counter[tuple[int, int, str, str]], *, at: datetime) -> None:
    for (campaign_id, opd_id, timezone, outcome), amount in sorted(counts.items()):
        tally.count_outcome(
            session,
            campaign_id=campaign_id,
            opd_id=opd_id,
            timezone=timezone,
            outcome=outcome,
            at=at,
            amount=amount,
        )


def _locking(session: Session, stmt: S, *, skip_locked: bool = True) -> S:
    # PostgreSQL: concurrent workers skip each other's rows. SQLite: BEGIN IMMEDIATE (app.db)
    # already serialises writers, so the plain SELECT is safe there.
    if is_postgresql(session):
        locked = cast(Any, stmt).with_for_update(of=Delivery, skip_locked=skip_locked)
        return cast(S, locked)
    return stmt


def pause_campaign(session: Session, *, campaign_id: int, reason: str, now: datetime) -> bool:
    """Pause an active campaign with a reason (audited); False if it was not active."""
    try:
        campaign_service.pause(
            session, actor=WORKER, campaign_id=campaign_id, reason=reason[:300], now=now
        )
    except AppError:
        return False
    metrics.CAMPAIGN_HALTS.inc()
    logger.warning("outbox.campaign_paused campaign=%s reason=%s", campaign_id, reason)
    return True


# -- lease recovery ------------------------------------------------------------------------


def recover_expired_leases(session: Session, *, now: datetime) -> int:
    """Deliveries left in `sending` past their lease become `unknown` (never re-sent)."""
    stmt = (
        select(Delivery.id, Delivery.campaign_id, Delivery.opd_id, Round.timezone)
        .join(Round, col(Round.id) == col(Delivery.round_id))
        .where(
            col(Delivery.state) == DeliveryState.sending,
            col(Delivery.lease_expires_at) < now,
        )
    )
    rows = session.exec(_locking(session, stmt)).all()
    if not rows:
        return 0
    session.execute(
        update(Delivery)
        .where(col(Delivery.id).in_([r[0] for r in rows]))
        .values(
            state=DeliveryState.unknown,
            error_class="lease_expired",
            lease_expires_at=None,
            claimed_by=None,
            updated_at=now,
        )
    )
    _tally(session, Counter((c, o, tz, tally.UNKNOWN) for _, c, o, tz in rows), at=now)
    metrics.LEASES_EXPIRED.inc(len(rows))
    logger.warning("outbox.leases_expired count=%d (now unknown, not re-sent)", len(rows))
    return len(rows)


# -- claiming ------------------------------------------------------------------------------


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
    campaigns = session.exec(select(Campaign).where(col(Campaign.id).in_(set(campaign_ids)))).all()
    for campaign in campaigns:
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


def still_sendable(session: Session, *, enrolment_ids: Iterable[int]) -> set[int]:
    """Which of these enrolments are still active and off the suppression list."""
    ids = sorted(set(enrolment_ids))
    if not ids:
        return set()
    suppressed = exists().where(col(Suppression.phone_index) == col(Enrolment.phone_index))
    rows = session.exec(
        select(Enrolment.id).where(
            one_of(session, Enrolment.id, ids, item_type=Integer()),
            col(Enrolment.status) == EnrolmentStatus.active,
            ~suppressed,
        )
    )
    return {i for i in rows.all() if i is not None}


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
    """Move up to `limit` due deliveries to `sending` under this worker's lease.

    In the same transaction each one is checked again: campaign still active, person still
    enrolled and not on the suppression list (a STOP committed before this claim wins), and
    the send window open in the OPD's zone (else deferred to its next opening, or skipped
    when none is left). The template must still be usable (APPROVED unless `sandbox`), or
    the campaign is paused with the reason.
    """
    summary = BatchSummary()
    due = (
        select(Delivery.id)
        .join(Campaign, col(Campaign.id) == col(Delivery.campaign_id))
        .where(
            col(Delivery.state) == DeliveryState.queued,
            col(Delivery.next_attempt_at) <= now,
            col(Campaign.state).in_([s.value for s in _CLAIMABLE]),
        )
        .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
        .limit(limit)
    )
    ids = list(session.exec(_locking(session, due)).all())
    if not ids:
        return [], summary
    suppressed = exists().where(col(Suppression.phone_index) == col(Enrolment.phone_index))
    rows = session.exec(
        select(  # type: ignore[call-overload]
            Delivery.id,
            Delivery.public_id,
            Delivery.campaign_id,
            Delivery.opd_id,
            Delivery.enrolment_id,
            Delivery.attempts,
            Round.timezone,
            Enrolment.status,
            Enrolment.phone_ciphertext,
            Enrolment.unreachable_at,
            suppressed.label("suppressed"),
        )
        .join(Round, col(Round.id) == col(Delivery.round_id))
        .outerjoin(Enrolment, col(Enrolment.id) == col(Delivery.enrolment_id))
        .where(col(Delivery.id).in_(ids))
    ).all()
    # Send in due order (oldest first), which the database does not keep for this query.
    position = {d_id: n for n, d_id in enumerate(ids)}
    rows = sorted(rows, key=lambda row: position[row[0]])
    plans = _plans(session, {r[2] for r in rows}, settings, sandbox=sandbox)

    jobs: list[Job] = []
    skipped: dict[str, list[int]] = defaultdict(list)
    deferred: dict[datetime, list[int]] = defaultdict(list)
    failed: list[int] = []
    tallies: Counter[tuple[int, int, str, str]] = Counter()
    halted: dict[int, str] = {}
    # Per (campaign, zone): whether the window is closed now, and its next opening if any.
    windows: dict[tuple[int, str], tuple[bool, datetime | None]] = {}
    for row in rows:
        d_id, public_id, c_id, opd_id, e_id, attempts, tz, status, cipher, unreachable, supp = row
        plan = plans[c_id]
        skip = None
        if plan.campaign.state != CampaignState.active:
            skip = "campaign_" + plan.campaign.state
        elif status != EnrolmentStatus.active or cipher is None or e_id is None:
            skip = "not_enrolled"
        elif supp:
            skip = "suppressed"
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

    if jobs:
        session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_([j.delivery_id for j in jobs]))
            .values(
                state=DeliveryState.sending,
                claimed_by=worker_id,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                updated_at=now,
            )
        )
    for reason, batch in skipped.items():
        session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_(batch))
            .values(state=DeliveryState.skipped, error_class=reason, updated_at=now)
        )
    for when, batch in deferred.items():
        session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_(batch))
            .values(next_attempt_at=when, updated_at=now)
        )
    if failed:
        session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_(failed))
            .values(state=DeliveryState.failed, error_class="undecryptable", updated_at=now)
        )
    _tally(session, tallies, at=now)
    for campaign_id, reason in halted.items():
        if pause_campaign(session, campaign_id=campaign_id, reason=reason, now=now):
            summary.paused_campaigns.append(campaign_id)

    summary.counts.update(
        sending=len(jobs),
        skipped=sum(map(len, skipped.values())),
        deferred=sum(map(len, deferred.values())),
        failed=len(failed),
    )
    metrics.SKIPPED.inc(summary.counts["skipped"])
    metrics.DEFERRED.inc(summary.counts["deferred"])
    return jobs, summary


# -- recording -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What happened to one claimed delivery; result None means it was never sent."""

    job: Job
    result: SendResult | None


_RECORD = (
    update(Delivery)
    .where(col(Delivery.id) == bindparam("d_id"))
    .values(
        state=bindparam("d_state"),
        attempts=bindparam("d_attempts"),
        next_attempt_at=bindparam("d_next"),
        wamid=bindparam("d_wamid"),
        error_code=bindparam("d_code"),
        error_class=bindparam("d_class"),
        lease_expires_at=None,
        claimed_by=None,
        updated_at=bindparam("d_now"),
    )
)


def record_batch(
    session: Session,
    *,
    worker_id: str,
    outcomes: Sequence[Outcome],
    now: datetime,
    max_attempts: int,
    rng: random.Random | None = None,
) -> BatchSummary:
    """Write every outcome of a batch, its tallies and any campaign pause in one transaction.

    Rows no longer in `sending` under this worker's name are left as they are: a status
    webhook already settled them (it counts the acceptance then), or their lease expired
    and another worker recorded them as unknown.
    """
    summary = BatchSummary()
    if not outcomes:
        return summary
    owned_stmt = (
        select(Delivery.id, Delivery.next_attempt_at)
        .where(
            col(Delivery.id).in_([o.job.delivery_id for o in outcomes]),
            col(Delivery.state) == DeliveryState.sending,
            col(Delivery.claimed_by) == worker_id,
        )
        .order_by(col(Delivery.id))
    )
    # Wait for (never skip) a row the webhook is updating: it may be settling it for us.
    owned = dict(session.exec(_locking(session, owned_stmt, skip_locked=False)).all())
    rows: list[dict[str, object]] = []
    tallies: Counter[tuple[int, int, str, str]] = Counter()
    unreachable: list[int] = []
    halts: dict[int, str] = {}
    for outcome in outcomes:
        job, result = outcome.job, outcome.result
        if job.delivery_id not in owned:
            summary.counts["settled_elsewhere"] += 1
            continue
        row: dict[str, object] = {
            "d_id": job.delivery_id,
            "d_attempts": job.attempts,
            "d_next": owned[job.delivery_id],
            "d_wamid": None,
            "d_code": None,
            "d_class": None,
            "d_now": now,
        }
        key = (job.campaign_id, job.opd_id, job.timezone)
        state, counted = _apply(row, job, result, now=now, max_attempts=max_attempts, rng=rng)
        row["d_state"] = state
        rows.append(row)
        summary.counts["not_sent" if result is None else result.outcome.value] += 1
        for outcome_name in counted:
            tallies[(*key, outcome_name)] += 1
        if result is not None:
            metrics.SEND_ATTEMPTS.labels(result.outcome.value).inc()
            if result.outcome is SendOutcome.HALT:
                halts.setdefault(job.campaign_id, halt_reason(result))
            elif result.not_on_whatsapp:
                unreachable.append(job.enrolment_id)
        if state == DeliveryState.failed and result and result.outcome is SendOutcome.RETRY:
            summary.counts["retries_exhausted"] += 1
            metrics.RETRIES_EXHAUSTED.inc()
    if rows:
        # Core executemany: one UPDATE per row in one round trip, no ORM bookkeeping.
        session.connection().execute(_RECORD, rows)
    if unreachable:
        session.execute(
            update(Enrolment)
            .where(col(Enrolment.id).in_(unreachable), col(Enrolment.unreachable_at).is_(None))
            .values(unreachable_at=now)
        )
    _tally(session, tallies, at=now)
    for campaign_id, reason in halts.items():
        if pause_campaign(session, campaign_id=campaign_id, reason=reason, now=now):
            summary.paused_campaigns.append(campaign_id)
    return summary


def _apply(
    row: dict[str, object],
    job: Job,
    result: SendResult | None,
    *,
    now: datetime,
    max_attempts: int,
    rng: random.Random | None,
) -> tuple[str, list[str]]:
    """Fill `row` for one outcome; return the new state and the tally outcomes to count."""
    if result is None:
        return DeliveryState.queued, []  # never sent: due again at once
    if result.outcome is not SendOutcome.ACCEPTED:
        row["d_code"] = result.error_code
        row["d_class"] = result.reason[:MAX_ERROR_CLASS]
    if result.outcome is SendOutcome.ACCEPTED:
        row["d_wamid"] = result.wamid
        return DeliveryState.accepted, [tally.ACCEPTED]
    if result.outcome is SendOutcome.FAILED:
        return DeliveryState.failed, [result.failure_class.value]
    if result.outcome is SendOutcome.UNKNOWN:
        return DeliveryState.unknown, [tally.UNKNOWN]
    if result.outcome is SendOutcome.HALT:
        return DeliveryState.queued, []  # refused before sending; waits for the resume
    attempts = job.attempts + 1
    row["d_attempts"] = attempts
    if attempts >= max_attempts:
        return DeliveryState.failed, [result.failure_class.value]
    delay = backoff_seconds(
        job.attempts,
        minimum=result.retry_after_seconds or 0.0,
        pair_limit=result.per_recipient,
        rng=rng or _RNG,
    )
    row["d_next"] = now + timedelta(seconds=delay)
    return DeliveryState.queued, [tally.RETRIED]


def release(session: Session, *, worker_id: str, jobs: Sequence[Job], now: datetime) -> None:
    """Put claimed, never-sent deliveries back in the queue."""
    record_batch(
        session,
        worker_id=worker_id,
        outcomes=[Outcome(j, None) for j in jobs],
        now=now,
        max_attempts=1,
    )


# -- counts --------------------------------------------------------------------------------

COUNT_KEYS = (
    "queued",
    "retrying",
    "sending",
    "sent",
    "delivered",
    "failed",
    "unknown",
    "skipped",
    "total",
)


def outbox_counts(session: Session, *, campaign_id: int | None = None) -> dict[str, int]:
    """Deliveries by state, for one campaign or all.

    `queued` waits for a first attempt, `retrying` waits after a retryable error (the two
    are disjoint); `sent` is accepted + delivered, `delivered` the part WhatsApp confirmed.
    """
    retrying = case((col(Delivery.attempts) > 0, True), else_=False)
    stmt = select(Delivery.state, retrying, func.count()).group_by(col(Delivery.state), retrying)
    if campaign_id is not None:
        stmt = stmt.where(col(Delivery.campaign_id) == campaign_id)
    counts = dict.fromkeys(COUNT_KEYS, 0)
    for state, retried, n in session.exec(stmt).all():
        counts["total"] += n
        if state == DeliveryState.queued:
            counts["retrying" if retried else "queued"] += n
        elif state in (DeliveryState.accepted, DeliveryState.delivered):
            counts["sent"] += n
            if state == DeliveryState.delivered:
                counts["delivered"] += n
        elif state in counts:
            counts[state] += n
    return counts
