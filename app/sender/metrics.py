"""Prometheus figures of the sender: its limit, throughput, quality and open alerts.

Read from the database at scrape time (so every replica reports the same, whichever received
Meta's notice) by a collector on the default registry, which `/metrics` exposes. Operational
figures about the business number only; nothing about a person.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

logger = logging.getLogger(__name__)

ALERTS = Counter(
    "spi_sender_alerts",
    "Sender alerts raised in this process (limit downgrade, flag, restriction, template).",
    ["kind"],
)
QUALITY_RATINGS = ("GREEN", "YELLOW", "RED", "NA", "UNKNOWN")  # labels: lower case


class SenderCollector(Collector):
    """Reads the sender state at scrape time from the engine the app gave it."""

    def __init__(self) -> None:
        self.engine: Engine | None = None

    def describe(self) -> list[Metric]:
        # Nothing up front: describing would read the database at registration.
        return []

    def collect(self) -> Iterator[Metric]:
        if self.engine is None:
            return iter(())
        # Imported here: the service imports this module for the counter above.
        from app.sender import service

        try:
            figures = service.metric_figures(self.engine)
        except Exception as exc:  # a scrape must answer when the database does not
            logger.warning("sender.metrics_unavailable %s", type(exc).__name__)
            return iter(())
        limit = GaugeMetricFamily(
            "spi_sender_messaging_limit",
            "Unique people the portfolio may message per moving 24 h (+Inf = unlimited).",
        )
        limit.add_metric(
            [], math.inf if figures.messaging_limit is None else figures.messaging_limit
        )
        throughput = GaugeMetricFamily(
            "spi_sender_throughput_per_second", "Messages per second the number may send."
        )
        throughput.add_metric([], figures.throughput)
        quality = GaugeMetricFamily(
            "spi_sender_quality", "1 for the number's current quality rating.", labels=["rating"]
        )
        for rating in QUALITY_RATINGS:
            quality.add_metric([rating.lower()], 1 if figures.quality == rating else 0)
        restricted = GaugeMetricFamily(
            "spi_sender_restricted", "1 while Meta restricts or flags the account or number."
        )
        restricted.add_metric([], 1 if figures.restricted else 0)
        alerts = GaugeMetricFamily(
            "spi_sender_open_alerts", "Sender alerts no admin has resolved.", labels=["kind"]
        )
        for kind, count in sorted(figures.open_alerts.items()):
            alerts.add_metric([kind], count)
        return iter([limit, throughput, quality, restricted, alerts])


COLLECTOR = SenderCollector()
REGISTRY.register(COLLECTOR)


def watch(engine: Engine | None) -> None:
    """Report the sender state of this database on /metrics (None: stop reporting)."""
    COLLECTOR.engine = engine
