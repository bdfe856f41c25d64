"""`spi-reminder worker`."""


def worker() -> None:
    """Run one outbox worker until SIGTERM/SIGINT."""
    raise SystemExit("worker: not built yet")
