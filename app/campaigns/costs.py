"""What reminders cost: Meta's per-message rates, the forecast of a campaign, what was billed.

Since 1 July 2025 Meta charges per delivered template message, by the template's category and
the recipient's country; a utility template delivered inside an open service window is free.
The rates are configuration (`SPI_MESSAGE_RATES_IDR`, `SPI_MESSAGE_RATES_DATE`): Meta changes
them a few times a year, and the inspectorate's budget (APBD) must say which table it used.

The default table is an assumption, not a quote: Meta's Indonesia rate card as republished by
third parties (USD 0.0200 utility, 0.0411 marketing, 0.0300 authentication per message, the
card of 2024-10-01) at Rp 16.000 per USD, rounded to whole rupiah. Replace it with the IDR card
from WhatsApp Manager (Billing) before budgeting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from app.config import Settings
from app.messaging.inbound import Pricing

# Statuses of which one carries the charge of a delivered message (`sent` carries a preview).
BILLING_STATUSES = frozenset({"delivered", "read", "played"})
FREE_CHARGES = frozenset({"free_customer_service", "free_entry_point"})


@dataclass(frozen=True)
class RateTable:
    """Rupiah per delivered template message, by Meta's pricing category, and its date."""

    rates: Mapping[str, int]
    as_of: date

    def rate(self, category: str) -> int:
        """The rate of a category; 0 for one the table does not price (free)."""
        return self.rates.get(category, 0)


def rate_table(settings: Settings) -> RateTable:
    """The configured rate table: "utility=320,marketing=658" plus its date."""
    rates: dict[str, int] = {}
    for part in settings.message_rates_idr.split(","):
        category, sep, amount = part.partition("=")
        if sep and category.strip():
            rates[category.strip().lower()] = int(amount.strip())
    return RateTable(rates=rates, as_of=date.fromisoformat(settings.message_rates_date))


def charged_category(status: str, pricing: Pricing | None) -> str | None:
    """The category Meta charged for, if this status carries the charge of a delivered message."""
    if status not in BILLING_STATUSES or pricing is None:
        return None
    # `billable` is being retired in favour of `type`; read `type` first, `billable` if absent.
    if pricing.charge is not None:
        charged = pricing.charge not in FREE_CHARGES
    else:
        charged = bool(pricing.billable)
    return (pricing.category or "unknown").lower() if charged else None


def rupiah(amount: int) -> str:
    """An amount as an Indonesian reads it: Rp 1.234.000."""
    return "Rp " + f"{amount:,}".replace(",", ".")
