"""`spi-reminder doctor`: the pre-flight, against Meta or (without credentials) the sandbox."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from app.cli_support import load_settings
from app.config import Settings
from app.db import make_engine
from app.messaging import runtime as messaging_runtime
from app.messaging.account_client import account_client_for
from app.messaging.client import GraphConfig
from app.sandbox import identity as sandbox_identity
from app.sandbox.identity import GRAPH_MOUNT, sandbox_active
from app.security import PhoneVault, load_keys
from app.sender import doctor as preflight
from app.sender.preflight import Status

LABELS = {
    Status.ok: "OK",
    Status.warn: "PERINGATAN",
    Status.fail: "GAGAL",
    Status.skip: "DILEWATI",
}


def _graph_config(settings: Settings, sandbox_url: str | None) -> tuple[GraphConfig, str]:
    if not sandbox_active(settings):
        return messaging_runtime.meta_config(settings), "meta"
    url = sandbox_url or settings.sandbox_url or f"http://{settings.host}:{settings.port}"
    if not settings.sandbox_url and not sandbox_url:
        url += GRAPH_MOUNT  # the sandbox inside a running `serve`
    return sandbox_identity.graph_config(settings, url), "sandbox"


async def _run(settings: Settings, local: preflight.Local, url: str | None) -> preflight.Report:
    config, target = _graph_config(settings, url)
    async with account_client_for(config) as client:
        return await preflight.run(client, settings=settings, local=local, target=target)


def doctor(
    url: Annotated[
        str | None,
        typer.Option(help="without Meta credentials: the sandbox's URL (default: serve's own)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Pre-flight: token, number, webhook, templates, limit, quality; exit 1 if a check fails."""
    settings = load_settings()
    vault = PhoneVault(load_keys(settings))
    engine = make_engine(settings.resolved_database_url, pool_size=2)
    try:
        local = preflight.read_local_now(engine, vault)
    finally:
        engine.dispose()
    report = asyncio.run(_run(settings, local, url))
    if as_json:
        checks = [
            {
                "key": c.key,
                "title": c.title,
                "status": c.status.value,
                "detail": c.detail,
                "advice": c.advice,
            }
            for c in report.checks
        ]
        typer.echo(json.dumps({"ok": report.ok, "target": report.target, "checks": checks}))
    else:
        typer.echo(f"Pemeriksaan pra-kirim ({report.target}): {report.summary()}")
        for check in report.checks:
            typer.echo(f"[{LABELS[check.status]}] {check.title}: {check.detail}")
            if check.advice and check.status is not Status.ok:
                typer.echo(f"    Saran: {check.advice}")
    if not report.ok:
        raise typer.Exit(code=1)
