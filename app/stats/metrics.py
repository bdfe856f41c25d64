"""Prometheus metrics: process counters, and figures read from the database at scrape time.

Registry: the process-wide default one (`prometheus_client.REGISTRY`), because the worker
(`app.outbox.metrics`) and the webhook (`app.webhook.metrics`) already register their counters
there; `/metrics` exposes it whole, plus the figures below computed per scrape. Tests compare
before/after values, so sharing the registry does not couple them.

Labels carry only fixed vocabularies (outcome classes, states, event kinds), never an id, a
number, a name or free text; values outside a vocabulary are left out.

At scrape time, with one grouped query each (they read counters and indexed states only):
- spi_outbox_depth{state=queued|retrying|sending}: deliveries waiting in the outbox;
- spi_campaigns{state}: campaigns per state (paused > 0 deserves an alert);
- spi_delivery_outcomes_total{outcome}: the delivery outcome counters of every campaign, the
  same as the statistics read: sends by outcome class, retries (`retried`), across every worker
  process (in-process counters see only their own process);
- spi_enrolment_events_total{event}: enrolled, withdrawn, opted_out, resumed, erased,
  unreachable (opt-outs across every process);
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

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from app.campaigns.models import CampaignState
from app.outbox import tally
from app.outbox.models import DeliveryState
from app.stats import queries

logger = logging.getLogger(__name__)

ENROLMENT_EVENTS = ("enrolled", "withdrawn", "opted_out", "resumed", "erased", "unreachable")
OUTBOX_STATES = ("queued", "retrying", "sending")


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
        "Delivery outcomes counted for every campaign (scheduled, accepted, delivered, "
        "failed_*, unknown, skipped, retried).",
        labels=["outcome"],
    )
    events = CounterMetricFamily(
        "spi_enrolment_events", "Enrolment events (opt-outs included).", labels=["event"]
    )
    try:
        with engine.connect() as conn:
            queued = {state: 0 for state in OUTBOX_STATES}
            for state, retried, n in queries.outbox_waiting(conn):
                key = "sending" if state == DeliveryState.sending else "queued"
                if key == "queued" and retried:
                    key = "retrying"
                queued[key] += int(n)
            by_state = {state.value: 0 for state in CampaignState}
            for state, n in queries.campaigns_by_state(conn):
                if state in by_state:
                    by_state[state] += int(n)
            by_outcome = dict.fromkeys(tally.OUTCOMES, 0)
            for outcome, n in queries.delivery_outcome_totals(conn):
                if outcome in by_outcome:
                    by_outcome[outcome] += int(n or 0)
            by_event = dict.fromkeys(ENROLMENT_EVENTS, 0)
            for event, n in queries.enrolment_event_totals(conn):
                if event in by_event:
                    by_event[event] += int(n or 0)
    except Exception as exc:  # the metrics must still answer when the database does not
        logger.warning("metrics.database_unavailable %s", type(exc).__name__)
        return []
    for key, n in queued.items():
        depth.add_metric([key], n)
    for key, n in by_state.items():
        campaigns.add_metric([key], n)
    for key, n in by_outcome.items():
        outcomes.add_metric([key], n)
    for key, n in by_event.items():
        events.add_metric([key], n)
    return [depth, campaigns, outcomes, events]


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
    """The whole /metrics body: the process registry, then the scrape-time figures."""
    scrape = CollectorRegistry(auto_describe=False)
    families = scheduler_families(scheduler)
    up = GaugeMetricFamily("spi_metrics_database_up", "1 if the database answered this scrape.")
    if engine is not None:
        db = database_families(engine)
        families += db
        up.add_metric([], 1 if db else 0)
    else:
        up.add_metric([], 0)
    families.append(up)
    scrape.register(_Families(families))
    return generate_latest(REGISTRY) + generate_latest(scrape)
