"""Logging: plain text locally, JSON lines in production. Never a number, token or message text."""

import json
import logging
import logging.config
import sys
from typing import Any, TextIO


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Writes to whatever sys.stderr is at the moment (test runners swap it)."""

    @property  # type: ignore[override,unused-ignore]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "at": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload)


def configure_logging(*, level: str = "INFO", json_lines: bool = False) -> None:
    """Configure the root logger once for the process."""
    formatter = "json" if json_lines else "text"
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
                "json": {"()": JsonFormatter},
            },
            "handlers": {"stderr": {"()": StderrHandler, "formatter": formatter}},
            "root": {"level": level, "handlers": ["stderr"]},
            # The access log prints full URLs; the webhook's query string holds the verify token.
            "loggers": {
                "uvicorn.access": {"level": "WARNING"},
                # "Running job …" every 30 s from the housekeeping jobs drowns the useful lines.
                "apscheduler.executors": {"level": "WARNING"},
            },
        }
    )
