"""Prometheus counters of the webhook: counts only, never numbers, ids, text or keywords.

A recognised keyword counts as `handled` like any other text: a label per command would be a
per-event counter of opt-outs, erasures and data requests.
"""

from prometheus_client import Counter

REQUESTS = Counter(
    "spi_webhook_requests_total",
    "Webhook POSTs by result (ok, ignored, unsigned, bad_signature, bad_body, too_large, error)",
    ["result"],
)
EVENTS = Counter(
    "spi_webhook_events_total",
    "Webhook events handled, by kind (message: from a person, preferences included; status)",
    ["kind"],
)
STATUSES = Counter(
    "spi_webhook_statuses_total",
    "Delivery statuses by effect (applied, unchanged, unmatched)",
    ["effect"],
)
INBOUND = Counter(
    "spi_webhook_inbound_total",
    "Inbound messages by handling (handled, quiet, duplicate, no_number, number_changed)",
    ["handling"],
)
REPLIES = Counter(
    "spi_webhook_replies_total",
    "Free-form replies to employees by result (sent, failed, unavailable)",
    ["result"],
)
