"""delivery.billed_category: a delivered reminder's bill is counted once, whatever Meta replays

Meta bills per delivered template message and says so in the `pricing` of one delivered/read
status; the column records that this delivery's charge was counted (and in which category), so
a replayed status is not billed twice. It goes with the delivery row at the retention purge;
the billed tallies stay.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("billed_category", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_column("billed_category")
