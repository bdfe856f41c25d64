"""Outbox worker: claims due deliveries in batches and sends them."""

from fastapi import FastAPI


async def start(app: FastAPI) -> object | None:
    """Start an in-process worker (serve); returns a handle for stop()."""
    return None


async def stop(handle: object | None) -> None:
    """Stop claiming, finish in-flight sends, record them."""
