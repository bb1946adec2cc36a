"""queued: waiting for a session slot is a state of its own

Until 0003 a dispatched task was `in_progress` with `queued_at` set until a slot took it (and
`queued_at` was cleared then). Now:
- those tasks are in state `queued`, keeping `queued_at`, so the FIFO order is unchanged;
- `queued_at` stays set while a task runs: a run that resumes after a restart goes back into
  the queue ahead of later arrivals. Running tasks from before get the earliest queue time.
- the queue index leads with the state.

Revision ID: 0004
Revises: 0003
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

tasks = sa.table(
    'tasks',
    sa.column('id', sa.Integer), sa.column('state', sa.String), sa.column('version', sa.Integer),
    sa.column('queued_at', sa.DateTime(timezone=True)), sa.column('started_at', sa.DateTime(timezone=True)),
    sa.column('state_changed_at', sa.DateTime(timezone=True)), sa.column('updated_at', sa.DateTime(timezone=True)),
)
transitions = sa.table(
    'transitions',
    sa.column('task_id', sa.Integer), sa.column('from_state', sa.String), sa.column('to_state', sa.String),
    sa.column('actor', sa.String), sa.column('reason', sa.Text), sa.column('at', sa.DateTime(timezone=True)),
)
LIVE = ('in_progress', 'blocked')


def upgrade() -> None:
    conn = op.get_bind()
    now = datetime.now(UTC)
    waiting = [row.id for row in conn.execute(
        sa.select(tasks.c.id).where(tasks.c.state == 'in_progress', tasks.c.queued_at.is_not(None)))]
    if waiting:
        conn.execute(sa.update(tasks).where(tasks.c.id.in_(waiting))
                     .values(state='queued', version=tasks.c.version + 1, state_changed_at=now, updated_at=now))
        conn.execute(sa.insert(transitions), [
            {'task_id': task_id, 'from_state': 'in_progress', 'to_state': 'queued', 'actor': 'taskpin',
             'reason': 'waiting for a session slot (schema upgrade)', 'at': now} for task_id in waiting])
    head = conn.execute(sa.select(sa.func.min(tasks.c.queued_at)).where(tasks.c.state == 'queued')).scalar()
    for row in conn.execute(sa.select(tasks.c.id, tasks.c.started_at, tasks.c.state_changed_at)
                            .where(tasks.c.state.in_(LIVE), tasks.c.queued_at.is_(None))).all():
        began = row.started_at or row.state_changed_at
        conn.execute(sa.update(tasks).where(tasks.c.id == row.id)
                     .values(queued_at=min(t for t in (head, began) if t is not None)))
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_queue')
        batch_op.create_index('ix_tasks_queue', ['state', 'queued_at', 'id'], unique=False)


def downgrade() -> None:
    conn = op.get_bind()
    conn.execute(sa.update(tasks).where(tasks.c.state != 'queued').values(queued_at=None))
    conn.execute(sa.update(tasks).where(tasks.c.state == 'queued').values(state='in_progress'))
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_queue')
        batch_op.create_index('ix_tasks_queue', ['queued_at', 'id'], unique=False)
