"""Run exactly one APScheduler across all processes (PostgreSQL advisory lock)."""

from fastapi import FastAPI


async def start(app: FastAPI) -> object | None:
    """Start the scheduler (or its standby loop) in this process; returns a handle for stop()."""
    return None


async def stop(handle: object | None) -> None:
    """Stop the scheduler and release the lock."""
