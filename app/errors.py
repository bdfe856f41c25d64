"""One error type for expected failures, rendered as {"error": {"code", "message"}}."""

import logging
from typing import Any

logger = logging.getLogger(__name__)


class AppError(Exception):
    """An expected failure with a real HTTP status and a stable machine code."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self, message: str, *, code: str | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code

    def to_body(self) -> dict[str, Any]:
        """The JSON body clients receive."""
        return {"error": {"code": self.code, "message": self.message}}


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class Invalid(AppError):
    status_code = 422
    code = "invalid"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"


class TooLarge(AppError):
    status_code = 413
    code = "too_large"


class Busy(AppError):
    """The database did not grant a lock in time; the same request may simply be sent again."""

    status_code = 503
    code = "busy"


# What a client is told to wait before sending the request again, in seconds.
RETRY_AFTER_SECONDS = 2
# PostgreSQL: lock_not_available (lock_timeout), deadlock_detected, serialization_failure.
_RETRYABLE_SQLSTATES = frozenset({"55P03", "40P01", "40001"})


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether a database error means a lock was not granted in time, rather than a bug."""
    from sqlalchemy.exc import OperationalError

    if not isinstance(exc, OperationalError):
        return False
    if getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES:
        return True
    message = str(exc.orig).lower()
    return "database is locked" in message or "database table is locked" in message


def install_lock_timeout_handler(app: Any) -> None:
    """Answer a lock timeout with 503 and Retry-After on every route, never with 500."""
    from fastapi import Request
    from fastapi.responses import JSONResponse
    from sqlalchemy.exc import OperationalError

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> JSONResponse:
        if not is_lock_timeout(exc):
            logger.exception("request.failed path=%s", request.url.path, exc_info=exc)
            body = {"error": {"code": "internal_error", "message": "internal error"}}
            return JSONResponse(body, status_code=500)
        logger.warning("request.lock_timeout path=%s", request.url.path)
        busy = Busy("the database is busy; send the request again in a moment")
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return JSONResponse(busy.to_body(), status_code=busy.status_code, headers=headers)
