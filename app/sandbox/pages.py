"""The sandbox's own pages and controls under /sandbox/: inbox, counters, faults, reset."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from app.sandbox import inbox

if TYPE_CHECKING:
    from app.sandbox.graph import SandboxGraph


def routes(graph: SandboxGraph) -> list[Route]:
    """The /sandbox/* routes over one fake, for the standalone app and for serve."""

    async def inbox_page(_request: Request) -> Response:
        """GET /sandbox/inbox: what each masked number received, newest first."""
        return HTMLResponse(inbox.render_page(list(graph.inbox)))

    async def inbox_json(_request: Request) -> Response:
        """GET /sandbox/inbox.json: the same as JSON, for the CLI."""
        return JSONResponse([e.as_json() for e in reversed(graph.inbox)])

    async def stats(request: Request) -> Response:
        return JSONResponse(graph.stats(detail=request.query_params.get("detail") == "1"))

    async def faults(request: Request) -> Response:
        try:
            changes = json.loads(await request.body())
            if not isinstance(changes, dict):
                raise ValueError("send a JSON object")
            graph.faults.update(changes)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(asdict(graph.faults))

    async def reset(_request: Request) -> Response:
        graph.reset()
        return JSONResponse({"status": "ok"})

    return [
        Route("/sandbox/inbox", inbox_page, methods=["GET"]),
        Route("/sandbox/inbox.json", inbox_json, methods=["GET"]),
        Route("/sandbox/stats", stats, methods=["GET"]),
        Route("/sandbox/faults", faults, methods=["POST"]),
        Route("/sandbox/reset", reset, methods=["POST"]),
    ]
