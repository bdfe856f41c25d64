"""coordinators learn nothing about opt-outs: per-OPD listings, masked column, no timestamps

- `uq_enrolment_active_phone` becomes per OPD (the same number may be on several lists);
- `enrolment.phone_masked` lets the list show a number it no longer holds (suppressed);
- `enrolment.ended_at` and `suppression.since` go: per-person timestamps of a STOP or HAPUS;
- opted-out rows become listed again (a STOP no longer changes the list; the suppression list
  keeps them from being messaged), and erased rows, which hold nothing but ids and times a
  coordinator saw, are deleted.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE = sa.text("status = 'active'")


def upgrade() -> None:
    with op.batch_alter_table("enrolment", schema=None) as batch_op:
        batch_op.drop_index("uq_enrolment_active_phone")
        batch_op.create_index(
            "uq_enrolment_active_phone",
            ["opd_id", "phone_index"],
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        )
        batch_op.add_column(sa.Column("phone_masked", sa.String(length=24), nullable=True))
        batch_op.drop_column("ended_at")
    with op.batch_alter_table("suppression", schema=None) as batch_op:
        batch_op.drop_column("since")
    # The latest opted-out row per (OPD, number) is listed again, unless that OPD lists the
    # number already; any other opted-out row is withdrawn (it held a duplicate).
    op.execute(
        """
        UPDATE enrolment SET status = 'active'
        WHERE status = 'opted_out'
          AND id IN (SELECT max(o.id) FROM enrolment o WHERE o.status = 'opted_out'
                     GROUP BY o.opd_id, o.phone_index)
          AND NOT EXISTS (SELECT 1 FROM enrolment a WHERE a.status = 'active'
                          AND a.opd_id = enrolment.opd_id
                          AND a.phone_index = enrolment.phone_index)
        """
    )
    op.execute(
        "UPDATE enrolment SET status = 'withdrawn', phone_ciphertext = NULL, "
        "phone_index = NULL, label_ciphertext = NULL WHERE status = 'opted_out'"
    )
    op.execute(
        "UPDATE delivery SET enrolment_id = NULL WHERE enrolment_id IN "
        "(SELECT id FROM enrolment WHERE status = 'erased')"
    )
    op.execute("DELETE FROM enrolment WHERE status = 'erased'")


def downgrade() -> None:
    with op.batch_alter_table("suppression", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "since",
                app.db.UTCDateTime(timezone=True),
                nullable=False,
                server_default=sa.text("CURRENT_TIMESTAMP"),
            )
        )
    # A number listed by several OPDs keeps only its oldest listing under the global index.
    op.execute(
        """
        UPDATE enrolment SET status = 'withdrawn', phone_ciphertext = NULL,
               phone_index = NULL, label_ciphertext = NULL
        WHERE status = 'active'
          AND id NOT IN (SELECT min(a.id) FROM enrolment a WHERE a.status = 'active'
                         GROUP BY a.phone_index)
        """
    )
    with op.batch_alter_table("enrolment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ended_at", app.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_column("phone_masked")
        batch_op.drop_index("uq_enrolment_active_phone")
        batch_op.create_index(
            "uq_enrolment_active_phone",
            ["phone_index"],
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        )
