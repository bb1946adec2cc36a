"""policy_rules: approval-policy rules added in Slack ("Always allow this"), kept after removal;
tasks.depends_on: the ids of the tasks a task waits for (state `waiting` needs no schema change)

Revision ID: 0006
Revises: 0005 (to be chained after 0005 when the coordination migration lands)
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'policy_rules',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('repo', sa.String(100), nullable=False),
        sa.Column('task_id', sa.Integer(), sa.ForeignKey('tasks.id', ondelete='CASCADE'), nullable=True),
        sa.Column('effect', sa.String(16), nullable=False),
        sa.Column('target', sa.Text(), nullable=False),
        sa.Column('by_approver', sa.Boolean(), nullable=False),
        sa.Column('added_by', sa.String(64), nullable=False),
        sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('intervention_id', sa.Integer(), nullable=True),
        sa.Column('removed_by', sa.String(64), nullable=True),
        sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_policy_rules_repo', 'policy_rules', ['repo'])
    # Plain ALTER TABLE (a batch copy of `tasks` would cascade-delete its rows' history on SQLite).
    op.add_column('tasks', sa.Column('depends_on', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('tasks', 'depends_on')
    op.drop_index('ix_policy_rules_repo', table_name='policy_rules')
    op.drop_table('policy_rules')
