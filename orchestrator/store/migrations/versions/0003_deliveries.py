"""deliveries: Slack envelope and event ids already handled (dedupe across restarts and processes)

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'deliveries',
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index('ix_deliveries_seen_at', 'deliveries', ['seen_at'])


def downgrade() -> None:
    op.drop_index('ix_deliveries_seen_at', table_name='deliveries')
    op.drop_table('deliveries')
