"""sync documents: the per-lane state of line-row documents; SalesInvoices and PurchaseOrders mirrors rebuilt

Revision ID: 20261201_0003
Revises: 20261201_0002
Create Date: 2026-12-01 21:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "20261201_0003"
down_revision: str | Sequence[str] | None = "20261201_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Their sync resources return one row per line: the mirror held header rows (or lines under line IDs). They are
# now documents with their lines, keyed by InvoiceID / PurchaseOrderID: drop the old rows and resync the lanes.
REBUILT = ("salesinvoices", "purchaseorders")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "sync_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("division", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=36), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("modified_ms", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("line_ids", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_sync_documents_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_documents")),
        sa.UniqueConstraint(
            "connection_id", "division", "topic", "key", name=op.f("uq_sync_documents_connection_id_division_topic_key")
        ),
    )
    mirror = sa.table("mirror_records", sa.column("topic", sa.String))
    op.execute(mirror.delete().where(sa.func.lower(mirror.c.topic).in_(REBUILT)))
    # The next delta sync of these lanes reads them from the start (a new generation: a walk running meanwhile
    # cannot move the cursor back past the reset).
    cursors = sa.table(
        "lane_cursors",
        sa.column("topic", sa.String),
        sa.column("timestamp", sa.BigInteger),
        sa.column("modified_ms", sa.BigInteger),
        sa.column("deleted_timestamp", sa.BigInteger),
        sa.column("generation", sa.Integer),
    )
    op.execute(
        cursors.update()
        .where(sa.func.lower(cursors.c.topic).in_(REBUILT))
        .values(timestamp=0, modified_ms=0, deleted_timestamp=0, generation=cursors.c.generation + 1)
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("sync_documents")
