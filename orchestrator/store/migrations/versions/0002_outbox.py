"""outbox: what taskpin must say in Slack, kept until Slack has taken it

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'outbox',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('channel', sa.String(length=64), nullable=False),
        sa.Column('thread', sa.String(length=255), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=True),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('op', sa.String(length=16), nullable=False),
        sa.Column('priority', sa.Integer(), nullable=False),
        sa.Column('parent', sa.String(length=255), nullable=True),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('maybe_sent', sa.Boolean(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('ref', sa.String(length=64), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key', name='uq_outbox_key'),
    )
    op.create_index('ix_outbox_status', 'outbox', ['status', 'id'])


def downgrade() -> None:
    op.drop_index('ix_outbox_status', table_name='outbox')
    op.drop_table('outbox')
