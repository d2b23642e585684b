"""command writes and origins: the versions commands wrote and verified, and each change's origin in the delivery
log and the mirror

Revision ID: 20261202_0005
Revises: 20261201_0004
Create Date: 2026-12-02 01:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "20261202_0005"
down_revision: str | Sequence[str] | None = "20261201_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "command_writes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("division", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=36), nullable=False),
        sa.Column("modified", sa.BigInteger(), nullable=False),
        sa.Column("command", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_command_writes")),
        sa.UniqueConstraint(
            "division", "topic", "key", "modified", name=op.f("uq_command_writes_division_topic_key_modified")
        ),
    )
    op.create_index("ix_command_writes_key", "command_writes", ["key"], unique=False)
    op.create_index("ix_command_writes_created", "command_writes", ["created_at"], unique=False)
    # Rows logged before this carry no origin: pushed without `data.origin`.
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin", sa.JSON(), nullable=True))
    with op.batch_alter_table("mirror_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("mirror_records", schema=None) as batch_op:
        batch_op.drop_column("origin")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("origin")
    op.drop_index("ix_command_writes_created", table_name="command_writes")
    op.drop_index("ix_command_writes_key", table_name="command_writes")
    op.drop_table("command_writes")
