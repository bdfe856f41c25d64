"""The account, number and template events the sandbox can play, on demand or by itself.

`trigger` changes the sandbox's account as Meta would and posts the signed notice Meta would
send (`app.sandbox.notices`); a submitted template is reviewed by itself after a moment.
Triggered from `POST /sandbox/events` or `spi-reminder sandbox event KIND [TEMPLATE]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from app.messaging.tiers import TIER_LIMITS, limit_of, tier_word
from app.sandbox import notices
from app.sandbox.account import SandboxAccount, SandboxTemplate

logger = logging.getLogger(__name__)

Poster = Callable[[dict[str, Any]], Awaitable[bool]]
TEMPLATE_STATUS_EVENTS = {
    "template-approved": "APPROVED",
    "template-rejected": "REJECTED",
    "template-paused": "PAUSED",
    "template-disabled": "DISABLED",
    "template-flagged": "FLAGGED",
    "template-reinstated": "REINSTATED",
}
TEMPLATE_EVENTS = (
    *TEMPLATE_STATUS_EVENTS,
    "template-marketing",
    "template-marketing-announced",
    "template-quality-green",
    "template-quality-yellow",
    "template-quality-red",
)
ACCOUNT_EVENTS = (
    "quality-flagged",
    "quality-unflagged",
    "quality-yellow",
    "limit-downgrade",
    "limit-upgrade",
    "limit-set",
    "throughput-upgrade",
    "account-restricted",
    "account-unrestricted",
    "account-disabled",
    "account-reinstated",
    "account-violation",
)
KINDS = (*TEMPLATE_EVENTS, *ACCOUNT_EVENTS)
_LADDER = [t for t, n in sorted(TIER_LIMITS.items(), key=lambda i: i[1] or 10**9)]
_STATUS_AFTER = {"FLAGGED": None, "REINSTATED": "APPROVED"}


class UnknownEvent(ValueError):
    """Not an event the sandbox can play, or one missing what it needs."""


class SandboxEvents:
    """Plays events against one sandbox account, posting through `post`."""

    def __init__(self, account: SandboxAccount, post: Poster) -> None:
        self.account = account
        self._post = post
        self._reviews: set[asyncio.Task[None]] = set()

    async def trigger(
        self,
        kind: str,
        *,
        template: str | None = None,
        language: str = "id",
        tier: str | None = None,
    ) -> dict[str, Any]:
        """Change the account as Meta would, post the notice; what was posted."""
        notice: tuple[str, dict[str, Any]] | None
        if kind in TEMPLATE_EVENTS:
            if not template:
                raise UnknownEvent(f"{kind} needs a template name")
            notice = self._template_event(kind, self.account.template_named(template, language))
        elif kind in ACCOUNT_EVENTS:
            notice = self._account_event(kind, tier)
        else:
            raise UnknownEvent(f"unknown event {kind!r}; one of: {', '.join(KINDS)}")
        if notice is None:
            return {"kind": kind, "posted": False}
        field, value = notice
        posted = await self._post(notices.envelope(field, value))
        logger.info("sandbox.event kind=%s posted=%s", kind, posted)
        return {"kind": kind, "field": field, "value": value, "posted": posted}

    def _template_event(self, kind: str, t: SandboxTemplate) -> tuple[str, dict[str, Any]]:
        ref = {"template_id": t.template_id, "name": t.name, "language": t.language}
        if kind in TEMPLATE_STATUS_EVENTS:
            event = TEMPLATE_STATUS_EVENTS[kind]
            t.status = _STATUS_AFTER.get(event, event) or t.status
            reason = {"REJECTED": "INCORRECT_CATEGORY", "PAUSED": "LOW_QUALITY"}.get(event, "NONE")
            return notices.template_status(**ref, event=event, reason=reason)
        if kind == "template-marketing":
            previous, t.category = t.category, "MARKETING"
            return notices.template_category(**ref, previous=previous, new="MARKETING")
        if kind == "template-marketing-announced":
            effective = int(time.time()) + 86400
            return notices.template_category_announced(
                **ref, current=t.category, correct="MARKETING", effective_at=effective
            )
        previous, t.quality = t.quality, kind.rsplit("-", 1)[1].upper()
        return notices.template_quality(**ref, previous=previous, new=t.quality)

    def _account_event(self, kind: str, tier: str | None) -> tuple[str, dict[str, Any]] | None:
        account = self.account
        if kind in ("quality-flagged", "quality-unflagged"):
            account.quality_rating = "RED" if kind == "quality-flagged" else "GREEN"
            event = "FLAGGED" if kind == "quality-flagged" else "UNFLAGGED"
            return notices.phone_quality(event=event, current_limit=account.tier)
        if kind == "quality-yellow":
            account.quality_rating = "YELLOW"  # no notice: Meta shows it on the next reading
            return None
        if kind in ("limit-downgrade", "limit-upgrade", "limit-set"):
            return self._limit_event(kind, tier)
        if kind == "throughput-upgrade":
            account.throughput_per_second = 1000
            return notices.phone_quality(event="THROUGHPUT_UPGRADE", current_limit="TIER_UNLIMITED")
        if kind in ("account-restricted", "account-unrestricted"):
            kinds = ["RESTRICTED_BIZ_INITIATED_MESSAGING"] if kind == "account-restricted" else []
            return notices.account_restriction(kinds=kinds)
        if kind in ("account-disabled", "account-reinstated"):
            state = "DISABLE" if kind == "account-disabled" else "REINSTATE"
            return notices.account_ban(state=state)
        return notices.account_violation(kind="SCAM")

    def _limit_event(self, kind: str, tier: str | None) -> tuple[str, dict[str, Any]]:
        account = self.account
        old = account.tier
        if tier is not None:
            new = tier_word(tier)
            if new is None or new not in TIER_LIMITS:
                raise UnknownEvent(f"unknown tier {tier!r}; one of: {', '.join(_LADDER)}")
        else:
            step = -1 if kind == "limit-downgrade" else 1
            at = _LADDER.index(old) if old in _LADDER else 1
            new = _LADDER[max(0, min(len(_LADDER) - 1, at + step))]
        limit = limit_of(new)
        account.messaging_limit = 0 if limit is None else limit
        if kind == "limit-set":
            return notices.capability(people_per_day=limit)
        event = "DOWNGRADE" if kind == "limit-downgrade" else "UPGRADE"
        return notices.phone_quality(event=event, current_limit=new, old_limit=old)

    def review_later(self, template: SandboxTemplate) -> None:
        """Meta's review: after a moment the template is APPROVED (or REJECTED)."""

        async def review() -> None:
            await asyncio.sleep(self.account.review_delay_seconds)
            outcome = self.account.template_review
            kind = "template-rejected" if outcome == "REJECTED" else "template-approved"
            await self.trigger(kind, template=template.name, language=template.language)

        task = asyncio.create_task(review(), name="sandbox-template-review")
        self._reviews.add(task)
        task.add_done_callback(self._reviews.discard)

    async def aclose(self) -> None:
        """Stop pending reviews."""
        for task in list(self._reviews):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
