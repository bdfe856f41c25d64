"""Act on one webhook batch inside the caller's transaction and say which replies to send.

Keyword handling logs nothing and counts every text alike: a line or a counter per STOP, HAPUS,
DATA or DAFTAR, next to anything else of the same moment, would link a person to a decision.

Nothing from an inbound message is stored but: a keyed hash of its id for eight days (Meta
redelivers for up to seven), a pending DAFTAR (blind index + OPD, 24 hours plus a day of grace
to answer "expired"), and the once-a-day auto-reply marker (a keyed hash of blind index and
day). Replies are returned, not sent: the router sends them after the commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete
from sqlmodel import Session, col, select

from app.config import Settings
from app.db import utcnow
from app.enrolment import (
    erasure,
    held_data,
    number_change,
    optout,
    self_enrol,
    suppression_list,
)
from app.enrolment.models import SuppressionSource
from app.enrolment.phones import mask_phone
from app.messaging.inbound import Batch, InboundMessage, MessageKind, PreferenceEvent
from app.opds.models import Opd
from app.security import PhoneVault
from app.templates.rendering import format_date_id
from app.webhook import metrics, replies, statuses
from app.webhook.keywords import OTHER, Command, Parsed
from app.webhook.models import AutoReplyMarker, InboundSeen, PendingSignup

SEEN_FOR = timedelta(days=8)
SIGNUP_VALID_FOR = timedelta(hours=24)
SIGNUP_GRACE = timedelta(hours=24)  # an expired request is kept this long to say so
REPLY_DAY_ZONE = ZoneInfo("Asia/Jakarta")
_ZONE_NAMES = {
    "Asia/Jakarta": "WIB",
    "Asia/Pontianak": "WIB",
    "Asia/Makassar": "WITA",
    "Asia/Jayapura": "WIT",
}
_CODE_CHARS = re.compile(r"[^A-Z0-9]")


@dataclass(frozen=True, slots=True)
class OutgoingReply:
    """A free-form reply to send after the commit; its repr never shows the number."""

    to: str
    body: str = field(repr=False)

    def __repr__(self) -> str:
        return f"OutgoingReply(to={mask_phone(self.to)})"


@dataclass
class Outcome:
    """What one batch did (counts only) and the replies it asks for."""

    replies: list[OutgoingReply] = field(default_factory=list)
    messages: int = 0
    duplicates: int = 0
    without_number: int = 0
    preferences: int = 0
    opted_out: int = 0  # STOP, HAPUS or WhatsApp's marketing stop: sending must halt at once
    statuses: statuses.StatusSummary = field(default_factory=statuses.StatusSummary)


@dataclass
class _Context:
    session: Session
    vault: PhoneVault
    settings: Settings
    texts: replies.Replies
    now: datetime
    outcome: Outcome

    def reply(self, e164: str, key: str, **values: object) -> None:
        body = self.texts.render(key, institution=self.settings.institution_name, **values)
        self.outcome.replies.append(OutgoingReply(to=e164, body=body))


def process(
    session: Session,
    *,
    batch: Batch[Parsed],
    vault: PhoneVault,
    settings: Settings,
    now: datetime | None = None,
) -> Outcome:
    """Apply every status, message and preference of the batch; return the replies to send."""
    now = now or utcnow()
    outcome = Outcome()
    outcome.statuses = statuses.apply_statuses(session, batch.statuses, vault=vault, now=now)
    if batch.messages or batch.preferences:
        purge_expired(session, now=now)
    ctx = _Context(session, vault, settings, replies.for_settings(settings), now, outcome)
    for message in batch.messages:
        _handle_message(ctx, message)
    for preference in batch.preferences:
        _handle_preference(ctx, preference)
    return outcome


def purge_expired(session: Session, *, now: datetime) -> None:
    """Drop expired de-duplication keys, pending sign-ups and auto-reply markers."""
    session.execute(delete(InboundSeen).where(col(InboundSeen.expires_at) < now))
    session.execute(delete(PendingSignup).where(col(PendingSignup.expires_at) < now - SIGNUP_GRACE))
    yesterday = now.astimezone(REPLY_DAY_ZONE).date() - timedelta(days=1)
    session.execute(delete(AutoReplyMarker).where(col(AutoReplyMarker.day) < yesterday))


def _first_time(ctx: _Context, message_id: str) -> bool:
    """Record a message id (as a keyed hash); False if it was handled before."""
    key = ctx.vault.blind_index("inbound-message|" + message_id)
    return suppression_list.insert_if_absent(
        ctx.session, InboundSeen, {"key": key, "expires_at": ctx.now + SEEN_FOR}
    )


def _handle_message(ctx: _Context, message: InboundMessage[Parsed]) -> None:
    ctx.outcome.messages += 1
    if message.message_id is not None and not _first_time(ctx, message.message_id):
        ctx.outcome.duplicates += 1
        metrics.INBOUND.labels("duplicate").inc()
        return
    if message.kind is MessageKind.ignored:
        metrics.INBOUND.labels("quiet").inc()
        return
    if message.sender_digits is None:
        # Only a business-scoped user id: no number to act on or answer. Never an error.
        ctx.outcome.without_number += 1
        metrics.INBOUND.labels("no_number").inc()
        return
    e164 = "+" + message.sender_digits
    index = ctx.vault.blind_index(e164)
    if message.kind is MessageKind.number_changed:
        if message.new_number_digits is not None:
            number_change.change_number(
                ctx.session,
                vault=ctx.vault,
                old_index=index,
                new_e164="+" + message.new_number_digits,
                now=ctx.now,
            )
            _drop_pending(ctx, index)
        metrics.INBOUND.labels("number_changed").inc()
        return
    parsed = message.reading if message.reading is not None else OTHER
    command = parsed.command if message.kind is MessageKind.command else Command.other
    handler = _HANDLERS[command]
    metrics.INBOUND.labels("handled").inc()
    handler(ctx, e164, index, parsed)


def _stop(ctx: _Context, e164: str, index: str, _parsed: Parsed) -> None:
    optout.stop(ctx.session, index=index, now=ctx.now)
    ctx.outcome.opted_out += 1
    _drop_pending(ctx, index)
    ctx.reply(e164, "stop")


def _resume(ctx: _Context, e164: str, index: str, _parsed: Parsed) -> None:
    result = optout.resume(ctx.session, vault=ctx.vault, e164=e164, now=ctx.now)
    opd = _opd_name(ctx, result.opd_id)
    keys = {
        optout.ResumeOutcome.resumed: "resume_done",
        optout.ResumeOutcome.already_active: "resume_already_active",
        optout.ResumeOutcome.erased: "resume_erased",
        optout.ResumeOutcome.not_enrolled: "resume_not_enrolled",
        optout.ResumeOutcome.still_suppressed: "resume_not_enrolled",
    }
    ctx.reply(e164, keys[result.outcome], opd=opd)


def _help(ctx: _Context, e164: str, _index: str, _parsed: Parsed) -> None:
    ctx.reply(e164, "help")


def _data(ctx: _Context, e164: str, index: str, _parsed: Parsed) -> None:
    texts = ctx.texts
    held = held_data.describe(ctx.session, vault=ctx.vault, index=index)
    blocks = [texts.render("data_header", phone=mask_phone(e164))]
    if not held.enrolments:
        blocks.append(texts.text("data_none"))
    for item in held.enrolments:
        local = item.enrolled_at.astimezone(ZoneInfo(item.opd_timezone)).date()
        lines = [
            texts.render(
                "data_enrolment",
                opd=item.opd_name,
                enrolled_on=format_date_id(local),
                consent=_known(texts, "consent_", item.consent_method),
                status=_known(texts, "status_", item.status),
                sent=item.reminders_sent,
            )
        ]
        if item.label:
            hidden = replies.has_link(item.label)
            lines.append(
                texts.text("data_label_hidden")
                if hidden
                else texts.render("data_label", label=item.label)
            )
        if item.unreachable:
            lines.append(texts.text("data_unreachable"))
        blocks.append("\n".join(lines))
    pending = _pending(ctx, index)
    if pending is not None and pending[0].expires_at > ctx.now:
        signup, opd = pending
        local_until = signup.expires_at.astimezone(ZoneInfo(opd.timezone))
        until = (
            f"{format_date_id(local_until.date())} pukul {local_until:%H.%M} "
            f"{_ZONE_NAMES.get(opd.timezone, opd.timezone)}"
        )
        blocks.append(texts.render("data_pending", opd=opd.name, until=until))
    blocks.append(
        texts.render(
            "data_suppression",
            suppression=_known(texts, "suppression_", held.suppression or "none"),
        )
    )
    blocks.append(texts.render("data_footer", institution=ctx.settings.institution_name))
    ctx.outcome.replies.append(OutgoingReply(to=e164, body="\n\n".join(blocks)))


def _known(texts: replies.Replies, prefix: str, value: str) -> str:
    try:
        return texts.text(prefix + value)
    except KeyError:
        return value


def _erase(ctx: _Context, e164: str, index: str, _parsed: Parsed) -> None:
    erasure.erase(ctx.session, index=index, now=ctx.now)
    ctx.outcome.opted_out += 1
    _drop_pending(ctx, index)
    ctx.reply(e164, "erase")


def _signup(ctx: _Context, e164: str, index: str, parsed: Parsed) -> None:
    if not parsed.argument:
        ctx.reply(e164, "signup_usage")
        return
    opd = _find_opd(ctx.session, parsed.argument)
    if opd is None:
        ctx.reply(e164, "signup_unknown_code")
        return
    suppression = suppression_list.suppression_of(ctx.session, index)
    listed_opd = suppression_list.listing_opd(ctx.session, index)
    # A suppressed number's listings are not being messaged: DAFTAR is how its owner returns.
    if listed_opd is not None and suppression is None:
        ctx.reply(e164, "signup_already_enrolled", opd=_opd_name(ctx, listed_opd))
        return
    assert opd.id is not None
    _drop_pending(ctx, index)
    ctx.session.add(
        PendingSignup(phone_index=index, opd_id=opd.id, expires_at=ctx.now + SIGNUP_VALID_FOR)
    )
    ctx.session.flush()
    body = ctx.texts.render(
        "signup_notice",
        institution=ctx.settings.institution_name,
        opd=opd.name,
        hours=int(SIGNUP_VALID_FOR.total_seconds() // 3600),
        notice_version=ctx.settings.privacy_notice_version,
    )
    if suppression is not None:
        note = "signup_note_erased" if suppression.source == "erase" else "signup_note_stopped"
        body = f"{body}\n\n{ctx.texts.text(note)}"
    ctx.outcome.replies.append(OutgoingReply(to=e164, body=body))


def _confirm(ctx: _Context, e164: str, index: str, parsed: Parsed) -> None:
    pending = _pending(ctx, index)
    if pending is None:
        # A YA with nothing to confirm is ordinary text.
        _auto_reply(ctx, e164, index, parsed)
        return
    signup, opd = pending
    _drop_pending(ctx, index)
    if signup.expires_at <= ctx.now:
        ctx.reply(e164, "confirm_expired")
        return
    result = self_enrol.enrol_self(
        ctx.session,
        vault=ctx.vault,
        opd=opd,
        e164=e164,
        now=ctx.now,
        notice_version=ctx.settings.privacy_notice_version,
        regions=ctx.settings.phone_regions,
    )
    if result.outcome is self_enrol.SelfEnrolOutcome.enrolled:
        ctx.reply(e164, "confirm_done", opd=opd.name)
    elif result.outcome is self_enrol.SelfEnrolOutcome.already_enrolled:
        ctx.reply(e164, "signup_already_enrolled", opd=_opd_name(ctx, result.opd_id))
    else:
        ctx.reply(e164, "confirm_not_eligible")


def _auto_reply(ctx: _Context, e164: str, index: str, _parsed: Parsed) -> None:
    """At most one neutral reply per number per day; nothing else is kept."""
    day: date = ctx.now.astimezone(REPLY_DAY_ZONE).date()
    marker = ctx.vault.blind_index(f"auto-reply|{index}|{day.isoformat()}")
    if suppression_list.insert_if_absent(
        ctx.session, AutoReplyMarker, {"marker": marker, "day": day}
    ):
        ctx.reply(e164, "auto_reply")


_HANDLERS = {
    Command.stop: _stop,
    Command.resume: _resume,
    Command.help: _help,
    Command.data: _data,
    Command.erase: _erase,
    Command.signup: _signup,
    Command.confirm: _confirm,
    Command.other: _auto_reply,
}


def _handle_preference(ctx: _Context, preference: PreferenceEvent) -> None:
    """WhatsApp's own marketing stop/resume for our business."""
    ctx.outcome.preferences += 1
    metrics.INBOUND.labels("handled").inc()
    if "marketing" not in preference.category or preference.value not in ("stop", "resume"):
        return
    if preference.user_digits is None:
        ctx.outcome.without_number += 1
        return
    e164 = "+" + preference.user_digits
    if preference.value == "stop":
        ctx.outcome.opted_out += 1
        optout.stop(
            ctx.session,
            index=ctx.vault.blind_index(e164),
            now=ctx.now,
            source=SuppressionSource.marketing_optout,
        )
    else:
        optout.resume(
            ctx.session,
            vault=ctx.vault,
            e164=e164,
            now=ctx.now,
            lift=(SuppressionSource.marketing_optout,),
        )


def _drop_pending(ctx: _Context, index: str) -> None:
    ctx.session.execute(delete(PendingSignup).where(col(PendingSignup.phone_index) == index))


def _pending(ctx: _Context, index: str) -> tuple[PendingSignup, Opd] | None:
    row = ctx.session.exec(
        select(PendingSignup, Opd)
        .join(Opd, col(Opd.id) == col(PendingSignup.opd_id))
        .where(PendingSignup.phone_index == index)
        .execution_options(populate_existing=True)
    ).first()
    return (row[0], row[1]) if row is not None else None


def _opd_name(ctx: _Context, opd_id: int | None) -> str:
    if opd_id is None:
        return "-"
    opd = ctx.session.get(Opd, opd_id)
    return opd.name if opd is not None else "-"


def _find_opd(session: Session, words: tuple[str, ...]) -> Opd | None:
    """The OPD whose code matches the words after DAFTAR (ignoring '.', '_', '-' and spaces)."""
    candidates = ["".join(words[:n]) for n in range(len(words), 0, -1)]
    keys = [_CODE_CHARS.sub("", c.upper()) for c in candidates]
    opds = {_CODE_CHARS.sub("", opd.code.upper()): opd for opd in session.exec(select(Opd)).all()}
    for key in keys:
        if key and key in opds:
            return opds[key]
    return None
