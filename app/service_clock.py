"""The service's notion of now: the wall clock, or SPI_CLOCK_AT's moving clock in development."""

from collections.abc import Callable
from datetime import datetime

from app.config import Settings
from app.db import utcnow


def clock_for(settings: Settings) -> Callable[[], datetime]:
    """utcnow, or a clock that read SPI_CLOCK_AT when this was called and runs on from there."""
    if settings.clock_at is None:
        return utcnow
    offset = settings.clock_at - utcnow()

    def shifted() -> datetime:
        return utcnow() + offset

    return shifted
