"""Pre-flight: is the WhatsApp side ready to send a round? Each check says what to do.

Run by `spi-reminder doctor`, `GET /api/v1/doctor`, the dashboard, and (logged) at production
start. Graph calls go through `app.messaging.account_client`; what the database knows
(campaigns, their templates, the reach of the next round, the sender's restrictions) is read
first by `app.sender.preflight`. Titles, findings and advice are in Bahasa Indonesia.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from sqlalchemy import Engine

from app.config import Settings
from app.db import read_scope, utcnow
from app.messaging.account_client import AccountClient, answer_handshake
from app.messaging.client import GraphApiError, TemplateInfo
from app.messaging.health import AppSubscription, PhoneHealth
from app.messaging.results import SendOutcome
from app.messaging.runtime import Messenger
from app.security import PhoneVault
from app.sender import advice
from app.sender.preflight import Check, Local, Status, read_local

__all__ = ["Check", "Local", "Report", "Status", "check_app", "read_local_now", "run"]

logger = logging.getLogger(__name__)

SUMMARY_WORDS = {
    Status.ok: "OK",
    Status.warn: "peringatan",
    Status.fail: "gagal",
    Status.skip: "dilewati",
}
_AUTH_REASONS = frozenset(
    {"access_token_invalid", "auth_exception", "permission_denied", "unauthorized"}
)


@dataclass
class Report:
    """All checks of one run, in order."""

    target: str  # meta or sandbox
    checks: list[Check]

    @property
    def ok(self) -> bool:
        """No check failed."""
        return all(c.status is not Status.fail for c in self.checks)

    def summary(self) -> str:
        """One line (Bahasa Indonesia): how many checks passed, warned, failed, were skipped."""
        counts = {s: sum(1 for c in self.checks if c.status is s) for s in Status}
        return ", ".join(f"{n} {SUMMARY_WORDS[s]}" for s, n in counts.items() if n)


def _refused(exc: GraphApiError) -> str:
    result = exc.result
    code = f", kode {result.error_code}" if result.error_code is not None else ""
    if result.outcome is SendOutcome.UNKNOWN or result.reason.startswith("transport"):
        return f"Meta tidak menjawab ({result.reason})"
    return f"Meta menolak permintaan ({result.reason}{code})"


async def run(
    client: AccountClient,
    *,
    settings: Settings,
    local: Local,
    target: str,
    handshake_transport: httpx.AsyncBaseTransport | None = None,
) -> Report:
    """Every check against Meta (or the sandbox) and the database's view."""
    checks: list[Check] = []
    token = await _token(client)
    checks.append(token)
    if token.status is Status.fail and token.blocking:
        # Every later call would be refused the same way: say so once.
        checks += [advice.skipped_for_token(key) for key in advice.GRAPH_CHECKS]
        checks += _local_checks(local, health=None, meta_templates=None, target=target)
        return Report(target, checks)
    health: PhoneHealth | None = None
    try:
        health = await client.phone_health()
    except GraphApiError as exc:
        checks.append(advice.phone_unreadable(_refused(exc)))
    if health is not None:
        checks += [
            advice.registration(health),
            advice.display_name(health),
            advice.quality(health, flagged=local.flagged),
            advice.coexistence(health),
        ]
    checks.append(await _subscribed(client, settings))
    subscription, fields_check = await _app_fields(client, settings)
    checks.append(fields_check)
    checks.append(
        await _handshake(settings, subscription, target=target, transport=handshake_transport)
    )
    meta_templates: list[TemplateInfo] | None
    try:
        meta_templates = await client.list_templates()
    except GraphApiError:
        meta_templates = None
    checks += _local_checks(local, health=health, meta_templates=meta_templates, target=target)
    return Report(target, checks)


async def _token(client: AccountClient) -> Check:
    try:
        permissions = await client.permissions()
    except GraphApiError as exc:
        blocking = exc.result.reason in _AUTH_REASONS or exc.result.outcome is SendOutcome.HALT
        return advice.token_refused(_refused(exc), blocking=blocking)
    return advice.token(permissions.missing)


async def _subscribed(client: AccountClient, settings: Settings) -> Check:
    try:
        app_ids = await client.subscribed_app_ids()
    except GraphApiError as exc:
        return advice.subscription_unreadable(_refused(exc))
    return advice.subscription(app_ids, expected_app_id=settings.whatsapp_app_id or None)


async def _app_fields(
    client: AccountClient, settings: Settings
) -> tuple[AppSubscription | None, Check]:
    secret = settings.whatsapp_app_secret.get_secret_value()
    if not settings.whatsapp_app_id or not secret:
        return None, advice.fields_unknown()
    try:
        subscription = await client.app_subscription(
            app_id=settings.whatsapp_app_id, app_secret=secret
        )
    except GraphApiError as exc:
        return None, advice.fields_unreadable(_refused(exc))
    return subscription, advice.fields(subscription)


async def _handshake(
    settings: Settings,
    subscription: AppSubscription | None,
    *,
    target: str,
    transport: httpx.AsyncBaseTransport | None,
) -> Check:
    url = settings.public_webhook_url or (subscription.callback_url if subscription else None)
    if not url:
        return advice.handshake_no_url(target=target)
    token = settings.whatsapp_verify_token.get_secret_value()
    if not token:
        return advice.handshake_no_token()
    result = await answer_handshake(url=url, verify_token=token, transport=transport)
    return advice.handshake(result)


def _local_checks(
    local: Local,
    *,
    health: PhoneHealth | None,
    meta_templates: list[TemplateInfo] | None,
    target: str,
) -> list[Check]:
    checks = [advice.account(local)]
    limit = local.messaging_limit
    if health is not None and health.messaging_limit_tier is not None:
        limit = advice.limit_from(health.messaging_limit_tier, default=limit)
    checks.append(advice.messaging_limit(limit, reach=local.reach, days=_days(local.reach, limit)))
    listed = None
    if meta_templates is not None:  # an empty listing: Meta has no template at all
        listed = {(t["name"], t["language"]): t for t in meta_templates}
    checks += [advice.campaign_template(c, listed=listed, target=target) for c in local.campaigns]
    return checks


def _days(reach: int | None, limit: int | None) -> int:
    if not reach or limit is None or limit <= 0:
        return 1
    return math.ceil(reach / limit)


def read_local_now(engine: Engine, vault: PhoneVault) -> Local:
    """The database's side, in its own short transaction."""
    with read_scope(engine) as session:
        return read_local(session, vault=vault, now=utcnow())


async def check_app(
    app: FastAPI, *, handshake_transport: httpx.AsyncBaseTransport | None = None
) -> Report:
    """Run every check with the app's messenger (Meta, or the sandbox it stands in with)."""
    local = await asyncio.to_thread(read_local_now, app.state.engine, app.state.vault)
    messenger: Messenger = app.state.whatsapp
    return await run(
        messenger.account(),
        settings=app.state.settings,
        local=local,
        target="sandbox" if messenger.is_sandbox else "meta",
        handshake_transport=handshake_transport,
    )


def log_report(report: Report) -> None:
    """Log every check (the production start-up summary): warnings and failures louder."""
    level = logging.INFO if report.ok else logging.ERROR
    logger.log(level, "doctor.summary target=%s %s", report.target, report.summary())
    for check in report.checks:
        if check.status in (Status.ok, Status.skip):
            logger.info("doctor.%s %s: %s", check.status.value, check.key, check.detail)
        else:
            logger.warning(
                "doctor.%s %s: %s Saran: %s", check.status.value, check.key, check.detail,
                check.advice or "-",
            )  # fmt: skip


async def log_at_startup(app: FastAPI) -> None:
    """Production start-up: run the pre-flight against Meta and log what it found."""
    log_report(await check_app(app))
