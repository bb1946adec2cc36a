"""Writes that arrive while another write is under way go into the next transaction together.

SQLite has one writer and every transaction costs its own begin, commit and connection hand-over;
fifty people answering at once, or fifty messages marked sent, one by one, make the fiftieth wait
for the forty-nine before it. Batched, it waits for one transaction (group commit).
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

Item = TypeVar("Item")
Result = TypeVar("Result")
Writing = Callable[..., AbstractAsyncContextManager[AsyncSession]]
Apply = Callable[[AsyncSession, Sequence[Item]], Awaitable[Sequence[Result]]]


class WriteBatcher(Generic[Item, Result]):
    """`submit(item)` resolves with `apply`'s result for it, once the transaction that holds it
    committed. `apply(session, items)` returns one result per item, in order. When a batch
    fails, its items are tried again one by one: one bad item fails only its own caller."""

    def __init__(self, writing: Writing, apply: Apply[Item, Result], *, urgent: bool = False, name: str = "batch"):
        self._writing = writing
        self._apply = apply
        self._urgent = urgent
        self._name = name
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flushing: asyncio.Task[None] | None = None

    def submit(self, item: Item) -> Awaitable[Result]:
        done: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush(), name=self._name)
        return done

    async def _flush(self) -> None:
        while self._waiting:
            batch: list[tuple[Item, asyncio.Future[Result]]] = []
            try:
                async with self._writing(urgent=self._urgent) as s:
                    batch, self._waiting = self._waiting, []       # all that came while waiting for the turn
                    results = await self._apply(s, [item for item, _ in batch])
            except Exception as exc:
                if len(batch) > 1:
                    for one in batch:
                        await self._alone(*one)
                    continue
                for _, done in batch or self._waiting:
                    if not done.done():
                        done.set_exception(exc)
                if not batch:
                    self._waiting = []
                continue
            for (_, done), result in zip(batch, results, strict=True):
                if not done.done():
                    done.set_result(result)

    async def _alone(self, item: Item, done: asyncio.Future[Result]) -> None:
        try:
            async with self._writing(urgent=self._urgent) as s:
                result = (await self._apply(s, [item]))[0]
        except Exception as exc:
            if not done.done():
                done.set_exception(exc)
        else:
            if not done.done():
                done.set_result(result)
