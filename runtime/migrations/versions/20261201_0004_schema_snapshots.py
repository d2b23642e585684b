"""schema snapshots: the last production snapshots recorded through each connection (the schema guard)

Revision ID: 20261201_0004
Revises: 20261201_0003
Create Date: 2026-12-01 23:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "20261201_0004"
down_revision: str | Sequence[str] | None = "20261201_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "schema_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("division", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_schema_snapshots_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schema_snapshots")),
    )
    op.create_index(
        "ix_schema_snapshots_connection_recorded", "schema_snapshots", ["connection_id", "recorded_at"], unique=False
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_schema_snapshots_connection_recorded", table_name="schema_snapshots")
    op.drop_table("schema_snapshots")
