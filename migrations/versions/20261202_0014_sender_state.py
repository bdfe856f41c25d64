"""sender: the number's limit, throughput, quality and account state, its alerts, and Meta's
side of each template (notice times, quality, submission)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sender_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("event_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("raised_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=80), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sender_alert")),
    )
    with op.batch_alter_table("sender_alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sender_alert_kind"), ["kind"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_sender_alert_resolved_at"), ["resolved_at"], unique=False
        )

    op.create_table(
        "sender_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone_number_id", sa.String(length=64), nullable=False),
        sa.Column("messaging_limit_tier", sa.String(length=32), nullable=True),
        sa.Column("messaging_limit_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("throughput_level", sa.String(length=32), nullable=True),
        sa.Column("coexistence", sa.Boolean(), nullable=False),
        sa.Column("throughput_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("quality_rating", sa.String(length=16), nullable=True),
        sa.Column("quality_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("flagged_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("restrictions", sa.JSON(), nullable=True),
        sa.Column("ban_state", sa.String(length=32), nullable=True),
        sa.Column("violation", sa.String(length=64), nullable=True),
        sa.Column("account_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("name_status", sa.String(length=32), nullable=True),
        sa.Column("code_verification_status", sa.String(length=32), nullable=True),
        sa.Column("registration_status", sa.String(length=32), nullable=True),
        sa.Column("verified_name", sa.String(length=256), nullable=True),
        sa.Column("refreshed_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("refresh_error", sa.String(length=64), nullable=True),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sender_state")),
        sa.UniqueConstraint("phone_number_id", name=op.f("uq_sender_state_phone_number_id")),
    )
    op.create_table(
        "template_lifecycle",
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("status_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status_event", sa.String(length=32), nullable=True),
        sa.Column("status_reason", sa.String(length=64), nullable=True),
        sa.Column("category_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("previous_category", sa.String(length=20), nullable=True),
        sa.Column("announced_category", sa.String(length=20), nullable=True),
        sa.Column("announced_for", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("quality_score", sa.String(length=16), nullable=True),
        sa.Column("quality_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("send_ttl_seconds", sa.Integer(), nullable=True),
        sa.Column("submitted_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["message_template.id"],
            name=op.f("fk_template_lifecycle_template_id_message_template"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("template_id", name=op.f("pk_template_lifecycle")),
    )


def downgrade() -> None:
    op.drop_table("template_lifecycle")
    op.drop_table("sender_state")
    with op.batch_alter_table("sender_alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sender_alert_resolved_at"))
        batch_op.drop_index(batch_op.f("ix_sender_alert_kind"))

    op.drop_table("sender_alert")
