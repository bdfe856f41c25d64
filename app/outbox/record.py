"""Recording send results: what each answer from WhatsApp makes of a claimed delivery.

Whatever happens after a request may have left ends in a final state (invariant 8); a retry
waits with backoff and, once out of attempts, fails for good.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from app.messaging.results import SendOutcome, SendResult, backoff_seconds
from app.outbox import lifecycle, metrics, queries, tally
from app.outbox.claim import BatchSummary, Job
from app.outbox.halts import halt_reason, pause_campaign
from app.outbox.models import DeliveryState

_RNG = random.Random()
MAX_ERROR_CLASS = 32


@dataclass(frozen=True)
class Outcome:
    """What happened to one claimed delivery; result None means it was never sent."""

    job: Job
    result: SendResult | None


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
    owned = queries.owned_by(
        session, ids=[o.job.delivery_id for o in outcomes], worker_id=worker_id
    )
    rows: list[dict[str, object]] = []
    tallies: Counter[lifecycle.TallyKey] = Counter()
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
    lifecycle.record_sends(session, rows=rows)
    if unreachable:
        queries.mark_enrolments_unreachable(session, enrolment_ids=unreachable, now=now)
    lifecycle.count_moves(session, tallies, at=now)
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
