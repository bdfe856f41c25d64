"""The sender as Meta last described it: what other packages may read, and its API view.

Other packages plan with two figures, both read from the database so every process agrees:
- `current_messaging_limit`: unique people the portfolio may message outside a service window
  in a moving 24 h (None = unlimited; the new-portfolio 250 until Meta has said otherwise);
- `current_throughput_per_second`: messages per second the number may send (80 by default,
  1,000 after Meta's upgrade, 20 for a number also on the WhatsApp Business app).
Changes are applied in `app.sender.changes`, alerts kept in `app.sender.alerts`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.db import read_scope
from app.messaging.tiers import (
    DEFAULT_MESSAGING_LIMIT,
    STANDARD_THROUGHPUT,
    known_limit,
    limit_of,
    throughput_of,
)
from app.sender import alerts
from app.sender.models import SenderAlert, SenderState
from app.sender.schemas import SenderAlertPublic, SenderStatePublic

_RESTRICTING_BANS = frozenset({"DISABLE", "SCHEDULE_FOR_DISABLE"})


def current_state(session: Session) -> SenderState | None:
    """The sender state row, if anything was ever applied."""
    return session.exec(select(SenderState).order_by(col(SenderState.id))).first()


def messaging_limit_of(state: SenderState | None) -> int | None:
    """The limit a state row says (the default while unknown); None = unlimited."""
    tier = state.messaging_limit_tier if state is not None else None
    return limit_of(tier) if known_limit(tier) else DEFAULT_MESSAGING_LIMIT


def throughput_of_state(state: SenderState | None) -> int:
    """Messages per second a state row allows (Meta's default while unknown)."""
    if state is None:
        return STANDARD_THROUGHPUT
    return throughput_of(state.throughput_level, coexistence=state.coexistence)


def current_messaging_limit(session: Session) -> int | None:
    """Unique people the service may message outside a service window per moving 24 h.

    None means unlimited. Until Meta has said otherwise it is 250, a new portfolio's limit.
    """
    return messaging_limit_of(current_state(session))


def current_throughput_per_second(session: Session) -> int:
    """Messages per second the business number may send (Meta's throughput level)."""
    return throughput_of_state(current_state(session))


def known_throughput_per_second(session: Session) -> int | None:
    """The number's throughput once Meta has said it (a reading or a notice); None before."""
    state = current_state(session)
    if state is None or state.throughput_at is None:
        return None
    return throughput_of_state(state)


def is_restricted(state: SenderState | None) -> bool:
    """Meta restricts, bans or flags the account or number."""
    if state is None:
        return False
    return bool(state.restrictions) or state.ban_state in _RESTRICTING_BANS or state.flagged


def alert_to_public(alert: SenderAlert) -> SenderAlertPublic:
    """The API view of one alert."""
    assert alert.id is not None
    return SenderAlertPublic(
        id=alert.id,
        kind=alert.kind,
        subject=alert.subject,
        message=alert.message,
        event_at=alert.event_at,
        raised_at=alert.raised_at,
        resolved_at=alert.resolved_at,
        resolved_by=alert.resolved_by,
    )


def to_public(session: Session) -> SenderStatePublic:
    """The sender state with its open alerts, as admins see it."""
    state = current_state(session)
    known = state is not None and (state.refreshed_at is not None or state.messaging_limit_at)
    return SenderStatePublic(
        known=bool(known),
        messaging_limit=messaging_limit_of(state),
        messaging_limit_tier=state.messaging_limit_tier if state else None,
        throughput_per_second=throughput_of_state(state),
        throughput_level=state.throughput_level if state else None,
        coexistence=state.coexistence if state else False,
        quality_rating=state.quality_rating if state else None,
        flagged=state.flagged if state else False,
        restrictions=list(state.restrictions or []) if state else [],
        ban_state=state.ban_state if state else None,
        violation=state.violation if state else None,
        name_status=state.name_status if state else None,
        registration_status=state.registration_status if state else None,
        code_verification_status=state.code_verification_status if state else None,
        verified_name=state.verified_name if state else None,
        refreshed_at=state.refreshed_at if state else None,
        refresh_error=state.refresh_error if state else None,
        open_alerts=[alert_to_public(a) for a in alerts.open_alerts(session)],
    )


@dataclass(frozen=True)
class MetricFigures:
    """What /metrics reports of the sender."""

    messaging_limit: int | None
    throughput: int
    quality: str
    restricted: bool
    open_alerts: dict[str, int] = field(default_factory=dict)


def metric_figures(engine: Engine) -> MetricFigures:
    """The sender figures for a scrape, read in one short read-only transaction."""
    with read_scope(engine) as session:
        state = current_state(session)
        kinds = Counter(a.kind for a in alerts.open_alerts(session))
        return MetricFigures(
            messaging_limit=messaging_limit_of(state),
            throughput=throughput_of_state(state),
            quality=(state.quality_rating if state and state.quality_rating else "UNKNOWN"),
            restricted=is_restricted(state),
            open_alerts={kind: kinds.get(kind, 0) for kind in alerts.KINDS},
        )
