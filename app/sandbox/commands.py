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


def _base_url(url: str | None) -> str:
    settings = _settings()
    base = url or settings.sandbox_url or f"http://{settings.host}:{settings.port}"
    return base.rstrip("/")


def _post(url: str, path: str, payload: dict[str, object]) -> dict[str, object]:
    try:
        response = httpx.post(url + path, json=payload, timeout=10.0)
    except httpx.HTTPError as exc:
        typer.echo(f"error: the sandbox at {url} does not answer ({exc})", err=True)
        raise typer.Exit(code=2) from exc
    answer = response.json() if response.content else {}
    if response.status_code != 200:
        typer.echo(f"error: {answer.get('error', response.status_code)}", err=True)
        raise typer.Exit(code=2)
    return dict(answer)


@app.command("event")
def play_event(
    kind: Annotated[
        str,
        typer.Argument(
            help="template-approved|-rejected|-paused|-disabled|-flagged|-reinstated, "
            "template-marketing[-announced], template-quality-green|yellow|red, "
            "quality-flagged|-unflagged|-yellow, limit-downgrade|-upgrade|-set, "
            "throughput-upgrade, account-restricted|-unrestricted|-disabled|-reinstated|-violation"
        ),
    ],
    template: Annotated[str | None, typer.Argument(help="template name (template events)")] = None,
    language: Annotated[str, typer.Option(help="template language")] = "id",
    tier: Annotated[
        str | None, typer.Option(help="limit events: TIER_250, TIER_2K, TIER_10K …")
    ] = None,
    url: Annotated[str | None, typer.Option(help="sandbox base URL")] = None,
) -> None:
    """Make the sandbox play what Meta does: a template paused, a limit lowered, a flag …"""
    payload: dict[str, object] = {"kind": kind, "language": language}
    if template:
        payload["template"] = template
    if tier:
        payload["tier"] = tier
    played = _post(_base_url(url), "/sandbox/events", payload)
    if not played.get("field"):
        typer.echo(f"{kind}: sandbox changed; no notice (the service sees it on its next reading)")
    elif played.get("posted"):
        typer.echo(f"{kind}: Meta's notice {played['field']} sent to the service and accepted")
    else:
        typer.echo(f"{kind}: notice {played['field']} not accepted by the service", err=True)
        raise typer.Exit(code=1)


@app.command("account")
def change_account(
    changes: Annotated[
        list[str] | None,
        typer.Argument(help="FIELD=VALUE, e.g. quality_rating=RED token_valid=false"),
    ] = None,
    url: Annotated[str | None, typer.Option(help="sandbox base URL")] = None,
) -> None:
    """Show the account the sandbox plays, or change fields of it (to make checks fail)."""
    base = _base_url(url)
    payload: dict[str, object] = {}
    for change in changes or []:
        key, sep, value = change.partition("=")
        if not sep:
            typer.echo(f"error: {change!r} is not FIELD=VALUE", err=True)
            raise typer.Exit(code=2)
        try:
            payload[key] = json.loads(value)  # true, 2000, ["whatsapp_business_messaging"] …
        except ValueError:
            payload[key] = value  # a plain word: RED, DECLINED …
    if payload:
        answer = _post(base, "/sandbox/account", payload)
    else:
        try:
            answer = httpx.get(base + "/sandbox/account", timeout=10.0).json()
        except httpx.HTTPError as exc:
            typer.echo(f"error: the sandbox at {base} does not answer ({exc})", err=True)
            raise typer.Exit(code=2) from exc
    typer.echo(json.dumps(answer, indent=2, ensure_ascii=False))
