"""`spi-reminder templates …`: sync from Meta, seed the sandbox examples, list."""

import asyncio

import typer

from app.auth.principal import cli_principal
from app.cli_support import cli_session, load_settings
from app.config import Settings
from app.messaging.client import (
    GraphApiError,
    GraphConfig,
    TemplateInfo,
    WhatsAppClient,
    build_http_client,
)
from app.templates import service
from app.templates import sync as template_sync

app = typer.Typer(help="Message templates.")

# list_templates never uses the phone number id, but GraphConfig requires a well-formed one.
_UNUSED_PHONE_NUMBER_ID = "0"


def graph_config(settings: Settings) -> GraphConfig | None:
    """Graph settings for listing templates, or None without an access token and WABA id."""
    token = settings.whatsapp_access_token.get_secret_value()
    if not token or not settings.whatsapp_waba_id:
        return None
    return GraphConfig(
        base_url=settings.graph_base_url,
        api_version=settings.graph_api_version,
        phone_number_id=settings.whatsapp_phone_number_id or _UNUSED_PHONE_NUMBER_ID,
        waba_id=settings.whatsapp_waba_id,
        access_token=token,
        app_secret=settings.whatsapp_app_secret.get_secret_value() or None,
    )


async def fetch_templates(config: GraphConfig) -> list[TemplateInfo]:
    """Every template of the WABA: GET /{WABA-ID}/message_templates, following paging."""
    async with build_http_client(
        base_url=config.base_url, connect_timeout=10.0, read_timeout=30.0, max_connections=2
    ) as http:
        return await WhatsAppClient(http, config).list_templates()


@app.command()
def sync() -> None:
    """Mirror the WABA's templates (status and body as Meta has them); needs Meta credentials."""
    settings = load_settings()
    try:
        config = graph_config(settings)
    except ValueError as exc:
        typer.echo(f"error: the WhatsApp settings are invalid: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    if config is None:
        typer.echo(
            "error: no Meta credentials; set SPI_WHATSAPP_ACCESS_TOKEN and SPI_WHATSAPP_WABA_ID "
            "to sync templates from Meta. Without them, register templates by hand "
            "(POST /api/v1/templates) or run `spi-reminder templates seed` for the sandbox.",
            err=True,
        )
        raise typer.Exit(code=2)
    try:
        templates = asyncio.run(fetch_templates(config))
    except GraphApiError as exc:
        typer.echo(f"error: Meta refused the template listing: {exc.result.reason}", err=True)
        raise typer.Exit(code=1) from exc
    with cli_session(settings) as session:
        summary = template_sync.sync_from_meta(session, templates=templates, actor=cli_principal())
    for label in summary.created:
        typer.echo(f"created   {label}")
    for label in summary.updated:
        typer.echo(f"updated   {label}")
    for label in summary.missing:
        typer.echo(f"not listed by Meta any more, marked {template_sync.MISSING_STATUS}: {label}")
    for label in summary.skipped:
        typer.echo(f"skipped (no body text or duplicate): {label}")
    typer.echo(f"synced {len(templates)} template(s) from Meta: {summary.line()}")


@app.command()
def seed() -> None:
    """Add the two neutral example templates as SANDBOX (idempotent)."""
    settings = load_settings()
    with cli_session(settings) as session:
        added = service.ensure_seed_templates(session, actor=cli_principal())
    typer.echo(f"added {added} seed template(s)")


@app.command("list")
def list_command() -> None:
    """Every template with its status and whether a campaign may use it."""
    settings = load_settings()
    with cli_session(settings) as session:
        templates = service.list_templates(session)
        if not templates:
            typer.echo("no templates; run `spi-reminder templates seed` or `... sync`")
            return
        for t in templates:
            problem = service.usable_problem(t)
            state = "usable" if problem is None else f"not usable: {problem}"
            typer.echo(
                f"{t.id}\t{t.name}/{t.language}\t{t.status}\t{t.category}\t{t.source}\t{state}"
            )
