"""Meta's notices about a template: its status, its category and its quality.

A notice is matched to a template by Meta's template id, else by name and language. Each kind
of notice moves its part of the template only when it is at least as new as the last one
applied (`TemplateLifecycle`): Meta delivers webhooks at least once and in any order. What a
change means for campaigns is decided by the caller (`app.webhook.account`); this module says
whether the template stopped being usable, and why, in words an admin reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from app.audit import service as audit_service
from app.auth.principal import cli_principal
from app.messaging.account_events import (
    TemplateCategoryUpdate,
    TemplateQualityUpdate,
    TemplateRef,
    TemplateStatusUpdate,
)
from app.templates.acknowledgements import USABLE_STATUSES
from app.templates.models import MessageTemplate, TemplateLifecycle, TemplateStatus

META = cli_principal("meta")
MARKETING = "MARKETING"
DELETED = "DELETED"
# Meta's status events and the status each leaves the template in; FLAGGED (quality is low,
# the template may be paused soon) leaves the status as it is.
STATUS_OF_EVENT = {
    "APPROVED": TemplateStatus.approved.value,
    "REINSTATED": TemplateStatus.approved.value,
    "PENDING": TemplateStatus.pending.value,
    "REJECTED": TemplateStatus.rejected.value,
    "PAUSED": TemplateStatus.paused.value,
    "DISABLED": TemplateStatus.disabled.value,
    "IN_APPEAL": "IN_APPEAL",
    "ARCHIVED": "ARCHIVED",
    "PENDING_DELETION": DELETED,
    "DELETED": DELETED,
}
_STOP_WORDS = {
    TemplateStatus.paused.value: "dijeda",
    TemplateStatus.disabled.value: "dinonaktifkan",
    TemplateStatus.rejected.value: "ditolak",
}


@dataclass(frozen=True)
class TemplateChange:
    """What one notice changed on one template."""

    template_id: int
    label: str  # name/language
    what: str  # status, category, category_announced, quality, flagged
    stopped: str | None = None  # why the template is no longer usable (Bahasa Indonesia)
    warning: str | None = None  # something to alert on without stopping (Bahasa Indonesia)


def label_of(template: MessageTemplate) -> str:
    """How a template is named in alerts and reasons: name/language."""
    return f"{template.name}/{template.language}"


def find_for_notice(session: Session, ref: TemplateRef) -> MessageTemplate | None:
    """The template a notice is about: by Meta's id, else by name (and language if given)."""
    if ref.template_id is not None:
        by_id = session.exec(
            select(MessageTemplate).where(MessageTemplate.meta_template_id == ref.template_id)
        ).first()
        if by_id is not None:
            return by_id
    if ref.name is None:
        return None
    stmt = select(MessageTemplate).where(MessageTemplate.name == ref.name)
    if ref.language is not None:
        stmt = stmt.where(MessageTemplate.language == ref.language)
    matches = session.exec(stmt.limit(2)).all()
    return matches[0] if len(matches) == 1 else None


def lifecycle_of(session: Session, template: MessageTemplate) -> TemplateLifecycle:
    """The template's lifecycle row, created on first use."""
    assert template.id is not None
    row = session.get(TemplateLifecycle, template.id)
    if row is None:
        row = TemplateLifecycle(template_id=template.id)
        session.add(row)
        session.flush()
    return row


def _newer(recorded: datetime | None, at: datetime) -> bool:
    return recorded is None or at >= recorded


def _audit(session: Session, template: MessageTemplate, what: str, detail: dict[str, Any]) -> None:
    audit_service.record(
        session,
        actor=META,
        action=f"template.meta_{what}",
        object_type="template",
        object_id=template.id,
        detail={"name": template.name, "language": template.language, **detail},
    )


def _locked(session: Session, ref: TemplateRef) -> tuple[MessageTemplate, TemplateLifecycle] | None:
    template = find_for_notice(session, ref)
    if template is None:
        return None
    # Serialise notices about one template across replicas (a no-op on SQLite).
    session.exec(
        select(MessageTemplate).where(MessageTemplate.id == template.id).with_for_update()
    ).one()
    return template, lifecycle_of(session, template)


def apply_status(
    session: Session, *, event: TemplateStatusUpdate, at: datetime
) -> TemplateChange | None:
    """message_template_status_update; None when it changes nothing (or is unknown here)."""
    found = _locked(session, event.template)
    if found is None or event.event is None:
        return None
    template, row = found
    replayed = at == row.status_at and event.event == row.status_event
    if replayed or not _newer(row.status_at, at):
        return None
    row.status_at, row.status_event = at, event.event[:32]
    row.status_reason = event.reason[:64] if event.reason else None
    session.add(row)
    label = label_of(template)
    if event.event == "FLAGGED":
        _audit(session, template, "flagged", {"reason": event.reason})
        return TemplateChange(
            template.id or 0,
            label,
            "flagged",
            warning=(
                f"Meta menandai templat {label} (FLAGGED) karena kualitasnya rendah; templat "
                "dapat dijeda. Periksa isi templat dan frekuensi pengingat."
            ),
        )
    status = STATUS_OF_EVENT.get(event.event)
    if status is None or status == template.status:
        return None
    old, template.status = template.status, status
    session.add(template)
    _audit(session, template, "status", {"from": old, "to": status, "reason": event.reason})
    stopped = None
    if old in USABLE_STATUSES and status not in USABLE_STATUSES:
        word = _STOP_WORDS.get(status, f"berstatus {status}")
        reason = f", alasan: {event.reason}" if event.reason and event.reason != "NONE" else ""
        stopped = f"Templat {label} {word} oleh Meta ({status}{reason})"
    return TemplateChange(template.id or 0, label, "status", stopped=stopped)


def apply_category(
    session: Session, *, event: TemplateCategoryUpdate, at: datetime
) -> TemplateChange | None:
    """template_category_update: announced a day ahead, then done."""
    found = _locked(session, event.template)
    if found is None:
        return None
    template, row = found
    if not _newer(row.category_at, at):
        return None
    row.category_at = at
    session.add(row)
    label = label_of(template)
    if event.previous_category is None and event.correct_category is not None:
        if event.correct_category == row.announced_category:
            return None
        row.announced_category = event.correct_category
        row.announced_for = event.takes_effect_at
        _audit(session, template, "category_announced", {"to": event.correct_category})
        return TemplateChange(
            template.id or 0,
            label,
            "category_announced",
            warning=(
                f"Meta akan memindahkan templat {label} ke kategori {event.correct_category} "
                "dalam 24 jam. Pengingat harus UTILITY; ubah isi templat atau ajukan banding."
            ),
        )
    new = event.new_category
    if new is None or new == template.category:
        return None
    old, template.category = template.category, new[:20]
    row.previous_category, row.announced_category, row.announced_for = old, None, None
    session.add(template)
    _audit(session, template, "category", {"from": old, "to": template.category})
    stopped = None
    if template.category == MARKETING:
        stopped = (
            f"Meta memindahkan templat {label} dari {old} ke MARKETING (aturan persetujuan, "
            "penolakan pesan pemasaran dan harga berubah)"
        )
    return TemplateChange(template.id or 0, label, "category", stopped=stopped)


def apply_quality(
    session: Session, *, event: TemplateQualityUpdate, at: datetime
) -> TemplateChange | None:
    """message_template_quality_update: a lower score is a warning (Meta pauses by status)."""
    found = _locked(session, event.template)
    if found is None or event.new_score is None:
        return None
    template, row = found
    if not _newer(row.quality_at, at):
        return None
    row.quality_at = at
    session.add(row)
    if event.new_score == row.quality_score:
        return None
    old, row.quality_score = row.quality_score, event.new_score[:16]
    _audit(session, template, "quality", {"from": old, "to": row.quality_score})
    warning = None
    if row.quality_score in ("YELLOW", "RED"):
        warning = (
            f"Skor kualitas templat {label_of(template)} turun menjadi {row.quality_score}. "
            "Meta dapat menjeda templat ini; kurangi frekuensi dan periksa isinya."
        )
    return TemplateChange(template.id or 0, label_of(template), "quality", warning=warning)


def stamp_read(session: Session, *, template: MessageTemplate, at: datetime) -> None:
    """Meta's listing was read at `at` (templates sync): older notices must not undo it."""
    row = lifecycle_of(session, template)
    row.status_at = max(row.status_at or at, at)
    row.category_at = max(row.category_at or at, at)
    session.add(row)


@dataclass(frozen=True)
class TemplateOverview:
    """A template as Meta last described it, for the sender page."""

    template_id: int
    label: str
    status: str
    category: str
    source: str
    quality: str | None
    reason: str | None
    send_ttl_seconds: int | None
    announced_category: str | None


def overview(session: Session) -> list[TemplateOverview]:
    """Every template with Meta's side of it, by name."""
    rows = session.exec(
        select(MessageTemplate, TemplateLifecycle)
        .join(
            TemplateLifecycle,
            col(TemplateLifecycle.template_id) == col(MessageTemplate.id),
            isouter=True,
        )
        .order_by(col(MessageTemplate.name), col(MessageTemplate.language))
    ).all()
    return [
        TemplateOverview(
            template_id=template.id or 0,
            label=label_of(template),
            status=template.status,
            category=template.category,
            source=template.source,
            quality=row.quality_score if row else None,
            reason=row.status_reason if row else None,
            send_ttl_seconds=row.send_ttl_seconds if row else None,
            announced_category=row.announced_category if row else None,
        )
        for template, row in rows
    ]
