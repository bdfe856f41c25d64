"""Mount the local fake of Meta's Graph API into the service when no credentials are set."""

from fastapi import FastAPI

from app.config import Settings


def install(app: FastAPI, settings: Settings) -> None:
    """Add the sandbox routes to the app (embedded default only)."""
