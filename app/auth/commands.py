"""`spi-reminder user …`: people who log in to the pages (the first admin starts here)."""

from collections.abc import Callable
from typing import Annotated

import typer
from sqlmodel import Session

from app.auth import user_admin, users
from app.auth.models import Role
from app.auth.principal import cli_principal
from app.cli_support import cli_session, load_settings
from app.errors import AppError

app = typer.Typer(help="User accounts for the pages (invited, password set by the person).")


def _fail(exc: AppError) -> None:
    typer.echo(f"error ({exc.code}): {exc.message}", err=True)
    raise typer.Exit(code=2)


@app.command("create")
def create(
    username: Annotated[str, typer.Option(help="login name, e.g. 'budi.dinkes'")],
    name: Annotated[str, typer.Option(help="full name shown on the pages")],
    role: Annotated[Role, typer.Option(help="admin, coordinator or inspectorate")],
    opd: Annotated[str | None, typer.Option(help="OPD code (coordinators only)")] = None,
    base_url: Annotated[
        str, typer.Option(help="the service's public address, to print a full link")
    ] = "",
) -> None:
    """Create an account and print its one-time invitation link (valid for three days)."""
    try:
        with cli_session(load_settings()) as session:
            invited = users.invite_user(
                session,
                actor=cli_principal(),
                username=username,
                display_name=name,
                role=role,
                opd_code=opd,
            )
            user_id, key = invited.user.id, invited.invitation_key
    except AppError as exc:
        _fail(exc)
    typer.echo(
        f"user {user_id} ({role.value}) invited; the link works once and is not shown again:"
    )
    _print_link(key, base_url)


@app.command("list")
def list_users() -> None:
    """List accounts (never a password hash or TOTP secret)."""
    with cli_session(load_settings()) as session:
        for user, opd in users.list_users(session):
            if user.disabled_at is not None:
                state = f"disabled {user.disabled_at:%Y-%m-%d}"
            elif user.password_hash is None:
                state = "invited"
            else:
                state = "active"
            two_factor = "totp" if user.totp_secret else "-"
            opd_code = opd.code if opd else "-"
            typer.echo(
                f"{user.id}\t{user.username}\t{user.role}\topd={opd_code}\t{state}\t{two_factor}"
                f"\t{user.display_name}"
            )


def _user_id(session: Session, username: str) -> int:
    user = users.get_by_username(session, username=username)
    if user is None or user.id is None:
        raise AppError(f"no user {username!r}", code="user_not_found", status_code=404)
    return user.id


def _print_link(key: str, base_url: str) -> None:
    path = f"/dashboard/invitation/{key}"
    typer.echo(base_url.rstrip("/") + path if base_url else path)


def _act(username: str, action: Callable[[Session, int], object], done: str) -> None:
    """Run an admin action on the named account in one transaction; one line of result."""
    try:
        with cli_session(load_settings()) as session:
            action(session, _user_id(session, username))
    except AppError as exc:
        _fail(exc)
    typer.echo(f"user {username}: {done}")


@app.command("disable")
def disable(username: str) -> None:
    """Disable an account; its sessions end at once."""
    _act(
        username,
        lambda session, user_id: user_admin.disable_user(
            session, actor=cli_principal(), user_id=user_id
        ),
        "disabled; their sessions have ended",
    )


@app.command("reinvite")
def reinvite(
    username: str,
    base_url: Annotated[
        str, typer.Option(help="the service's public address, to print a full link")
    ] = "",
) -> None:
    """A new one-time link; for an account already set up, its password is reset."""
    keys: list[str] = []
    _act(
        username,
        lambda session, user_id: keys.append(
            users.reinvite_user(session, actor=cli_principal(), user_id=user_id).invitation_key
        ),
        "re-invited; the link works once and is not shown again:",
    )
    _print_link(keys[0], base_url)


@app.command("reset-totp")
def reset_totp(username: str) -> None:
    """Turn an account's TOTP off (a lost phone); it is set up again at the next login."""
    _act(
        username,
        lambda session, user_id: user_admin.reset_totp(
            session, actor=cli_principal(), user_id=user_id
        ),
        "two-factor login reset; their sessions have ended",
    )
