"""A delivery's life: every change of a `delivery` row, with the tallies that go with it.

This package is the only writer of the `delivery` table; other packages (rounds, the status
webhook, opt-out and erasure, expiry, retention) and the outbox's own use cases (claim, record)
decide what an event means and call a function here. One module per use case: `created`,
`claimed`, `recorded`, `statuses`, `expired`, `removed`; all of them check their moves against
`transitions`. `TRANSITIONS` lists every allowed move, creation
(from None) and deletion (to None) included; a move outside it is a bug and raises.

Invariant 8 holds in these moves. A claim only reserves queued deliveries for one worker (its
name and a lease on the still `queued` row); the worker moves a few to `sending` just before
their requests leave (`mark_sending`), and a delivery is sent only by the worker whose mark
moved it. So a dead worker's reservations simply lapse and are claimed again, and only what was
marked (at most the send concurrency) can become `unknown`. Whatever happens after the request
may have left ends in a final state (`accepted`, `failed`, `unknown`), never back in `queued`.
Only sends that certainly did not happen (refused before sending, throttled, halted, or never
attempted) return to `queued`. A status webhook only moves a delivery up
(`app.outbox.status_moves`), also out of `unknown`, and the tallies follow.
"""

from app.outbox.lifecycle.claimed import (
    mark_sending,
    recover_expired_leases,
    release_reservations,
    settle_claim,
)
from app.outbox.lifecycle.created import create_round_deliveries, spread_round
from app.outbox.lifecycle.expired import expire_undelivered
from app.outbox.lifecycle.recorded import record_sends
from app.outbox.lifecycle.removed import erase_for_enrolments, purge_campaign, skip_for_opt_out
from app.outbox.lifecycle.statuses import apply_statuses
from app.outbox.lifecycle.transitions import (
    TRANSITIONS,
    ForbiddenTransition,
    TallyKey,
    count_moves,
    require,
)

__all__ = [
    "TRANSITIONS",
    "ForbiddenTransition",
    "TallyKey",
    "apply_statuses",
    "count_moves",
    "create_round_deliveries",
    "erase_for_enrolments",
    "expire_undelivered",
    "mark_sending",
    "purge_campaign",
    "record_sends",
    "recover_expired_leases",
    "release_reservations",
    "require",
    "settle_claim",
    "skip_for_opt_out",
    "spread_round",
]
