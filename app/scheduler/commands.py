"""`spi-reminder scheduler`."""


def scheduler() -> None:
    """Run the scheduler alone (standby if another process holds the lock)."""
    raise SystemExit("scheduler: not built yet")
