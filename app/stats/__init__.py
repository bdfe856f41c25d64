"""Aggregate statistics (rounded as docs/privacy.md says), CSV exports and Prometheus metrics."""
