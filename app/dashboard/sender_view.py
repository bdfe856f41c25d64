"""Read models of the sender and pre-flight pages, and the alert banner (admins only)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.auth.principal import Principal
from app.campaigns import service as campaign_service
from app.campaigns.models import CampaignState
from app.sender import alerts, changes, service
from app.templates import lifecycle

QUALITY_LABELS = {
    "GREEN": "baik (GREEN)",
    "YELLOW": "sedang (YELLOW)",
    "RED": "rendah (RED)",
    "NA": "belum dinilai",
}
STATUS_LABELS = {"ok": "OK", "warn": "Peringatan", "fail": "Gagal", "skip": "Dilewati"}


def banner(session: Session, *, viewer: Principal) -> int:
    """How many sender alerts are open, for an admin's banner (0 for anyone else)."""
    return len(alerts.open_alerts(session)) if viewer.is_admin else 0


def sender_page(session: Session) -> dict[str, Any]:
    """The number's state, open alerts, templates and campaigns paused for Meta's reasons."""
    state = service.to_public(session)
    paused = [
        c
        for c in campaign_service.list_campaigns(session)
        if c.state == CampaignState.paused and c.paused_reason
    ]
    return {
        "state": state,
        "limit_text": _limit_phrase(state.messaging_limit_tier, state.messaging_limit),
        "quality_text": QUALITY_LABELS.get(state.quality_rating or "", "belum diketahui"),
        "alerts": state.open_alerts,
        "templates": lifecycle.overview(session),
        "paused": paused,
        "sender_alert_count": len(state.open_alerts),
    }


def _limit_phrase(tier: str | None, limit: int | None) -> str:
    if tier is None:
        return f"{limit} orang per 24 jam (anggapan; belum dibaca dari Meta)"
    text = changes.limit_text(tier)
    return "tak terbatas" if limit is None else f"{text} orang per 24 jam"
