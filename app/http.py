"""Cross-cutting HTTP behaviour: JSON error bodies and request-size limits."""

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import AppError, Invalid

logger = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The one error shape every route uses."""
    return {"error": {"code": code, "message": message, **extra}}


def _describe(errors: list[Any]) -> tuple[str, list[dict[str, str]]]:
    details = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        # pydantic echoes the rejected input; it may be a phone number, so it is never returned.
        # A validator's own sentence (e.g. a label's, in Indonesian) without pydantic's prefix.
        problem = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        details.append({"field": loc, "problem": problem})
    first = details[0] if details else {"field": "", "problem": "invalid request"}
    return f"{first['field']}: {first['problem']}".strip(": "), details


def install_error_handlers(app: FastAPI) -> None:
    """Render every expected failure as JSON with a real status; 500 only for bugs."""

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(exc.to_body(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, details = _describe(list(exc.errors()))
        body_errors = [e for e in exc.errors() if e.get("type") == "json_invalid"]
        if body_errors:
            return JSONResponse(error_body("bad_request", "request body is not valid JSON"), 400)
        return JSONResponse(error_body("invalid", message, details=details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the methods of the first route it matched on the path.
            headers["Allow"] = ", ".join(sorted(allowed_methods(app, request.url.path)))
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("request.failed path=%s", request.url.path)
        return JSONResponse(error_body("internal_error", "internal error"), status_code=500)


def allowed_methods(app: FastAPI, path: str) -> set[str]:
    """Every method some route (or the documented webhook receiver) answers on this path."""
    methods: set[str] = set()
    for route in iter_route_contexts(app.routes):
        if route.methods and route.path_format:
            path_regex, _, _ = compile_path(route.path_format)
            if path_regex.match(path):
                methods |= set(route.methods)
    for template, operations in app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods |= {m.upper() for m in operations}
    return methods


# A JSON string's NUL is always written as the escape \u0000 (an even run of backslashes before
# it escapes only themselves).
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def refuse_nul(request: Request) -> None:
    """Refuse text holding the NUL character (422), in the path, the query or a JSON body.

    No name, label or template holds one; PostgreSQL cannot store or compare it (a 500), while
    SQLite would store it: refused at the edge, both databases answer alike.
    """
    # Only the parameters the route reads: an ignored one cannot reach the database.
    dependant = getattr(request.scope.get("route"), "dependant", None)
    declared = _query_names(dependant) if dependant is not None else set()
    queried = [v for k, v in request.query_params.multi_items() if k in declared]
    if any("\x00" in str(value) for value in [*request.path_params.values(), *queried]):
        raise Invalid("text must not contain the NUL character")
    is_json = request.headers.get("content-type", "").startswith("application/json")
    if is_json and _ESCAPED_NUL.search(await request.body()):
        raise Invalid("text must not contain the NUL character")


def too_large_message(limit: int) -> str:
    """The 413 message, naming the limit."""
    return f"request body is larger than the limit of {limit} bytes"


class BodySizeLimit:
    """Refuse bodies over a per-path limit with 413, also when no Content-Length is sent."""

    def __init__(self, app: ASGIApp, *, default: int, limits: dict[str, int]) -> None:
        self.app = app
        self.default = default
        self.limits = limits

    def _limit_for(self, path: str) -> int:
        for suffix, limit in self.limits.items():
            if path.endswith(suffix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope["path"])
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._reject(send, limit)
                return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._reject(send, limit)

    @staticmethod
    async def _reject(send: Send, limit: int) -> None:
        response = JSONResponse(
            error_body("too_large", too_large_message(limit)),
            status_code=413,
        )
        await response({"type": "http"}, _empty_receive, send)


class _TooLarge(StarletteHTTPException):
    # An HTTPException, so that FastAPI's body parsing passes it through as a 413.
    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit))
        self.limit = limit


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}
