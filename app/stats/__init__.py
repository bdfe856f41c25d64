"""Aggregate statistics with small-cell suppression, CSV exports and Prometheus metrics."""
