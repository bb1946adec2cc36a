"""Codex's app-server protocol (JSON-RPC 2.0 on stdio, see jsonrpc.py) as calls:

    initialize / initialized  ->  thread/start (or thread/resume)  ->  turn/start {prompt}

plus turn/steer and turn/interrupt, and the processes Codex starts for its commands (each in
a session of its own, outside the app-server's process group) so stop() can end them too.
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import HarnessError
from ..jsonrpc import JsonRpcPeer, RpcError, RpcHandler
from ..options import taskpin_version
from ..process import AgentStderr, descendants, proc_table, processes_with_env
from .translate import text_input

__all__ = ["CodexClient", "CommandSessions", "RpcError"]


class CodexClient:
    def __init__(self, proc: asyncio.subprocess.Process, handler: RpcHandler, stderr: AgentStderr, *,
                 room: Callable[[], Awaitable[None]] | None = None):
        self.rpc = JsonRpcPeer(
            proc.stdin, proc.stdout, name="codex app-server", handler=handler,
            exited=lambda: proc.returncode is not None,
            on_garbage=lambda line: stderr.write_log(b"[codex stdout] " + line),
            closed_reason=stderr.suffix, room=room)   # room: back-pressure (jsonrpc.py)

    async def open_thread(self, thread_params: dict[str, Any], resume_id: str | None) -> str:
        """initialize, then a new thread (or the resumed one): its id."""
        await self.rpc.request("initialize", {
            "clientInfo": {"name": "taskpin", "title": "taskpin", "version": taskpin_version()},
            "capabilities": None,
        })
        await self.rpc.notify("initialized")
        if resume_id is not None:
            result = await self.rpc.request("thread/resume", {"threadId": resume_id, **thread_params,
                                                              "excludeTurns": True})
        else:
            result = await self.rpc.request("thread/start", thread_params)
        thread = (result or {}).get("thread") or {}
        thread_id = thread.get("id") or resume_id
        if not thread_id:
            raise HarnessError(f"codex answered thread start without a thread id: {result!r}")
        return str(thread_id)

    async def start_turn(self, thread_id: str, text: str) -> dict[str, Any]:
        result = await self.rpc.request("turn/start", {"threadId": thread_id, "input": [text_input(text)]})
        return (result or {}).get("turn") or {}

    async def steer(self, thread_id: str, turn_id: str, text: str) -> None:
        await self.rpc.request("turn/steer", {"threadId": thread_id, "expectedTurnId": turn_id,
                                              "input": [text_input(text)]}, timeout=10)

    async def interrupt(self, thread_id: str, turn_id: str) -> None:
        await self.rpc.request("turn/interrupt", {"threadId": thread_id, "turnId": turn_id}, timeout=1.0)

    async def respond(self, rpc_id: int | str, result: Any) -> None:
        await self.rpc.respond(rpc_id, result)

    async def respond_error(self, rpc_id: int | str, code: int, message: str) -> None:
        await self.rpc.respond_error(rpc_id, code, message)


class CommandSessions:
    """The processes Codex started outside its own group: its descendants in other process
    groups, everything in the sessions they started (an orphan there has lost its parent
    link, so the sessions are remembered while the link still exists), and any process that
    carries this attempt's environment marker (a command started and orphaned between two
    looks at the tree still has it)."""

    def __init__(self, pgid: int, marker: bytes | None = None):
        self._pgid = pgid
        self._marker = marker
        self._descendants: set[int] = set()
        self._sessions: set[int] = set()

    def others(self) -> set[int]:
        found = self._learn()
        if self._marker is not None:
            found |= set(processes_with_env(self._marker))
        return found - {os.getpid()}

    def _learn(self) -> set[int]:
        table = proc_table()
        pgid = self._pgid
        for pid in descendants(pgid, table):
            sid = table[pid][3]
            if sid != pgid and sid > 1:
                self._sessions.add(sid)
            self._descendants.add(pid)
        found = {p for p, (_pp, pg, st, sid) in table.items()
                 if st != b"Z" and pg != pgid and (p in self._descendants or sid in self._sessions)}
        self._descendants &= set(table)
        return found

    def remember(self) -> None:
        """Learn the tree now (a command just started, or before an interrupt orphans it)."""
        try:
            self._learn()
        except OSError:
            pass
