"""The store: every read and write of tasks, transitions, interventions, attempts and kv.

State changes go through `transition()`, a compare-and-set on the task's current state
that also appends to the audit log in the same transaction.
"""
from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, delete, event, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from ..errors import TaskNotFound
from ..models import (
    AttemptView,
    DiffSummary,
    InterventionKind,
    InterventionStatus,
    InterventionView,
    Option,
    TaskView,
    TransitionRecord,
)
from ..states import TaskState, check_transition
from . import migrate
from .batch import Batcher
from .deliveries import DeliveryClaims
from .fence import FencedSession
from .moves import Move, move_all
from .questions import ask_all, resolve_all
from .questions import intervention_view as _intervention_view
from .results import rowcount
from .tables import AttemptRow, DeliveryRow, InterventionRow, KeyValueRow, TaskRow, TransitionRow, utcnow
from .write_lane import WriteLane

ID_MAX = 2**31 - 1   # ids are `integer` columns (32-bit on PostgreSQL)
# The queue: tasks in state queued, in the order they joined it (queued_at), then by id.
_QUEUE_ORDER = (select(TaskRow.id).where(TaskRow.state == TaskState.QUEUED.value)
                .order_by(TaskRow.queued_at, TaskRow.id))


def _storable_id(value: object) -> bool:
    return type(value) is int and 0 < value <= ID_MAX


# Connections kept open: enough for the calls a burst makes at once (the batches of each kind,
# the outbox, reads), so a burst does not open and close connections past the pool's size (a
# PostgreSQL connection is a server process; an aiosqlite one a thread and its pragmas).
POOL_SIZE, POOL_OVERFLOW = 20, 10


def make_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:  # WAL: readers never block the writer
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)


async def migrate_database(url: str, *, upgrade: bool = True) -> str | None:
    """Bring the database at `url` to the newest schema (upgrade=False: only look); returns
    the revision it is at."""
    engine = make_engine(url)
    try:
        if upgrade:
            await migrate.upgrade(engine)
        return await migrate.current_revision(engine)
    finally:
        await engine.dispose()


PARALLEL_BATCHES = 4      # per kind of call, on PostgreSQL (the pool keeps 20 connections, 30 at most)


class Store:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, sync_session_class=FencedSession)
        self._lane = WriteLane() if engine.dialect.name == "sqlite" else None   # see write_lane.py
        # Calls made at once share a transaction (batch.py); on a server, several batches at a time.
        self.parallel = 1 if self._lane else PARALLEL_BATCHES
        self._claims = DeliveryClaims(self.writing, engine.dialect.name, parallel=self.parallel)
        self._asks: Batcher[dict[str, Any], tuple[InterventionView, bool, TaskView]] = self._batcher(
            lambda s, asks: ask_all(s, asks, self._views), urgent=True, name="questions")
        self._task_reads: Batcher[int, TaskView] = self._batcher(self._read_tasks, read=True, name="task-reads")
        self._intervention_reads: Batcher[int, InterventionView | None] = self._batcher(
            self._read_interventions, read=True, name="intervention-reads")
        self._resolves: Batcher[dict[str, Any], InterventionView | None] = self._batcher(
            resolve_all, name="answers")
        self._moves: Batcher[Move, TaskView] = self._batcher(
            lambda s, moves: move_all(s, moves, self._views), name="transitions")

    def _batcher(self, apply: Any, *, read: bool = False, **options: Any) -> Batcher[Any, Any]:
        """Calls made at once, in one write transaction (or, `read`, one read session)."""
        opened = (lambda urgent=False: self.session()) if read else self.writing
        return Batcher(opened, apply, parallel=self.parallel, **options)

    @classmethod
    async def open(cls, url: str, *, upgrade: bool = True) -> "Store":
        engine = make_engine(url)
        if upgrade:
            await migrate.upgrade(engine)
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    def session(self) -> AsyncSession:
        return self._sessions()

    @contextlib.asynccontextmanager
    async def writing(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed at the end (rolled back on an error);
        `urgent`: someone waits on it (on SQLite it goes before the background writes)."""
        async with self._lane.turn(urgent=urgent) if self._lane else contextlib.nullcontext():
            async with self.session() as s, s.begin():
                yield s

    # ---- tasks ---------------------------------------------------------------------

    async def create_task(self, *, title: str, prompt: str, owner: str, repo: str, agent: str,
                          base_branch: str, branch_for: Callable[[int], str],
                          depends_on: Sequence[int] = ()) -> TaskView:
        """Insert a backlog task; `branch_for(task_id)` names its branch once the id is known."""
        async with self.writing() as s:
            now = utcnow()
            row = TaskRow(title=title, prompt=prompt, owner=owner, repo=repo, agent=agent,
                          base_branch=base_branch, branch="", state=TaskState.BACKLOG.value, version=1,
                          created_at=now, updated_at=now, state_changed_at=now, retryable=True,
                          input_tokens=0, output_tokens=0, cost_usd=0.0, depends_on=list(depends_on) or None)
            s.add(row)
            await s.flush()
            row.branch = branch_for(row.id)
            s.add(TransitionRow(task_id=row.id, from_state=None, to_state=TaskState.BACKLOG.value,
                                actor=owner, reason="created", at=now))
        return await self.get_task(row.id)

    async def get_task(self, task_id: int) -> TaskView:
        if not _storable_id(task_id):   # would overflow the column: it names no task
            raise TaskNotFound(task_id)
        return await self._task_reads.submit(task_id)

    async def _read_tasks(self, s: AsyncSession, ids: Sequence[int]) -> list[TaskView | Exception]:
        found = {t.id: t for t in await self._views(select(TaskRow).where(TaskRow.id.in_(set(ids))), session=s)}
        return [found.get(task_id) or TaskNotFound(task_id) for task_id in ids]

    async def find_task(self, task_id: int) -> TaskView | None:
        try:
            return await self.get_task(task_id)
        except TaskNotFound:
            return None

    async def list_tasks(self, *, states: Iterable[TaskState] | None = None, owner: str | None = None,
                         limit: int | None = None) -> list[TaskView]:
        query = select(TaskRow).order_by(TaskRow.id)
        if states is not None:
            query = query.where(TaskRow.state.in_([TaskState(s).value for s in states]))
        if owner is not None:
            query = query.where(TaskRow.owner == owner)
        if limit is not None:
            query = query.order_by(None).order_by(TaskRow.id.desc()).limit(limit)
        return await self._views(query)

    async def count_tasks(self) -> dict[TaskState, int]:
        async with self.session() as s:
            rows = (await s.execute(select(TaskRow.state, func.count()).group_by(TaskRow.state))).all()
        return {TaskState(state): n for state, n in rows}

    async def _views(self, query: Select[Any], *, session: AsyncSession | None = None) -> list[TaskView]:
        """Task views in one query (counts as correlated subqueries), plus the queue order
        only when a selected task is queued; in `session` if given (a write reading its own)."""
        pending = (select(func.count()).where(InterventionRow.task_id == TaskRow.id,
                                              InterventionRow.status == InterventionStatus.PENDING.value)
                   .correlate(TaskRow).scalar_subquery())
        attempts = (select(func.count()).where(AttemptRow.task_id == TaskRow.id)
                    .correlate(TaskRow).scalar_subquery())
        async with contextlib.nullcontext(session) if session is not None else self.session() as s:
            rows = (await s.execute(query.add_columns(pending, attempts))).all()
            queue: Sequence[int] = []
            if any(row.state == TaskState.QUEUED.value for row, _, _ in rows):
                queue = (await s.execute(_QUEUE_ORDER)).scalars().all()
        position = {task_id: i + 1 for i, task_id in enumerate(queue)}
        return [self._task_view(row, position.get(row.id), n_pending, n_attempts)
                for row, n_pending, n_attempts in rows]

    @staticmethod
    def _task_view(row: TaskRow, queue_position: int | None, pending: int, attempts: int) -> TaskView:
        return TaskView(
            id=row.id, title=row.title, prompt=row.prompt, owner=row.owner, repo=row.repo,
            agent=row.agent, base_branch=row.base_branch, branch=row.branch,
            state=TaskState(row.state), version=row.version, created_at=row.created_at,
            updated_at=row.updated_at, state_changed_at=row.state_changed_at,
            started_at=row.started_at, finished_at=row.finished_at,
            queue_position=queue_position, failure_reason=row.failure_reason,
            diff=DiffSummary.from_dict(row.diff), attempts=attempts,
            input_tokens=row.input_tokens or 0, output_tokens=row.output_tokens or 0,
            cost_usd=row.cost_usd or 0.0, pending_interventions=pending, worktree=row.worktree,
            depends_on=tuple(row.depends_on or ()),
            worker=row.worker,
        )

    async def transition(self, task_id: int, from_state: TaskState, to_state: TaskState, *, actor: str,
                         reason: str = "", expected_version: int | None = None, **changes: Any) -> TaskView:
        """Move a task from `from_state` to `to_state` if, and only if, it is still in `from_state`.

        Raises IllegalTransition when the table forbids the edge or someone else moved the
        task first (the loser of a race learns the state it lost to). Changes made at once
        share one transaction (store/moves.py).
        """
        check_transition(task_id, from_state, to_state)
        return await self._moves.submit(Move(task_id, from_state, to_state, actor, reason, expected_version, changes))

    async def last_transition(self, task_id: int) -> TransitionRecord | None:
        """The latest entry of the task's audit log: who moved it into its current state."""
        async with self.session() as s:
            row = (await s.execute(select(TransitionRow).where(TransitionRow.task_id == task_id)
                                   .order_by(TransitionRow.id.desc()).limit(1))).scalar()
        if row is None:
            return None
        return TransitionRecord(task_id=row.task_id, from_state=TaskState(row.from_state) if row.from_state else None,
                                to_state=TaskState(row.to_state), actor=row.actor, reason=row.reason, at=row.at)

    async def update_task(self, task_id: int, **changes: Any) -> TaskView:
        async with self.writing() as s:
            await s.execute(update(TaskRow).where(TaskRow.id == task_id).values(updated_at=utcnow(), **changes))
        return await self.get_task(task_id)

    async def take_pending_prompt(self, task_id: int) -> str | None:
        """Read and clear the message queued for the task's next session (review feedback, restart)."""
        async with self.writing() as s:
            value = (await s.execute(select(TaskRow.pending_prompt).where(TaskRow.id == task_id))).scalar()
            if value is not None:
                await s.execute(update(TaskRow).where(TaskRow.id == task_id).values(pending_prompt=None))
        return value

    async def add_usage(self, task_id: int, attempt_id: int | None, input_tokens: int, output_tokens: int,
                        cost_usd: float) -> tuple[int, int, float]:
        """Add usage to the task and its attempt; returns the task's new totals (in, out, cost)."""
        async with self.writing() as s:
            await s.execute(update(TaskRow).where(TaskRow.id == task_id).values(
                input_tokens=TaskRow.input_tokens + input_tokens,
                output_tokens=TaskRow.output_tokens + output_tokens,
                cost_usd=TaskRow.cost_usd + cost_usd))
            if attempt_id is not None:
                await s.execute(update(AttemptRow).where(AttemptRow.id == attempt_id).values(
                    input_tokens=AttemptRow.input_tokens + input_tokens,
                    output_tokens=AttemptRow.output_tokens + output_tokens,
                    cost_usd=AttemptRow.cost_usd + cost_usd))
            row = (await s.execute(select(TaskRow.input_tokens, TaskRow.output_tokens, TaskRow.cost_usd)
                                   .where(TaskRow.id == task_id))).one()
        return int(row[0]), int(row[1]), float(row[2])

    async def add_usage_many(self, deltas: Sequence[tuple[int, int | None, int, int, float]],
                             ) -> dict[int, tuple[int, int, float]]:
        """add_usage for many (task id, attempt row id, in, out, cost) at once: one transaction
        of two batched updates and one read; returns each task's new totals."""
        tasks, attempts = cast(Table, TaskRow.__table__), cast(Table, AttemptRow.__table__)
        per_task: dict[int, list[Any]] = {}
        for task_id, _attempt, i, o, c in deltas:
            acc = per_task.setdefault(task_id, [0, 0, 0.0])
            acc[0], acc[1], acc[2] = acc[0] + i, acc[1] + o, acc[2] + c
        grow: dict[str, Any] = {"input_tokens": bindparam("d_in"), "output_tokens": bindparam("d_out"), "cost_usd": bindparam("d_cost")}

        def rows(items: Iterable[tuple[int, Sequence[Any]]]) -> list[dict[str, Any]]:
            return [{"row_id": k, "d_in": i, "d_out": o, "d_cost": c} for k, (i, o, c) in items]

        async with self.writing() as s:
            conn = await s.connection()
            await conn.execute(update(tasks).where(tasks.c.id == bindparam("row_id"))
                               .values({k: tasks.c[k] + v for k, v in grow.items()}), rows(per_task.items()))
            by_attempt = [(a, (i, o, c)) for _t, a, i, o, c in deltas if a is not None]
            if by_attempt:
                await conn.execute(update(attempts).where(attempts.c.id == bindparam("row_id"))
                                   .values({k: attempts.c[k] + v for k, v in grow.items()}), rows(by_attempt))
            found = (await conn.execute(select(tasks.c.id, tasks.c.input_tokens, tasks.c.output_tokens,
                                               tasks.c.cost_usd).where(tasks.c.id.in_(list(per_task))))).all()
        return {row[0]: (int(row[1] or 0), int(row[2] or 0), float(row[3] or 0.0)) for row in found}

    async def transitions(self, task_id: int) -> list[TransitionRecord]:
        async with self.session() as s:
            rows = (await s.execute(select(TransitionRow).where(TransitionRow.task_id == task_id)
                                    .order_by(TransitionRow.id))).scalars().all()
        return [TransitionRecord(task_id=r.task_id, from_state=TaskState(r.from_state) if r.from_state else None,
                                 to_state=TaskState(r.to_state), actor=r.actor, reason=r.reason, at=r.at)
                for r in rows]

    # ---- the dispatch queue ----------------------------------------------------------

    async def queued_task_ids(self) -> list[int]:
        """Tasks in state queued, first come first served."""
        async with self.session() as s:
            return list((await s.execute(_QUEUE_ORDER)).scalars().all())

    # ---- interventions -----------------------------------------------------------------

    async def add_intervention(self, *, task_id: int, attempt: int, request_id: str, kind: InterventionKind,
                               prompt: str, options: Sequence[Option], tool: str | None, detail: str | None,
                               multi_select: bool, answered_by: str | None = None, answer_text: str | None = None,
                               answer_options: Sequence[str] = ()) -> InterventionView:
        """A pending question; with `answered_by`, one answered already (by a policy rule)."""
        async with self.writing() as s:
            now = utcnow()
            row = InterventionRow(
                task_id=task_id, attempt=attempt, request_id=request_id, kind=kind.value, prompt=prompt,
                options=[{"id": o.id, "label": o.label, "kind": o.kind, "description": o.description}
                         for o in options],
                tool=tool, detail=detail, multi_select=multi_select,
                status=(InterventionStatus.ANSWERED if answered_by else InterventionStatus.PENDING).value,
                answered_by=answered_by, answer_text=answer_text, answer_options=list(answer_options),
                created_at=now, resolved_at=now if answered_by else None)
            s.add(row)
        return _intervention_view(row)

    async def ask(self, *, task_id: int, actor: str, reason: str,
                  **question: Any) -> tuple[InterventionView, bool, TaskView]:
        """add_intervention and, if the task is in progress, its move to blocked, in one
        transaction: the question path's one write (questions asked at once share it). Returns
        the question, whether the task moved, and the task as it now is."""
        check_transition(task_id, TaskState.IN_PROGRESS, TaskState.BLOCKED)
        return await self._asks.submit({"task_id": task_id, "actor": actor, "reason": reason, **question})

    async def get_intervention(self, intervention_id: int) -> InterventionView | None:
        if not _storable_id(intervention_id):
            return None
        return await self._intervention_reads.submit(intervention_id)

    async def _read_interventions(self, s: AsyncSession, ids: Sequence[int]) -> list[InterventionView | None]:
        rows = (await s.execute(select(InterventionRow).where(InterventionRow.id.in_(set(ids))))).scalars().all()
        found = {row.id: _intervention_view(row) for row in rows}
        return [found.get(iv_id) for iv_id in ids]

    async def interventions(self, task_id: int | None = None, *, status: InterventionStatus | None = None,
                            ) -> list[InterventionView]:
        query = select(InterventionRow).order_by(InterventionRow.id)
        if task_id is not None:
            query = query.where(InterventionRow.task_id == task_id)
        if status is not None:
            query = query.where(InterventionRow.status == status.value)
        async with self.session() as s:
            rows = (await s.execute(query)).scalars().all()
        return [_intervention_view(r) for r in rows]

    async def resolve_intervention(self, intervention_id: int, status: InterventionStatus, *,
                                   answered_by: str | None = None, answer_text: str | None = None,
                                   answer_options: Sequence[str] = ()) -> InterventionView | None:
        """Close a pending intervention; None if it was no longer pending (someone else won).
        Questions closed at once share a transaction (questions.resolve_all)."""
        if not _storable_id(intervention_id):
            return None
        return await self._resolves.submit({"id": intervention_id, "status": status, "answered_by": answered_by,
                                            "answer_text": answer_text, "answer_options": tuple(answer_options)})

    async def mark_reminded(self, intervention_id: int) -> None:
        async with self.writing() as s:
            await s.execute(update(InterventionRow).where(InterventionRow.id == intervention_id)
                            .values(reminded_at=utcnow()))

    # ---- attempts --------------------------------------------------------------------

    async def start_attempt(self, task_id: int, harness: str) -> tuple[int, int, str]:
        """Record a new attempt; returns (attempt row id, attempt number, ownership token)."""
        token = secrets.token_hex(16)
        async with self.writing() as s:
            number = (await s.execute(select(func.count()).where(AttemptRow.task_id == task_id))).scalar_one() + 1
            row = AttemptRow(task_id=task_id, number=number, harness=harness, token=token, started_at=utcnow(),
                             input_tokens=0, output_tokens=0, cost_usd=0.0)
            s.add(row)
        return row.id, number, token

    async def update_attempt(self, attempt_id: int, **changes: Any) -> None:
        async with self.writing() as s:
            await s.execute(update(AttemptRow).where(AttemptRow.id == attempt_id).values(**changes))

    async def end_attempt(self, attempt_id: int, outcome: str, error: str | None = None) -> None:
        await self.update_attempt(attempt_id, outcome=outcome, error=error, ended_at=utcnow())

    async def attempts(self, task_id: int) -> list[AttemptView]:
        async with self.session() as s:
            rows = (await s.execute(select(AttemptRow).where(AttemptRow.task_id == task_id)
                                    .order_by(AttemptRow.number))).scalars().all()
        return [AttemptView(task_id=r.task_id, number=r.number, started_at=r.started_at, ended_at=r.ended_at,
                            outcome=r.outcome, error=r.error, harness_session_id=r.harness_session_id,
                            input_tokens=r.input_tokens, output_tokens=r.output_tokens, cost_usd=r.cost_usd,
                            extra={"pid": r.pid, "token": r.token, "id": r.id, "harness": r.harness})
                for r in rows]

    async def open_attempts(self) -> list[AttemptView]:
        async with self.session() as s:
            rows = (await s.execute(select(AttemptRow.task_id).where(AttemptRow.ended_at.is_(None))
                                    .distinct())).scalars().all()
        result: list[Any] = []
        for task_id in rows:
            result.extend(a for a in await self.attempts(task_id) if a.ended_at is None)
        return result

    async def last_session_id(self, task_id: int) -> str | None:
        async with self.session() as s:
            return (await s.execute(select(AttemptRow.harness_session_id)
                                    .where(AttemptRow.task_id == task_id,
                                           AttemptRow.harness_session_id.is_not(None))
                                    .order_by(AttemptRow.number.desc()).limit(1))).scalar()

    # ---- key-value for the surface layer ------------------------------------------------

    async def kv_get(self, key: str, default: Any = None) -> Any:
        async with self.session() as s:
            row = await s.get(KeyValueRow, key)
        return row.value if row is not None else default

    async def kv_set(self, key: str, value: Any) -> None:
        async with self.writing() as s:
            row = await s.get(KeyValueRow, key)
            if row is None:
                s.add(KeyValueRow(key=key, value=value, updated_at=utcnow()))
            else:
                row.value = value
                row.updated_at = utcnow()

    async def kv_delete(self, key: str) -> None:
        async with self.writing() as s:
            row = await s.get(KeyValueRow, key)
            if row is not None:
                await s.delete(row)

    async def kv_items(self, prefix: str) -> dict[str, Any]:
        async with self.session() as s:
            rows = (await s.execute(select(KeyValueRow).where(KeyValueRow.key.startswith(prefix)))).scalars().all()
        return {r.key: r.value for r in rows}

    # ---- inbound deliveries already handled (dedupe) ---------------------------------------

    async def claim_delivery(self, key: str) -> bool:
        """Record `key` unless it is there already: True for exactly one caller, across
        restarts and across processes sharing the database (a unique key, insert-if-absent)."""
        return await self._claims.claim(key)

    async def prune_deliveries(self, older_than: datetime) -> int:
        async with self.writing() as s:
            result = await s.execute(delete(DeliveryRow).where(DeliveryRow.seen_at < older_than))
            return rowcount(result)
