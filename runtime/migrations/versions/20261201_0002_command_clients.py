"""command clients: named clients of /commands (token hash, divisions, entities, share), and commands.client

Revision ID: 20261201_0002
Revises: 0001
Create Date: 2026-12-01 17:52:23.812006

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '20261201_0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('command_clients',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('divisions', sa.JSON(), nullable=True),
    sa.Column('entities', sa.JSON(), nullable=True),
    sa.Column('share', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rotated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_command_clients')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_command_clients_token_hash'))
    )
    # Every command kept so far came in under COMMANDS_TOKEN: the all-access client `default`.
    with op.batch_alter_table('commands', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client', sa.String(length=64), server_default='default', nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('commands', schema=None) as batch_op:
        batch_op.drop_column('client')

    op.drop_table('command_clients')
