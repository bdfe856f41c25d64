"""The sandbox in production (SPI_SANDBOX_IN_PRODUCTION): said on every page, admins only.

Without Meta credentials nothing reaches WhatsApp, and the sandbox's inbox holds every message
the service "sent". In production that must be visible to everyone who uses a page, and its
routes (inbox, faults, reset, …) must be no easier to reach than the admin's own.
"""

from __future__ import annotations

import html
import re

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth import service as auth_service
from app.auth.principal import Principal
from app.dashboard import session as dash_session
from app.db import session_scope
from app.http import error_body
from app.sandbox.identity import BANNER
from app.security import PhoneVault

PREFIX = "/sandbox"
BANNER_HTML = (
    '<div role="alert" id="sandbox-banner" style="background:#b3261e;color:#fff;'
    'padding:.6rem 1rem;font:bold 1rem sans-serif;text-align:center">'
    f"{html.escape(BANNER)}</div>"
).encode()
_BODY_TAG = re.compile(rb"<body[^>]*>", re.IGNORECASE)


def with_banner(page: bytes) -> bytes:
    """The page with the banner first in its body (or first of all without a body tag)."""
    match = _BODY_TAG.search(page)
    at = match.end() if match else 0
    return page[:at] + BANNER_HTML + page[at:]


class SandboxBanner:
    """Put the banner into every HTML response, whichever router made it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def send_with_banner(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                kinds = [v for k, v in message.get("headers", []) if k == b"content-type"]
                if not (kinds and kinds[0].startswith(b"text/html")):
                    await send(message)
                    return
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = with_banner(b"".join(chunks))
            kept = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
            kept.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": kept})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, send_with_banner)


class AdminOnlySandbox:
    """/sandbox/* answers only an admin: a bearer token, or a dashboard session."""

    def __init__(self, app: ASGIApp, *, engine: Engine, vault: PhoneVault) -> None:
        self.app = app
        self.engine = engine
        self.vault = vault

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        principal = await run_in_threadpool(self._principal, Request(scope))
        if principal is None:
            refusal = JSONResponse(error_body("unauthorized", "the sandbox needs an admin"), 401)
        elif not principal.is_admin:
            refusal = JSONResponse(error_body("forbidden", "the sandbox needs an admin"), 403)
        else:
            await self.app(scope, receive, send)
            return
        await refusal(scope, receive, send)

    def _principal(self, request: Request) -> Principal | None:
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        with session_scope(self.engine) as session:
            if scheme.lower() == "bearer" and secret.strip():
                return auth_service.resolve_token(session, secret=secret.strip())
            current = dash_session.read(request, session, vault=self.vault)
            return current.principal if current is not None else None
