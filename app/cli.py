"""`spi-reminder`: serve, migrate, tokens, OPDs, imports and key rotation."""

import gc
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import col, select

from app import cli_support, schema_migrations
from app.auth import commands as user_commands
from app.auth import service as auth_service
from app.auth.models import Role
from app.auth.principal import cli_principal
from app.cli_support import cli_session, load_settings
from app.enrolment.importing import ImportOptions, ImportReport, import_enrolments
from app.enrolment.limits import SpreadsheetLimits
from app.enrolment.models import Enrolment
from app.enrolment.rows import FileFormatError, iter_rows
from app.errors import AppError
from app.opds import service as opd_service
from app.opds.schemas import OpdCreate
from app.outbox import commands as outbox_commands
from app.retention import commands as retention_commands
from app.sandbox import commands as sandbox_commands
from app.scheduler import commands as scheduler_commands
from app.security import PhoneVault, load_keys, prepend_key_to_file
from app.sender import commands as sender_commands
from app.templates import commands as templates_commands
from app.templates import service as templates_service

cli = typer.Typer(help="Pengingat SPI: privacy-first WhatsApp reminders for KPK's SPI.")
token_cli = typer.Typer(help="API tokens (shown once, stored as a hash).")
opd_cli = typer.Typer(help="OPDs (departments).")
enrol_cli = typer.Typer(help="Enrolments.")
keys_cli = typer.Typer(help="Encryption keys.")
cli.add_typer(token_cli, name="token")
cli.add_typer(opd_cli, name="opd")
cli.add_typer(enrol_cli, name="enrol")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(templates_commands.app, name="templates")
cli.add_typer(sandbox_commands.app, name="sandbox")
cli.command("worker")(outbox_commands.worker)
cli.command("scheduler")(scheduler_commands.scheduler)
cli.command("purge")(retention_commands.purge)
cli.add_typer(user_commands.app, name="user")
cli.command("doctor")(sender_commands.doctor)


def _fail(exc: AppError) -> None:
    typer.echo(f"error ({exc.code}): {exc.message}", err=True)
    raise typer.Exit(code=2)


@cli.command()
def migrate() -> None:
    """Apply pending database migrations (safe to run from several processes at once)."""
    settings = load_settings()
    cli_support.migrate_database(settings)
    where = cli_support.describe_database(settings)
    typer.echo(f"database at {schema_migrations.head_revision()} ({where})")


@cli.command("config")
def show_config() -> None:
    """Print where data and database are, and the other settings (never a secret)."""
    settings = load_settings()
    typer.echo(f"SPI_DATA_DIR\t{settings.data_dir}")
    typer.echo(f"database\t{cli_support.describe_database(settings)}")
    for name, value in settings.model_dump().items():
        if name in ("data_dir", "database_url"):
            continue
        shown = "(set)" if hasattr(value, "get_secret_value") else value
        if hasattr(value, "get_secret_value") and not value.get_secret_value():
            shown = "(empty)"
        typer.echo(f"SPI_{name.upper()}\t{shown}")


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
) -> None:
    """Apply migrations, then run the API (with the scheduler and a worker in-process)."""
    import uvicorn

    from app.main import create_app

    settings = load_settings()
    cli_support.exit_unless_allowed(settings)
    cli_support.migrate_database(settings)
    if not settings.whatsapp_access_token.get_secret_value():
        # Embedded default: the sandbox stands in for Meta, so give it the neutral seed templates.
        try:
            with cli_session(settings) as session:
                added = templates_service.ensure_seed_templates(session, actor=cli_principal())
        except IntegrityError:
            # Another `serve` starting at the same moment on this database seeded them first.
            added = 0
        if added:
            logging.getLogger(__name__).info("templates.seeded count=%d", added)
    app = create_app(settings)
    # Everything built so far lives as long as the process. Freezing it keeps the cyclic garbage
    # collector from rescanning it: a full collection otherwise stalled every request for about
    # 120 ms a few times a second under webhook load (bench/webhook).
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        timeout_graceful_shutdown=20,
        # create_app reads forwarded headers itself, from SPI_FORWARDED_ALLOW_IPS only.
        proxy_headers=False,
    )


@token_cli.command("create")
def token_create(
    role: Annotated[Role, typer.Option(help="admin, coordinator or inspectorate")],
    name: Annotated[str, typer.Option(help="who holds the token, e.g. 'Koordinator Dinkes'")],
    opd: Annotated[str | None, typer.Option(help="OPD code (coordinators only)")] = None,
) -> None:
    """Create an API token and print it once."""
    settings = load_settings()
    try:
        with cli_session(settings) as session:
            token, secret = auth_service.create_token(
                session, actor=cli_principal(), role=role, name=name, opd_code=opd
            )
            token_id = token.id
    except AppError as exc:
        _fail(exc)
    typer.echo(f"token id {token_id} ({role.value}); store it now, it is not shown again:")
    typer.echo(secret)


@token_cli.command("list")
def token_list() -> None:
    """List tokens (never their secrets)."""
    with cli_session(load_settings()) as session:
        for t in auth_service.list_tokens(session):
            state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
            typer.echo(f"{t.id}\t{t.role}\topd={t.opd_id or '-'}\t{state}\t{t.name}")


@token_cli.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke a token at once."""
    try:
        with cli_session(load_settings()) as session:
            auth_service.revoke_token(session, actor=cli_principal(), token_id=token_id)
    except AppError as exc:
        _fail(exc)
    typer.echo(f"token {token_id} revoked")


@opd_cli.command("create")
def opd_create(
    code: str,
    name: str,
    timezone: Annotated[str, typer.Option(help="Asia/Jakarta… or WIB/WITA/WIT")] = "Asia/Jakarta",
) -> None:
    """Create one OPD."""
    try:
        data = OpdCreate(code=code, name=name, timezone=timezone)
        with cli_session(load_settings()) as session:
            opd_service.create_opd(session, actor=cli_principal(), data=data)
    except AppError as exc:
        _fail(exc)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(f"OPD {data.code} created")


@opd_cli.command("list")
def opd_list() -> None:
    """List OPDs."""
    with cli_session(load_settings()) as session:
        for o in opd_service.list_opds(session, viewer=cli_principal()):
            typer.echo(f"{o.code}\t{o.timezone}\t{o.name}")


@opd_cli.command("import")
def opd_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    partial: Annotated[
        bool, typer.Option(help="create the valid rows even if some are bad")
    ] = False,
) -> None:
    """Create OPDs from a CSV with columns code/kode, name/nama, timezone/zona_waktu."""
    try:
        rows = opd_service.read_opd_csv(file.read_text(encoding="utf-8-sig"))
        with cli_session(load_settings()) as session:
            report = opd_service.import_opds(
                session, actor=cli_principal(), rows=rows, partial=partial
            )
    except AppError as exc:
        _fail(exc)
    except UnicodeDecodeError as exc:
        typer.echo("error: the file is not UTF-8 text", err=True)
        raise typer.Exit(code=2) from exc
    for r in report.rows:
        if r.outcome != "created":
            typer.echo(f"row {r.row}: {r.outcome} {r.code or ''} {r.reason or ''}".rstrip())
    typer.echo(
        f"created {report.created}, existing {report.existing}, invalid {report.invalid}"
        + ("" if report.applied else " — nothing created (use --partial to apply valid rows)")
    )
    if not report.applied:
        raise typer.Exit(code=1)


@enrol_cli.command("import")
def enrol_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    opd: Annotated[str, typer.Option(help="OPD code")],
    all_or_nothing: Annotated[bool, typer.Option(help="enrol nothing if any row is bad")] = False,
    default_consent_method: Annotated[
        str | None, typer.Option(help="paper_form or digital_form, for rows without one")
    ] = None,
    report_file: Annotated[
        Path | None, typer.Option("--report", help="write the row-level JSON report here")
    ] = None,
) -> None:
    """Enrol staff from a CSV/XLSX file; prints a summary and the bad rows."""
    if default_consent_method not in (None, "paper_form", "digital_form"):
        typer.echo("error: --default-consent-method must be paper_form or digital_form", err=True)
        raise typer.Exit(code=2)
    settings = load_settings()
    vault = PhoneVault(load_keys(settings))
    report = ImportReport()
    opts = ImportOptions.from_settings(
        settings, all_or_nothing=all_or_nothing, default_consent_method=default_consent_method
    )
    try:
        with cli_session(settings) as session, file.open("rb") as fh:
            target = opd_service.get_by_code(session, code=opd)
            summary = import_enrolments(
                session,
                vault=vault,
                actor=cli_principal(),
                opd=target,
                rows=iter_rows(
                    fh, filename=file.name, limits=SpreadsheetLimits.from_settings(settings)
                ),
                opts=opts,
                report=report,
            )
        for row in report.iter_rows():
            if row["outcome"] not in ("enrolled", "not_applied"):
                typer.echo(f"row {row['row']}: {row['outcome']} — {row['reason']}")
        if report_file is not None:
            with report_file.open("wb") as out:
                for chunk in report.iter_json({"opd": opd.upper()}):
                    out.write(chunk)
    except AppError as exc:
        _fail(exc)
    except FileFormatError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    finally:
        report.close()
    typer.echo(json.dumps(summary.model_dump()))
    if not summary.applied:
        raise typer.Exit(code=1)


@keys_cli.command("generate")
def keys_generate() -> None:
    """Print a new Fernet key to put in front of SPI_ENCRYPTION_KEYS."""
    from cryptography.fernet import Fernet

    typer.echo(Fernet.generate_key().decode())


@keys_cli.command("rotate")
def keys_rotate(
    new: Annotated[
        bool, typer.Option(help="development key file only: add a new newest key first")
    ] = False,
) -> None:
    """Re-encrypt every stored number and label with the newest key."""
    settings = load_settings()
    if new:
        if settings.encryption_keys.get_secret_value():
            typer.echo(
                "error: keys come from SPI_ENCRYPTION_KEYS; put the new key first there", err=True
            )
            raise typer.Exit(code=2)
        load_keys(settings)
        prepend_key_to_file(settings)
    vault = PhoneVault(load_keys(settings))
    count = 0
    with cli_session(settings) as session:
        rows = session.exec(
            select(Enrolment.id, Enrolment.phone_ciphertext, Enrolment.label_ciphertext).where(
                col(Enrolment.phone_ciphertext).is_not(None)
            )
        ).all()
        for enrolment_id, phone, label in rows:
            session.execute(
                update(Enrolment)
                .where(col(Enrolment.id) == enrolment_id)
                .values(
                    phone_ciphertext=vault.rotate(phone) if phone else None,
                    label_ciphertext=vault.rotate(label) if label else None,
                )
            )
            count += 1
    typer.echo(f"re-encrypted {count} enrolments with the newest key")


def main() -> None:
    """Console-script entry point: configuration and database trouble is one line, exit 2."""
    try:
        cli(prog_name="spi-reminder")
    except ValidationError as exc:
        # Commands that read settings without load_settings() (worker, scheduler, sandbox).
        cli_support.report_invalid_settings(exc)
        sys.exit(2)
    except SQLAlchemyError as exc:
        typer.echo(f"error: database: {type(exc).__name__}: {str(exc).splitlines()[0]}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
