"""The Graph API's management endpoints, as the sandbox serves them: the number, the token's
permissions, the webhook subscription, and template listing and submission.

Submissions are validated like Meta would (its spec's request schema, the name rules, the
time-to-live range) and answered in Meta's error shape when refused.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.messaging import spec
from app.messaging.wire import MAX_TEMPLATE_TTL_SECONDS, MIN_TEMPLATE_TTL_SECONDS
from app.sandbox.account import SANDBOX_APP_ID
from app.sandbox.faults import graph_error

if TYPE_CHECKING:
    from app.sandbox.graph import SandboxGraph

_VERSION = re.compile(r"^v\d+\.\d+$")
_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
_CATEGORIES = frozenset({"UTILITY", "MARKETING", "AUTHENTICATION"})


def _answer(status_and_body: tuple[int, dict[str, Any]]) -> Response:
    status, body = status_and_body
    return JSONResponse(body, status_code=status)


def _refusal(graph: SandboxGraph, request: Request, *, app_token: bool = False) -> Response | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    version = request.path_params.get("version", "")
    if not _VERSION.fullmatch(version):
        return _answer(graph_error(400, 2500, "Unknown path components"))
    if scheme != "Bearer" or not token:
        return _answer(graph_error(401, 190, "Invalid OAuth access token"))
    if app_token and not token.startswith(SANDBOX_APP_ID + "|"):
        return _answer(graph_error(400, 190, "Invalid OAuth access token (an app token needed)"))
    if not app_token and not graph.account.token_valid:
        return _answer(graph_error(401, 190, "Error validating access token: session expired"))
    return None


def _unknown_object() -> Response:
    return _answer(graph_error(400, 100, "Unsupported get request", subcode=33))


def _template_problems(graph: SandboxGraph, body: Any) -> list[str]:
    problems = spec.validate_template_creation(body)
    if not isinstance(body, dict):
        return problems or ["(root): must be an object"]
    if not _NAME.fullmatch(str(body.get("name", ""))):
        problems.append("name: lowercase letters, digits and underscores only")
    if body.get("category") not in _CATEGORIES:
        problems.append(f"category: one of {sorted(_CATEGORIES)}")
    ttl = body.get("message_send_ttl_seconds")
    if ttl is not None and not (
        isinstance(ttl, int) and MIN_TEMPLATE_TTL_SECONDS <= ttl <= MAX_TEMPLATE_TTL_SECONDS
    ):
        problems.append("message_send_ttl_seconds: 30..43200 for a utility template")
    if (body.get("name"), body.get("language")) in graph.account.templates:
        problems.append("a template with this name and language already exists")
    return problems


def routes(graph: SandboxGraph) -> list[Route]:
    """The management endpoints over one fake (most specific paths first)."""
    account = graph.account

    async def permissions(request: Request) -> Response:
        return _refusal(graph, request) or JSONResponse(account.permissions_answer())

    async def graph_object(request: Request) -> Response:
        if refused := _refusal(graph, request):
            return refused
        object_id = request.path_params["object_id"]
        if object_id == graph.phone_number_id:
            return JSONResponse(account.phone_number(object_id))
        for template in account.templates.values():
            if template.template_id == object_id:
                return JSONResponse(template.listing())
        return _unknown_object()

    async def subscribed_apps(request: Request) -> Response:
        if refused := _refusal(graph, request):
            return refused
        if request.path_params["object_id"] != graph.waba_id:
            return _unknown_object()
        return JSONResponse(account.subscribed_apps())

    async def subscriptions(request: Request) -> Response:
        if refused := _refusal(graph, request, app_token=True):
            return refused
        if request.path_params["object_id"] != SANDBOX_APP_ID:
            return _unknown_object()
        return JSONResponse(account.app_subscriptions())

    async def templates(request: Request) -> Response:
        if refused := _refusal(graph, request):
            return refused
        if request.path_params["object_id"] != graph.waba_id:
            return _unknown_object()
        if request.method == "GET":
            return JSONResponse(
                {"data": [t.listing() for t in account.templates.values()], "paging": {}}
            )
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        problems = _template_problems(graph, body)
        if problems:
            details = "; ".join(problems)
            return _answer(graph_error(400, 100, "Invalid parameter", details=details))
        template = account.submit(body)
        graph.events.review_later(template)
        return JSONResponse(
            {"id": template.template_id, "status": template.status, "category": template.category}
        )

    return [
        Route("/{version}/me/permissions", permissions, methods=["GET"]),
        Route("/{version}/{object_id}/subscribed_apps", subscribed_apps, methods=["GET"]),
        Route("/{version}/{object_id}/subscriptions", subscriptions, methods=["GET"]),
        Route("/{version}/{object_id}/message_templates", templates, methods=["GET", "POST"]),
        Route("/{version}/{object_id}", graph_object, methods=["GET"]),
    ]
