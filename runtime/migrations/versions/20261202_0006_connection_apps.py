"""connection apps: each connection belongs to an Exact app (EXACT_APPS); the rows before it are `default`'s

Revision ID: 20261202_0006
Revises: 20261202_0005
Create Date: 2026-12-02 01:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "20261202_0006"
down_revision: str | Sequence[str] | None = "20261202_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("app", sa.String(length=50), server_default="default", nullable=False))
        # One user may consent to two apps on one host: a connection each.
        batch_op.drop_constraint("uq_connections_base_url_user_id", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_connections_app_base_url_user_id"), ["app", "base_url", "user_id"]
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_connections_app_base_url_user_id"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_connections_base_url_user_id"), ["base_url", "user_id"])
        batch_op.drop_column("app")
