"""Security headers on every response: a CSP without inline script, no framing, no sniffing.

Every page (dashboard and console) answers with the one policy below: no script at all, styles
only from this origin's stylesheets (no <style> block, no style attribute), nothing from another
origin (no CDN, font or script), so the pages also work on an offline intranet.
The API docs (/docs, /redoc) are left alone: FastAPI's Swagger UI and ReDoc come from a CDN.
"""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        # Everything not listed below, scripts included, is refused.
        "default-src 'none'",
        "style-src 'self'",
        # The favicon is an empty data: URL, so the browser asks this origin for nothing.
        "img-src 'self' data:",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Invitation links carry their key in the path: never send it on to another site.
    "Referrer-Policy": "no-referrer",
}
UNTOUCHED_PATHS = ("/docs", "/redoc")


class SecurityHeaders:
    """Add HEADERS to every HTTP response that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNTOUCHED_PATHS):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
