"""webhook: inbound de-duplication, pending self-enrolments, daily auto-reply markers

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_auto_reply",
        sa.Column("marker", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("marker", name=op.f("pk_webhook_auto_reply")),
    )
    with op.batch_alter_table("webhook_auto_reply", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_auto_reply_day"), ["day"], unique=False)

    op.create_table(
        "webhook_inbound_seen",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("expires_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_webhook_inbound_seen")),
    )
    with op.batch_alter_table("webhook_inbound_seen", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_inbound_seen_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "webhook_pending_signup",
        sa.Column("phone_index", sa.String(length=64), nullable=False),
        sa.Column("opd_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["opd_id"],
            ["opd.id"],
            name=op.f("fk_webhook_pending_signup_opd_id_opd"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("phone_index", name=op.f("pk_webhook_pending_signup")),
    )
    with op.batch_alter_table("webhook_pending_signup", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_pending_signup_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_pending_signup", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_pending_signup_expires_at"))
    op.drop_table("webhook_pending_signup")
    with op.batch_alter_table("webhook_inbound_seen", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_inbound_seen_expires_at"))
    op.drop_table("webhook_inbound_seen")
    with op.batch_alter_table("webhook_auto_reply", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_auto_reply_day"))
    op.drop_table("webhook_auto_reply")
