"""Group commit for status-only webhooks: concurrent requests share one transaction.

Every status adds to the same few (campaign, OPD, day, outcome) counter rows, so requests that
each commit on their own queue up on those rows' locks, one commit (fsync) after another.
Here one writer at a time applies the statuses of every request waiting at that moment in a
single transaction and only then lets each of them answer: a 200 still means stored, a failure
still answers 5xx to every request of the group, and the counters see one update per group.
If a group fails, its requests are retried one by one so that one bad request cannot take the
others down with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from app.db import session_scope, utcnow
from app.messaging.inbound import StatusEvent
from app.security import PhoneVault
from app.webhook import metrics, statuses

logger = logging.getLogger(__name__)

MAX_EVENTS_PER_TRANSACTION = 5000
# A request needs a few event-loop passes from its last body chunk to the queue; each pass that
# adds nobody ends the wait, so an idle service writes at once.
_MAX_JOIN_PASSES = 20


@dataclass
class _Waiting:
    events: list[StatusEvent]
    future: asyncio.Future[None] = field(repr=False)


class StatusCoalescer:
    """Applies the statuses of concurrent requests, one transaction per group of requests."""

    def __init__(
        self,
        engine: Engine,
        vault: PhoneVault,
        *,
        max_events: int = MAX_EVENTS_PER_TRANSACTION,
        apply: Callable[[list[StatusEvent]], None] | None = None,
    ) -> None:
        self._engine = engine
        self._vault = vault
        self._max_events = max_events
        self._apply = apply or self._apply_in_transaction
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()

    def runs_in_this_loop(self) -> bool:
        """Whether it was made in the running event loop (its futures and task live there)."""
        return self._loop is asyncio.get_running_loop()

    async def apply(self, events: list[StatusEvent]) -> None:
        """Return once these statuses are committed; raise if they could not be."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(events, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="webhook-status-writer")
        await future

    async def _write(self) -> None:
        while self._waiting:
            await self._let_arrivals_join()
            group = self._take_group()
            try:
                await run_in_threadpool(self._apply, [e for w in group for e in w.events])
            except Exception as exc:
                if len(group) == 1:
                    _settle(group[0], exc)
                    continue
                logger.warning("webhook.status_group_failed requests=%d; one by one", len(group))
                for waiting in group:
                    try:
                        await run_in_threadpool(self._apply, waiting.events)
                    except Exception as single:
                        _settle(waiting, single)
                    else:
                        _settle(waiting, None)
                continue
            for waiting in group:
                _settle(waiting, None)

    async def _let_arrivals_join(self) -> None:
        """Let requests the loop has already received reach the queue before a group is taken.

        Without this the first request of a burst is written alone while the rest of the burst
        queues behind it, and groups alternate between one request and all the others.
        """
        seen = -1
        for _ in range(_MAX_JOIN_PASSES):
            if len(self._waiting) == seen:
                return
            seen = len(self._waiting)
            await asyncio.sleep(0)

    def _take_group(self) -> list[_Waiting]:
        group: list[_Waiting] = []
        events = 0
        while self._waiting and (
            not group or events + len(self._waiting[0].events) <= self._max_events
        ):
            waiting = self._waiting.pop(0)
            group.append(waiting)
            events += len(waiting.events)
        return group

    def _apply_in_transaction(self, events: list[StatusEvent]) -> None:
        with session_scope(self._engine) as session:
            summary = statuses.apply_statuses(session, events, vault=self._vault, now=utcnow())
        count_summary(summary)


def count_summary(summary: statuses.StatusSummary) -> None:
    """Add one committed batch's status effects to the metrics."""
    metrics.STATUSES.labels("applied").inc(summary.applied)
    metrics.STATUSES.labels("unchanged").inc(summary.unchanged)
    metrics.STATUSES.labels("unmatched").inc(summary.unmatched)


def _settle(waiting: _Waiting, error: BaseException | None) -> None:
    if waiting.future.done():  # the request went away (client disconnect)
        return
    if error is None:
        waiting.future.set_result(None)
    else:
        waiting.future.set_exception(error)
