"""trace events: each record's capped history of webhooks and reads, for `exact-pipeline trace`

Revision ID: 20261203_0008
Revises: 20261202_0007
Create Date: 2026-12-03 01:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "20261203_0008"
down_revision: str | Sequence[str] | None = "20261202_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "trace_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("division", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trace_events")),
    )
    op.create_index("ix_trace_events_key", "trace_events", ["division", "topic", "key", "at"], unique=False)
    op.create_index("ix_trace_events_at", "trace_events", ["at"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_trace_events_at", table_name="trace_events")
    op.drop_index("ix_trace_events_key", table_name="trace_events")
    op.drop_table("trace_events")
