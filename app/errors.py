"""One error type for expected failures, rendered as {"error": {"code", "message"}}."""

from typing import Any


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
