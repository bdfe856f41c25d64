"""Prometheus metrics: operational figures only, never a trace of a person's decision.

What an operator needs to run the service: sends and their result classes, retries, webhook
traffic, outbox depth, scheduler leadership. Nothing here counts an opt-out, a resume, an
erasure, a DATA or a DAFTAR, and no series moves differently after one of them than after a
BANTUAN (pinned by `tests/stats/test_metrics_privacy.py`):
- no enrolment events and no `scheduled`/`skipped` delivery outcomes (a STOP skips the person's
  queued reminders and leaves them out of the next round);
- no `*_created` series: the creation time of a counter that a STOP moves first is the time of
  the first STOP;
- only the service's own `spi_*` families: the process collectors' CPU, memory and garbage
  collector figures vary with the work a message caused, which differs per keyword.

Registry: the process-wide default one (`prometheus_client.REGISTRY`), where the worker
(`app.outbox.metrics`) and the webhook (`app.webhook.metrics`) register their counters; tests
compare before/after values, so sharing it does not couple them. Labels carry only fixed
vocabularies (result classes, states, kinds), never an id, a number, a name or free text.

At scrape time, with one grouped query each (counters and indexed states only):
- spi_outbox_depth{state=queued|retrying|sending}: deliveries due and waiting, or in flight;
- spi_campaigns{state}: campaigns per state (paused > 0 deserves an alert);
- spi_delivery_outcomes_total{outcome}: send results of every campaign across every worker
  process (accepted, delivered, failed_*, unknown, and `retried` attempts);
- spi_scheduler_leader (1 if this process holds the scheduler lock) and
  spi_scheduler_heartbeat_timestamp_seconds (last time it reached the lock);
- spi_metrics_database_up (0 when the database did not answer; the figures above are then
  left out rather than reported as zero).
With several API replicas each reports the same database figures: aggregate them with max().
The statements live in `app.stats.queries`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Protocol

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from app.campaigns.models import CampaignState
from app.db import utcnow
from app.outbox import tally
from app.outbox.models import DeliveryState
from app.stats import queries

logger = logging.getLogger(__name__)

OUTBOX_STATES = ("queued", "retrying", "sending")
# Send results only: `scheduled` and `skipped` move when someone opts out.
SEND_OUTCOMES = tuple(o for o in tally.OUTCOMES if o not in (tally.SCHEDULED, tally.SKIPPED))
OWN_PREFIX = "spi_"

# Read at collection time by prometheus_client, so this covers counters created before it.
disable_created_metrics()


class SchedulerStatus(Protocol):
    """What /metrics reads of the scheduler handle (`app.state.scheduler`)."""

    @property
    def is_leader(self) -> bool: ...

    @property
    def last_heartbeat(self) -> datetime | None: ...


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def database_families(engine: Engine) -> list[Metric]:
    """The scrape-time figures read from the database (empty list if it does not answer)."""
    depth = GaugeMetricFamily(
        "spi_outbox_depth", "Deliveries waiting in the outbox, by state.", labels=["state"]
    )
    campaigns = GaugeMetricFamily("spi_campaigns", "Campaigns by state.", labels=["state"])
    outcomes = CounterMetricFamily(
        "spi_delivery_outcomes",
        "Send results counted for every campaign (accepted, delivered, failed_*, unknown, "
        "retried).",
        labels=["outcome"],
    )
    try:
        with engine.connect() as conn:
            queued = {state: 0 for state in OUTBOX_STATES}
            for state, retried, n in queries.outbox_waiting(conn, now=utcnow()):
                key = "sending" if state == DeliveryState.sending else "queued"
                if key == "queued" and retried:
                    key = "retrying"
                queued[key] += int(n)
            by_state = {state.value: 0 for state in CampaignState}
            for state, n in queries.campaigns_by_state(conn):
                if state in by_state:
                    by_state[state] += int(n)
            by_outcome = dict.fromkeys(SEND_OUTCOMES, 0)
            for outcome, n in queries.delivery_outcome_totals(conn):
                if outcome in by_outcome:
                    by_outcome[outcome] += int(n or 0)
    except Exception as exc:  # the metrics must still answer when the database does not
        logger.warning("metrics.database_unavailable %s", type(exc).__name__)
        return []
    for key, n in queued.items():
        depth.add_metric([key], n)
    for key, n in by_state.items():
        campaigns.add_metric([key], n)
    for key, n in by_outcome.items():
        outcomes.add_metric([key], n)
    return [depth, campaigns, outcomes]


def scheduler_families(status: SchedulerStatus | None) -> list[Metric]:
    """Whether this process leads the scheduler, and its last heartbeat."""
    leader = GaugeMetricFamily(
        "spi_scheduler_leader", "1 if this process holds the scheduler lock, else 0."
    )
    leader.add_metric([], 1 if status is not None and status.is_leader else 0)
    families: list[Metric] = [leader]
    beat = status.last_heartbeat if status is not None else None
    if beat is not None:
        heartbeat = GaugeMetricFamily(
            "spi_scheduler_heartbeat_timestamp_seconds",
            "When this process last reached the scheduler lock (Unix time).",
        )
        heartbeat.add_metric([], beat.timestamp())
        families.append(heartbeat)
    return families


def exposition(engine: Engine | None, scheduler: SchedulerStatus | None) -> bytes:
    """The whole /metrics body: the service's process counters and the scrape-time figures."""
    scrape = CollectorRegistry(auto_describe=False)
    families = [m for m in REGISTRY.collect() if m.name.startswith(OWN_PREFIX)]
    families += scheduler_families(scheduler)
    up = GaugeMetricFamily("spi_metrics_database_up", "1 if the database answered this scrape.")
    if engine is not None:
        db = database_families(engine)
        families += db
        up.add_metric([], 1 if db else 0)
    else:
        up.add_metric([], 0)
    families.append(up)
    scrape.register(_Families(families))
    return generate_latest(scrape)
