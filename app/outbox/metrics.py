"""Process counters of the outbox worker (Prometheus; exposed by the metrics part later).

Labels carry only fixed vocabularies (send outcomes), never ids, names or numbers.
"""

from prometheus_client import Counter

SEND_ATTEMPTS = Counter(
    "spi_outbox_send_attempts",
    "Send attempts by result class.",
    ["outcome"],  # accepted | retry | failed | halt | unknown
)
DEFERRED = Counter("spi_outbox_deferred", "Deliveries moved to the next allowed send time.")
RETRIES_EXHAUSTED = Counter("spi_outbox_retries_exhausted", "Deliveries failed after max attempts.")
LEASES_EXPIRED = Counter(
    "spi_outbox_leases_expired", "Deliveries left in sending by a dead worker, now unknown."
)
CAMPAIGN_HALTS = Counter(
    "spi_outbox_campaign_halts", "Campaigns paused because WhatsApp refused the sender."
)
