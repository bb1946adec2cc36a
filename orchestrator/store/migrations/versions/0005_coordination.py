"""coordination: leases (task leases, the board writer) with fencing tokens, the journal of
events that cross processes, and the worker that runs a task

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# SQLite autoincrements only an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit id.
_JOURNAL_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'leases',
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('holder', sa.String(length=255), nullable=True),
        sa.Column('token', sa.BigInteger(), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index('ix_leases_holder', 'leases', ['holder'])
    op.create_table(
        'journal',
        sa.Column('id', _JOURNAL_ID, autoincrement=True, nullable=False),
        sa.Column('origin', sa.String(length=255), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=True),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_journal_created_at', 'journal', ['created_at'])
    with op.batch_alter_table('tasks') as batch:
        batch.add_column(sa.Column('worker', sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tasks') as batch:
        batch.drop_column('worker')
    op.drop_index('ix_journal_created_at', table_name='journal')
    op.drop_table('journal')
    op.drop_index('ix_leases_holder', table_name='leases')
    op.drop_table('leases')
