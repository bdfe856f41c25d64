"""Retention: purge per-person rows once a campaign's purpose is met (UU PDP)."""
