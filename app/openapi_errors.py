"""The OpenAPI document as the service really answers: every error response, one error schema.

FastAPI documents only what a route declares, and documents validation failures with its own
`{"detail": [...]}` body, which this service never sends (see app/http.py). This hook derives
each operation's error answers from how the route is built, once for every router:

- a request body: 400 (not JSON), 413 (over the size limit), 422;
- parameters: 422; path parameters: 404 (nothing by that name);
- a bearer token: 401, and 403 unless every role may call the route (an OPD-scoped route also
  refuses a coordinator of another OPD);
- the database (a request session or the token lookup): 503 when it stays busy.

Routes add what only they know (409, their own descriptions) with `responses=`; every 4xx/5xx
answer, declared or derived, is given the error schema.
"""

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel, Field

from app.auth.dependencies import current_principal
from app.auth.models import Role
from app.db import get_session


class FieldProblem(BaseModel):
    """One invalid input, named by its place (never echoing the value)."""

    field: str = Field(description="Dotted place of the input, e.g. consent.method")
    problem: str


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine code, e.g. not_found or opd_exists")
    message: str = Field(description="What went wrong, for a person")
    details: list[FieldProblem] | None = Field(
        default=None, description="Every invalid input (422 only)"
    )


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


ERROR_SCHEMA_REF = "#/components/schemas/ErrorBody"
DESCRIPTIONS = {
    400: "The body is not valid JSON (or not what the route reads)",
    401: "No bearer token, or an invalid or revoked one",
    403: "The token's role (or OPD) may not do this",
    404: "Nothing by that name, or nothing this caller may see",
    409: "Conflicts with the current state",
    413: "The body is larger than the route's limit",
    422: "An input is invalid; `details` names each one",
    429: "Too many attempts; try again later",
    503: "The database is busy or unreachable; send the request again later",
}
BEARER = "bearerToken"
LOCAL_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$"
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
_ROLE_CHECK = "require_roles.<locals>.check"


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _any_params(dependant: Dependant, kind: str) -> bool:
    # A parameter may be declared by a dependency (e.g. a shared campaign id) as well.
    if getattr(dependant, kind):
        return True
    return any(_any_params(sub, kind) for sub in dependant.dependencies)


def _admitted_roles(call: Callable[..., Any]) -> set[Role]:
    cells = getattr(call, "__closure__", None) or ()
    for cell in cells:
        if isinstance(cell.cell_contents, tuple):
            return {r for r in cell.cell_contents if isinstance(r, Role)}
    return set(Role)


def route_errors(context: RouteContext) -> set[int]:
    """The error statuses a route can answer, derived from its parameters and dependencies."""
    statuses: set[int] = set()
    route = context.original_route
    assert isinstance(route, APIRoute)
    dependant = route.dependant
    calls = list(_calls(dependant))
    if _any_params(dependant, "body_params"):
        statuses |= {400, 413, 422}
    if _any_params(dependant, "path_params"):
        statuses |= {404, 422}
    if _any_params(dependant, "query_params") or _any_params(dependant, "header_params"):
        statuses.add(422)
    if current_principal in calls:
        statuses |= {401, 503}
        role_checks = [c for c in calls if getattr(c, "__qualname__", "") == _ROLE_CHECK]
        restricted = any(_admitted_roles(c) != set(Role) for c in role_checks)
        if restricted or "{code}" in str(context.path_format):
            statuses.add(403)
    if get_session in calls:
        statuses.add(503)
    return statuses


def _error_response(existing: dict[str, Any] | None, status: int) -> dict[str, Any]:
    response = dict(existing or {})
    response.setdefault("description", DESCRIPTIONS.get(status, "Error"))
    content = dict(response.get("content") or {})
    json_content = dict(content.get("application/json") or {})
    schema_ref = json_content.get("schema", {}).get("$ref", "")
    if not json_content.get("schema") or schema_ref.endswith(_FASTAPI_VALIDATION):
        json_content["schema"] = {"$ref": ERROR_SCHEMA_REF}
    content["application/json"] = json_content
    response["content"] = content
    return response


def complete(spec: dict[str, Any], errors_by_operation: dict[tuple[str, str], set[int]]) -> None:
    """Give every operation its derived errors, and every error answer the error schema."""
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            derived = errors_by_operation.get((path, method), set())
            for status in derived:
                responses.setdefault(str(status), {})
            if 401 in derived and "security" not in operation:
                operation["security"] = [{BEARER: []}]
            for status, response in list(responses.items()):
                if str(status)[0] in "45":
                    responses[status] = _error_response(response, int(status))
    components = spec.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (`spi-reminder token create`)",
    }
    schemas = components.setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    definitions = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(definitions.pop("$defs", {}))
    schemas["ErrorBody"] = definitions
    _local_times(schemas)


def _local_times(node: Any) -> None:
    # A `time` here is a wall-clock time in each OPD's own zone, sent and read without offset
    # ("08:00:00"); JSON Schema's `format: time` would demand one ("08:00:00+07:00").
    if isinstance(node, dict):
        if node.get("type") == "string" and node.get("format") == "time":
            del node["format"]
            node["pattern"] = LOCAL_TIME_PATTERN
            node.setdefault("description", "Local time without offset, HH:MM[:SS]")
        for value in node.values():
            _local_times(value)
    elif isinstance(node, list):
        for value in node:
            _local_times(value)


def _operations(app: FastAPI) -> dict[tuple[str, str], set[int]]:
    found: dict[tuple[str, str], set[int]] = {}
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.include_in_schema:
            for method in context.methods or ():
                found[(str(context.path_format), method.lower())] = route_errors(context)
    return found


def install(app: FastAPI) -> None:
    """Complete the app's OpenAPI document (after every other hook) once, when first asked."""
    generate = app.openapi
    completed: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not completed:
            spec = generate()
            complete(spec, _operations(app))
            completed.append(spec)
        return completed[0]

    app.openapi = openapi  # type: ignore[method-assign]
