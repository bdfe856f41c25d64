"""WhatsApp webhook: verification handshake, inbound messages and statuses."""

from fastapi import APIRouter

router = APIRouter(prefix="/webhook", tags=["Webhook"])
