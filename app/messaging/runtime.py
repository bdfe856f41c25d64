"""The process-wide WhatsApp client: Meta's Graph API, or the local sandbox without credentials."""

from fastapi import FastAPI


async def open_client(app: FastAPI) -> object | None:
    """Create the shared httpx client and WhatsApp client for this process."""
    return None


async def close_client(handle: object | None) -> None:
    """Close what open_client created."""
