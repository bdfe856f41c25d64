"""WhatsApp webhook: Meta's verification handshake (POST is answered by `receiver`)."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from app.config import Settings
from app.http import error_body
from app.webhook.security import verify_token_matches

router = APIRouter(prefix="/webhook", tags=["Webhook"])


@router.get(
    "/whatsapp",
    response_class=PlainTextResponse,
    responses={403: {"description": "wrong mode or verify token"}},
)
def verify(
    request: Request,
    mode: Annotated[str | None, Query(alias="hub.mode")] = None,
    token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
) -> Response:
    """Meta's verification handshake: echo hub.challenge when the verify token matches."""
    settings: Settings = request.app.state.settings
    if mode == "subscribe" and challenge is not None and verify_token_matches(token, settings):
        return PlainTextResponse(challenge)
    return JSONResponse(error_body("forbidden", "verification failed"), status_code=403)
