"""Store calls made at once share one transaction: writes that arrive while another write is
under way go into the next one together (group commit), and reads made in the same moment are
one query.

SQLite has one writer and every transaction costs its own begin, commit and connection hand-over;
fifty people answering at once, or fifty messages marked sent, one by one, make the fiftieth wait
for the forty-nine before it. Batched, it waits for one transaction.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from .fence import Fence, current_fence

Item = TypeVar("Item")
Result = TypeVar("Result")
Writing = Callable[..., AbstractAsyncContextManager[AsyncSession]]
Apply = Callable[[AsyncSession, Sequence[Item]], Awaitable[Sequence[Result | Exception]]]


class Batcher(Generic[Item, Result]):
    """`submit(item)` resolves with `apply`'s result for it, once the transaction that holds it
    committed. `apply(session, items)` returns one result per item, in order; a result that is
    an exception is raised to that item's caller alone. When a whole batch fails, its items are
    tried again one by one: one bad item fails only its own caller. Each item keeps the lease
    fence of the task that submitted it (store/fence.py): a batch proves every one of them."""

    def __init__(self, writing: Writing, apply: Apply[Item, Result], *, urgent: bool = False, name: str = "batch",
                 parallel: int = 1):
        """`writing(urgent=...)` opens the session each batch runs in (a write transaction, or
        a plain read session). `parallel`: batches in flight at once (1 on SQLite, whose writes
        take turns anyway; more on a server, where each batch has a connection of its own)."""
        self._writing = writing
        self._apply = apply
        self._urgent = urgent
        self._name = name
        self._waiting: list[tuple[Item, Fence | None, asyncio.Future[Result]]] = []
        self._parallel = max(1, parallel)
        self._flushing: set[asyncio.Task[None]] = set()

    def submit(self, item: Item) -> Awaitable[Result]:
        done: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, current_fence.get(), done))
        # a flush still running looks at the waiting list again before it ends; a done one will not
        if sum(1 for flush in self._flushing if not flush.done()) < self._parallel:
            flush = asyncio.get_running_loop().create_task(self._flush(), name=self._name)
            self._flushing.add(flush)
            flush.add_done_callback(self._flushing.discard)
        return done

    async def _flush(self) -> None:
        while self._waiting:
            batch: list[tuple[Item, Fence | None, asyncio.Future[Result]]] = []
            try:
                async with self._writing(urgent=self._urgent) as s:
                    batch, self._waiting = self._waiting, []       # all that came while waiting for the turn
                    current_fence.set(_all_of({fence for _, fence, _ in batch if fence is not None}))
                    results = await self._apply(s, [item for item, _, _ in batch])
            except Exception as exc:
                if len(batch) > 1:
                    for one in batch:
                        await self._alone(*one)
                    continue
                for _, _, done in batch or self._waiting:
                    _settle(done, exc)
                if not batch:
                    self._waiting = []
                continue
            for (_, _, done), result in zip(batch, results, strict=True):
                _settle(done, result)

    async def _alone(self, item: Item, fence: Fence | None, done: asyncio.Future[Result]) -> None:
        current_fence.set(fence)
        try:
            async with self._writing(urgent=self._urgent) as s:
                result: Result | Exception = (await self._apply(s, [item]))[0]
        except Exception as exc:
            result = exc
        _settle(done, result)


def _settle(done: asyncio.Future[Result], result: Result | BaseException) -> None:
    if done.done():
        return
    if isinstance(result, BaseException):
        done.set_exception(result)
    else:
        done.set_result(result)


def _all_of(fences: set[Fence]) -> Fence | None:
    if len(fences) <= 1:
        return next(iter(fences), None)

    def check(connection: Connection) -> None:
        for fence in fences:
            fence(connection)
    return check
