"""JSON-RPC 2.0 over a child's stdio, one message per line (newline-delimited JSON).

Used by the adapters whose agent speaks line-delimited JSON-RPC without a client library
(Codex's app-server). The ACP adapter uses the `acp` package's own connection instead.

A JsonRpcPeer writes requests, notifications and responses to the agent's stdin and reads
its stdout: responses resolve the matching request; notifications and server requests go to
the handler given at construction, in the order they arrive (a server request is awaited
before the next message is read, so the adapter sees a consistent order of events).

Back-pressure: with `room` (e.g. SessionEvents.room), the reader awaits it after dispatching
each notification, so a consumer that falls behind stops the reading and the agent's writes
block. It never waits while one of our requests waits for its response (the response would
never be read), and a request sent while it waits ends the wait: the reader then reads on,
unpaused, until no request is pending.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .errors import HarnessError

log = logging.getLogger(__name__)

METHOD_NOT_FOUND = -32601


class RpcError(HarnessError):
    """The peer answered a request with an error object."""

    def __init__(self, method: str, error: Any):
        self.error = error if isinstance(error, dict) else {"message": str(error)}
        super().__init__(f"{method} failed: {self.error.get('message') or self.error}")


class RpcHandler(Protocol):
    def on_notification(self, method: str, params: dict[str, Any]) -> None: ...

    async def on_request(self, rpc_id: int | str, method: str, params: dict[str, Any]) -> None:
        """A server request: answer it (now or later) with respond() or respond_error()."""
        ...


class JsonRpcPeer:
    def __init__(self, stdin: asyncio.StreamWriter | None, stdout: asyncio.StreamReader | None, *,
                 name: str, handler: RpcHandler, exited: Callable[[], bool],
                 on_garbage: Callable[[bytes], None] | None = None,
                 closed_reason: Callable[[], str] = lambda: "",
                 room: Callable[[], Awaitable[None]] | None = None):
        self._stdin = stdin
        self._stdout = stdout
        self._name = name                  # "codex app-server", for errors
        self._handler = handler
        self._exited = exited              # has the process exited?
        self._on_garbage = on_garbage      # a stdout line that is not JSON
        self._closed_reason = closed_reason
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[Any]]] = {}
        self._write_lock = asyncio.Lock()
        self._room = room                  # back-pressure, see the module docstring
        self._asked: asyncio.Future[None] | None = None   # set by a request while the reader waits

    # -- writing --

    async def _write(self, obj: dict[str, Any]) -> None:
        stdin = self._stdin
        if self._exited() or stdin is None or stdin.is_closing():
            raise HarnessError(f"{self._name} has exited")
        data = (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        async with self._write_lock:
            try:
                stdin.write(data)
                await stdin.drain()
            except (BrokenPipeError, ConnectionResetError, OSError, RuntimeError) as exc:
                raise HarnessError(f"cannot write to {self._name}: {exc}") from exc

    async def request(self, method: str, params: Any, *, timeout: float | None = None) -> Any:
        """The result of `method`; RpcError for an error answer, HarnessError when the peer is
        gone, asyncio.TimeoutError after `timeout`."""
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = (method, fut)
        if self._asked is not None and not self._asked.done():
            self._asked.set_result(None)   # the reader must read on to see the response
        try:
            await self._write({"id": rid, "method": method, "params": params})
            if timeout is None:
                return await fut
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(rid, None)

    async def notify(self, method: str, params: Any = None) -> None:
        msg: dict[str, Any] = {"method": method}
        if params is not None:
            msg["params"] = params
        await self._write(msg)

    async def respond(self, rpc_id: int | str, result: Any) -> None:
        await self._write({"id": rpc_id, "result": result})

    async def respond_error(self, rpc_id: int | str, code: int, message: str) -> None:
        """An error answer; a peer that is gone is not an error here (it asked nothing more)."""
        try:
            await self._write({"id": rpc_id, "error": {"code": code, "message": message}})
        except HarnessError:
            pass

    # -- reading --

    async def read_loop(self) -> None:
        """Read messages until EOF; then every pending request fails with HarnessError."""
        assert self._stdout is not None
        try:
            while True:
                try:
                    line = await self._stdout.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    log.warning("%s: dropped an over-long message", self._name)
                    continue
                if not line:
                    return
                line = line.strip()
                if not line:
                    continue
                try:
                    msg = json.loads(line)
                except ValueError:
                    if self._on_garbage is not None:
                        self._on_garbage(line)
                    continue
                if isinstance(msg, dict):
                    try:
                        await self._dispatch(msg)
                    except HarnessError as exc:   # e.g. a write after the process died
                        log.info("%s: %s", self._name, exc)
                    if "method" in msg and "id" not in msg:
                        await self._wait_for_room()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a handler bug must not hang the session
            log.exception("reading %s stdout failed", self._name)
        finally:
            for _method, fut in list(self._pending.values()):
                if not fut.done():
                    fut.set_exception(HarnessError(f"{self._name} exited{self._closed_reason()}"))

    async def _wait_for_room(self) -> None:
        """Back-pressure after a notification: wait for room(), but not while (or once) one of
        our requests waits for its response."""
        if self._room is None or self._pending:
            return
        asked = self._asked = asyncio.get_running_loop().create_future()
        room = asyncio.ensure_future(self._room())
        try:
            await asyncio.wait({room, asked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._asked = None
            if room.done():
                room.result()   # room()'s own failure is a bug worth seeing
            else:
                room.cancel()

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        method = msg.get("method")
        if method is None:   # a response to one of our requests
            pending = self._pending.get(msg.get("id"))  # type: ignore[arg-type]
            if pending is not None and not pending[1].done():
                name, fut = pending
                if "error" in msg:
                    fut.set_exception(RpcError(name, msg["error"]))
                else:
                    fut.set_result(msg.get("result"))
            return
        params = msg.get("params") or {}
        if "id" in msg:
            await self._handler.on_request(msg["id"], method, params)
        else:
            self._handler.on_notification(method, params)

