"""The sandbox's own pages and controls under /sandbox/: inbox, counters, faults, reset, the
account and its events, and "reply as this employee"."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from app.sandbox import inbox, reply
from app.sandbox.events import UnknownEvent

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

    async def account(request: Request) -> Response:
        """GET/POST /sandbox/account: the account the sandbox plays (POST changes fields)."""
        if request.method == "POST":
            try:
                changes = json.loads(await request.body())
                if not isinstance(changes, dict):
                    raise ValueError("send a JSON object")
                graph.account.update(changes)
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(graph.account.public())

    async def events(request: Request) -> Response:
        """POST /sandbox/events {"kind", "template"?, "language"?, "tier"?}: play one event."""
        try:
            data = json.loads(await request.body())
            if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
                raise UnknownEvent("send a JSON object with a kind")
            played = await graph.events.trigger(
                data["kind"],
                template=data.get("template"),
                language=str(data.get("language") or "id"),
                tier=data.get("tier"),
            )
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(played)

    async def reply_page(request: Request) -> Response:
        """GET /sandbox/reply[?message=…]: the form to answer as an employee."""
        message_id = request.query_params.get("message", "")
        entry = graph.inbox_entry(message_id) if message_id else None
        if message_id and entry is None:
            return HTMLResponse(
                '<p>Pesan tidak ada lagi di kotak masuk. <a href="/sandbox/inbox">Kembali</a></p>',
                status_code=404,
            )
        page = reply.render_page(
            message_id=message_id,
            masked=entry.masked if entry is not None else None,
            received=entry.text if entry is not None else None,
        )
        return HTMLResponse(page)

    async def send_reply(request: Request) -> Response:
        """POST /sandbox/reply (form or JSON {"message"|"number", "text"}): send it signed."""
        as_json = request.headers.get("content-type", "").startswith("application/json")
        try:
            if as_json:
                data = json.loads(await request.body())
                if not isinstance(data, dict):
                    raise reply.ReplyRefused("send a JSON object")
            else:
                data = dict(await request.form())
            posted = await graph.reply(
                message_id=str(data.get("message") or "") or None,
                number=str(data.get("number") or "").strip() or None,
                text=str(data.get("text") or ""),
            )
        except (ValueError, TypeError) as exc:
            if as_json:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return HTMLResponse(f"<p>Balasan tidak terkirim: {reply.escape(str(exc))}</p>", 400)
        if as_json:
            return JSONResponse({"posted": posted})
        return RedirectResponse("/sandbox/inbox", status_code=303)

    return [
        Route("/sandbox/inbox", inbox_page, methods=["GET"]),
        Route("/sandbox/inbox.json", inbox_json, methods=["GET"]),
        Route("/sandbox/stats", stats, methods=["GET"]),
        Route("/sandbox/faults", faults, methods=["POST"]),
        Route("/sandbox/reset", reset, methods=["POST"]),
        Route("/sandbox/account", account, methods=["GET", "POST"]),
        Route("/sandbox/events", events, methods=["POST"]),
        Route("/sandbox/reply", reply_page, methods=["GET"]),
        Route("/sandbox/reply", send_reply, methods=["POST"]),
    ]
