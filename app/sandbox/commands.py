"""`spi-reminder sandbox`: the fake Graph API on its own port, and its inbox."""

import asyncio
import json
from typing import Annotated

import httpx
import typer

from app import cli_support
from app.config import Settings, get_settings
from app.db import make_engine
from app.logging_setup import configure_logging
from app.sandbox import inbox
from app.sandbox.identity import sandbox_active

app = typer.Typer(help="Local sandbox of Meta's WhatsApp Cloud API.")

SANDBOX_PORT = 8081


@app.callback(invoke_without_command=True)
def default(ctx: typer.Context) -> None:
    """Without a subcommand: serve the fake Graph API on its own port."""
    if ctx.invoked_subcommand is None:
        serve()


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    return settings


def _has_database(settings: Settings) -> bool:
    # Reading templates is a nicety: never create an empty SQLite file just for it.
    return bool(settings.database_url) or (settings.data_dir / "pengingat-spi.db").exists()


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = SANDBOX_PORT,
    webhook_url: Annotated[
        str | None,
        typer.Option(help="where to post status webhooks ('' = nowhere); default: the service"),
    ] = None,
) -> None:
    """Run the fake Graph API on its own port (workers use it via SPI_SANDBOX_URL)."""
    import uvicorn

    # Here, not at the top: every `spi-reminder` command imports this module, and only this
    # one needs the fake and Meta's spec validator.
    from app.sandbox.mount import build_sandbox

    settings = _settings()
    if not sandbox_active(settings):
        typer.echo("error: Meta credentials are set; the sandbox is off", err=True)
        raise typer.Exit(code=2)
    cli_support.exit_unless_allowed(settings, standalone=True)
    engine = make_engine(settings.resolved_database_url) if _has_database(settings) else None
    sandbox = build_sandbox(settings, engine=engine)
    if webhook_url is None:
        webhook_url = settings.sandbox_webhook_url
    if webhook_url is None:
        webhook_url = f"http://{settings.host}:{settings.port}/webhook/whatsapp"
    asgi = sandbox.asgi_app()

    async def main() -> None:
        await sandbox.start(webhook_url=webhook_url or None)
        config = uvicorn.Config(
            asgi, host=host, port=port, log_config=None, access_log=False, interface="asgi3"
        )
        await uvicorn.Server(config).serve()

    typer.echo(f"sandbox Graph API on http://{host}:{port} (inbox: /sandbox/inbox)")
    asyncio.run(main())


@app.command("inbox")
def show_inbox(
    url: Annotated[
        str | None, typer.Option(help="sandbox base URL; default: SPI_SANDBOX_URL or serve")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List what each masked number received in the sandbox, newest first."""
    settings = _settings()
    base = url or settings.sandbox_url
    base = base or f"http://{settings.host}:{settings.port}"
    try:
        response = httpx.get(base.rstrip("/") + "/sandbox/inbox.json", timeout=5.0)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        typer.echo(f"error: cannot read the sandbox inbox at {base} ({exc})", err=True)
        raise typer.Exit(code=2) from exc
    entries = response.json()
    if as_json:
        typer.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    if not entries:
        typer.echo("Belum ada pesan di kotak masuk sandbox.")
        return
    for entry in entries:
        typer.echo(inbox.describe(entry))
