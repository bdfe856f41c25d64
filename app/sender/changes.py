"""Apply what Meta says about the number (a reading or a notice) to the sender state.

Each group of facts (limit, throughput, quality, flag, account) moves only for a source at
least as new as the one that last set it: a notice delivered late changes nothing, and one
delivered twice finds its values already there. A change is audited; a worsening raises an
alert (`app.sender.alerts`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.audit import service as audit_service
from app.auth.principal import cli_principal
from app.messaging.account_events import AccountUpdate, CapabilityUpdate, PhoneQualityUpdate
from app.messaging.health import PhoneHealth
from app.messaging.tiers import HIGH_THROUGHPUT_LEVEL, known_limit, limit_of
from app.sender import alerts
from app.sender.models import SenderState

logger = logging.getLogger(__name__)

META = cli_principal("meta")
QUALITY_ORDER = {"GREEN": 0, "YELLOW": 1, "RED": 2}
STATE_ROW_ID = 1
_DISABLING = frozenset({"DISABLE", "SCHEDULE_FOR_DISABLE"})


def state_row(session: Session, *, lock: bool = False) -> SenderState:
    """The sender's one state row, created empty on first use (locked when `lock`)."""
    stmt = select(SenderState).order_by(col(SenderState.id))
    if lock:
        # Two replicas applying notices at once must not overwrite each other's change.
        stmt = stmt.with_for_update()
    state = session.exec(stmt).first()
    if state is None:
        # The start-up reading and the scheduler's first refresh may both find no row: the fixed
        # id makes the second insert fail (and wait for the first), and it then reads that row.
        try:
            with session.begin_nested():
                session.add(SenderState(id=STATE_ROW_ID, phone_number_id=""))
        except IntegrityError:
            pass
        state = session.exec(stmt).one()
    return state


def _newer(recorded: datetime | None, at: datetime) -> bool:
    return recorded is None or at >= recorded


def _audit(session: Session, state: SenderState, what: str, detail: dict[str, Any]) -> None:
    audit_service.record(
        session,
        actor=META,
        action=f"sender.{what}",
        object_type="sender",
        object_id=state.id,
        detail=detail,
    )


def _lower(old: str | None, new: str) -> bool:
    if not known_limit(old) or not known_limit(new):
        return False
    before, after = limit_of(old), limit_of(new)
    return after is not None and (before is None or after < before)


def set_limit(
    session: Session, state: SenderState, *, tier: str | None, at: datetime, source: str
) -> bool:
    """Record the messaging limit; a lower one raises an alert. True if it changed."""
    if not known_limit(tier) or not _newer(state.messaging_limit_at, at):
        return False
    assert tier is not None
    state.messaging_limit_at = at
    if tier == state.messaging_limit_tier:
        return False
    old, state.messaging_limit_tier = state.messaging_limit_tier, tier
    _audit(session, state, "messaging_limit", {"from": old, "to": tier, "source": source})
    if _lower(old, tier):
        alerts.raise_alert(
            session,
            kind=alerts.LIMIT_DOWNGRADE,
            message=(
                f"Meta menurunkan batas pesan dari {limit_text(old)} menjadi {limit_text(tier)} "
                "orang per 24 jam. Putaran pengingat berikutnya menjangkau lebih sedikit orang; "
                "periksa kualitas nomor dan templat."
            ),
            event_at=at,
        )
    return True


def limit_text(tier: str | None) -> str:
    """A tier as people per 24 h in Indonesian number style ("2.000", "tak terbatas")."""
    if not known_limit(tier):
        return "belum diketahui"
    limit = limit_of(tier)
    return "tak terbatas" if limit is None else f"{limit:,}".replace(",", ".")


def set_throughput(
    session: Session,
    state: SenderState,
    *,
    level: str | None,
    coexistence: bool,
    at: datetime,
    source: str,
) -> bool:
    """Record the throughput level (and coexistence). True if it changed."""
    if level is None or not _newer(state.throughput_at, at):
        return False
    state.throughput_at = at
    if (level, coexistence) == (state.throughput_level, state.coexistence):
        return False
    detail = {"from": state.throughput_level, "to": level, "coexistence": coexistence}
    state.throughput_level, state.coexistence = level, coexistence
    _audit(session, state, "throughput", {**detail, "source": source})
    return True


def set_quality(
    session: Session, state: SenderState, *, rating: str | None, at: datetime, source: str
) -> bool:
    """Record the quality rating; a drop to YELLOW or RED raises an alert."""
    if rating is None or not _newer(state.quality_at, at):
        return False
    state.quality_at = at
    if rating == state.quality_rating:
        return False
    old, state.quality_rating = state.quality_rating, rating
    _audit(session, state, "quality", {"from": old, "to": rating, "source": source})
    if QUALITY_ORDER.get(rating, 0) > QUALITY_ORDER.get(old or "GREEN", 0):
        alerts.raise_alert(
            session,
            kind=alerts.QUALITY_LOW,
            message=(
                f"Kualitas nomor pengirim turun menjadi {rating}: banyak penerima memblokir atau "
                "melaporkan pesan. Kurangi frekuensi, periksa isi templat dan daftar penerima."
            ),
            event_at=at,
        )
    return True


def set_flagged(session: Session, state: SenderState, *, flagged: bool, at: datetime) -> bool:
    """Record Meta's quality flag on the number; being flagged raises an alert."""
    if not _newer(state.flagged_at, at):
        return False
    state.flagged_at = at
    if flagged == state.flagged:
        return False
    state.flagged = flagged
    _audit(session, state, "flagged", {"flagged": flagged})
    if flagged:
        alerts.raise_alert(
            session,
            kind=alerts.QUALITY_FLAGGED,
            message=(
                "Meta menandai nomor pengirim (FLAGGED) karena kualitasnya turun. Jika tidak "
                "membaik dalam 7 hari, batas pesan diturunkan. Tunda putaran besar dan periksa "
                "isi templat."
            ),
            event_at=at,
        )
    return True


def apply_reading(
    session: Session, *, phone_number_id: str, health: PhoneHealth, at: datetime
) -> SenderState:
    """Apply GET /{phone-number-id} as read at `at`."""
    state = state_row(session, lock=True)
    state.phone_number_id = phone_number_id
    set_limit(session, state, tier=health.messaging_limit_tier, at=at, source="reading")
    set_throughput(
        session,
        state,
        level=health.throughput_level,
        coexistence=health.coexistence,
        at=at,
        source="reading",
    )
    set_quality(session, state, rating=health.quality_rating, at=at, source="reading")
    state.name_status = health.name_status
    state.code_verification_status = health.code_verification_status
    state.registration_status = health.registration_status
    state.verified_name = health.verified_name
    state.refreshed_at, state.refresh_error, state.updated_at = at, None, at
    session.add(state)
    return state


def record_refresh_failure(session: Session, *, reason: str, at: datetime) -> None:
    """Keep the last known state, and say why it could not be read now."""
    state = state_row(session, lock=True)
    state.refresh_error = reason[:64]
    state.updated_at = at
    session.add(state)


def apply_phone_quality(session: Session, *, event: PhoneQualityUpdate, at: datetime) -> None:
    """phone_number_quality_update: FLAGGED, UNFLAGGED, DOWNGRADE, UPGRADE, THROUGHPUT_UPGRADE."""
    state = state_row(session, lock=True)
    kind = event.event
    if kind == "THROUGHPUT_UPGRADE":
        # Here current_limit speaks of throughput, not of the messaging limit.
        set_throughput(
            session,
            state,
            level=HIGH_THROUGHPUT_LEVEL,
            coexistence=state.coexistence,
            at=at,
            source="webhook",
        )
        set_limit(session, state, tier=event.business_limit, at=at, source="webhook")
    else:
        tier = event.business_limit or event.current_limit
        set_limit(session, state, tier=tier, at=at, source="webhook")
        if kind in ("FLAGGED", "UNFLAGGED", "DOWNGRADE", "UPGRADE"):
            set_flagged(session, state, flagged=kind == "FLAGGED", at=at)
    state.updated_at = max(state.updated_at, at)
    session.add(state)


def apply_capability(session: Session, *, event: CapabilityUpdate, at: datetime) -> None:
    """business_capability_update: the portfolio's messaging limit changed."""
    state = state_row(session, lock=True)
    set_limit(session, state, tier=event.business_limit, at=at, source="webhook")
    session.add(state)


def apply_account_update(session: Session, *, event: AccountUpdate, at: datetime) -> None:
    """account_update: restrictions, a (scheduled) ban or its lifting, a policy violation."""
    state = state_row(session, lock=True)
    if event.event not in ("ACCOUNT_RESTRICTION", "DISABLED_UPDATE", "ACCOUNT_VIOLATION"):
        return
    if not _newer(state.account_at, at):
        return
    state.account_at = at
    session.add(state)
    if event.event == "ACCOUNT_RESTRICTION":
        _restrictions(session, state, list(event.restrictions), at)
    elif event.event == "DISABLED_UPDATE" and event.ban_state != state.ban_state:
        state.ban_state = event.ban_state
        _audit(session, state, "ban_state", {"to": event.ban_state})
        if event.ban_state in _DISABLING:
            alerts.raise_alert(
                session,
                kind=alerts.ACCOUNT_DISABLED,
                message=(
                    f"Meta menonaktifkan (atau akan menonaktifkan) akun WhatsApp Business "
                    f"({event.ban_state}). Pengiriman akan gagal; hubungi Meta melalui "
                    "Business Support dan ajukan banding."
                ),
                event_at=at,
            )
    elif event.event == "ACCOUNT_VIOLATION" and event.violation != state.violation:
        state.violation = event.violation
        _audit(session, state, "violation", {"to": event.violation})
        alerts.raise_alert(
            session,
            kind=alerts.ACCOUNT_VIOLATION,
            message=(
                f"Meta mencatat pelanggaran kebijakan ({event.violation or 'tanpa rincian'}) "
                "pada akun WhatsApp Business. Periksa Business Manager sebelum mengirim lagi."
            ),
            event_at=at,
        )


def _restrictions(session: Session, state: SenderState, kinds: list[str], at: datetime) -> None:
    if sorted(kinds) == sorted(state.restrictions or []):
        return
    state.restrictions = sorted(kinds)
    _audit(session, state, "restrictions", {"to": state.restrictions})
    if kinds:
        alerts.raise_alert(
            session,
            kind=alerts.ACCOUNT_RESTRICTED,
            message=(
                f"Meta membatasi akun WhatsApp Business ({', '.join(sorted(kinds))}): pesan "
                "yang dimulai bisnis, termasuk pengingat, tidak dapat dikirim sampai batasan "
                "berakhir. Periksa Business Manager."
            ),
            event_at=at,
        )
