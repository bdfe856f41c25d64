"""Recorded: what the Graph API answered to a send of a delivery this worker holds."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    bindparam,
)
from sqlmodel import Session

from app.outbox.lifecycle.transitions import (
    _SENDING,
    require,
    update_by_id,
)

_RECORD = update_by_id(
    state=bindparam("d_state"),
    attempts=bindparam("d_attempts"),
    next_attempt_at=bindparam("d_next"),
    wamid=bindparam("d_wamid"),
    error_code=bindparam("d_code"),
    error_class=bindparam("d_class"),
    claimed_by=None,
)


def record_sends(session: Session, *, rows: Sequence[dict[str, object]]) -> None:
    """Write send results of deliveries this worker holds in `sending` (see app.outbox.record).

    Each row has d_id, d_state, d_attempts, d_next, d_wamid, d_code, d_class and d_now.
    """
    for row in rows:
        require(_SENDING, str(row["d_state"]))
    if rows:
        # Core executemany: one UPDATE per row in one round trip, no ORM bookkeeping.
        session.connection().execute(_RECORD, list(rows))
