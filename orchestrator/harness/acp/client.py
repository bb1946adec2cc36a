"""The ACP client side taskpin implements, on the `acp` package (agent-client-protocol),
whose connection does the JSON-RPC: session updates and permission requests are forwarded
to the session; fs reads and writes are confined to the task's worktree; no terminal.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..base import HarnessEvent, ToolActivity
from ..errors import HarnessError
from ..options import taskpin_version

log = logging.getLogger(__name__)


def acp_module() -> Any:
    """The `acp` package (agent-client-protocol), imported when an ACP agent is used."""
    try:
        import acp  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise HarnessError("the acp harness needs the agent-client-protocol package: "
                           "pip install agent-client-protocol") from exc
    return acp


class ConfigProblem(Exception):
    """The agent cannot run as configured (e.g. an unknown mode): not worth a retry."""


@dataclass
class OpenedSession:
    session_id: str
    load_supported: bool
    modes: list[str]
    current_mode: str | None
    loaded: bool                      # session/load continued the old session


class TaskpinClient:
    """What the agent may call on taskpin (acp.Client)."""

    def __init__(self, workdir: str | os.PathLike[str], *, on_update: Callable[[Any], None],
                 on_permission: Callable[[Any, list[Any]], Awaitable[Any]],
                 emit: Callable[[HarnessEvent], None]):
        self._workdir = Path(workdir)
        self._root = os.path.realpath(str(workdir))
        self._on_update = on_update
        self._on_permission = on_permission
        self._emit = emit

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        self._on_update(update)

    async def request_permission(self, session_id: str, tool_call: Any, options: list[Any], **kwargs: Any) -> Any:
        return await self._on_permission(tool_call, options)

    async def read_text_file(self, session_id: str, path: str, line: int | None = None, limit: int | None = None,
                             **kwargs: Any) -> Any:
        acp = acp_module()
        target = self._confine(path, "read")
        try:
            text = await asyncio.to_thread(target.read_text, encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise acp.RequestError.resource_not_found(path) from None
        except OSError as exc:
            raise acp.RequestError.internal_error({"details": f"cannot read {path}: {exc.strerror or exc}"}) from None
        if line is not None or limit is not None:
            lines = text.splitlines(keepends=True)
            start = max((line or 1) - 1, 0)
            text = "".join(lines[start:start + limit if limit is not None else None])
        return acp.schema.ReadTextFileResponse(content=text)

    async def write_text_file(self, session_id: str, path: str, content: str, **kwargs: Any) -> Any:
        acp = acp_module()
        target = self._confine(path, "write")

        def write() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            raise acp.RequestError.internal_error({"details": f"cannot write {path}: {exc.strerror or exc}"}) from None
        return acp.schema.WriteTextFileResponse()

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise acp_module().RequestError.method_not_found(f"_{method}")

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        return None

    def _confine(self, path: str, action: str) -> Path:
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = self._workdir / candidate
        resolved = os.path.realpath(candidate)
        if resolved != self._root and not resolved.startswith(self._root + os.sep):
            self._emit(ToolActivity(tool="fs", detail=f"refused to {action} {path}: outside the task's worktree"))
            raise acp_module().RequestError(-32602, f"refused: {path} is outside the task's worktree {self._root}",
                                            {"path": path})
        return Path(resolved)


async def open_session(conn: Any, cwd: str, resume_id: str | None, mode: str | None, *,
                       replaying: Callable[[bool], None]) -> OpenedSession:
    """initialize, then session/load (resume, when the agent can) or session/new, then the
    session mode. `replaying(True/False)` brackets the history a session/load replays."""
    acp = acp_module()
    schema = acp.schema
    init = await conn.initialize(
        protocol_version=acp.PROTOCOL_VERSION,
        client_capabilities=schema.ClientCapabilities(
            fs=schema.FileSystemCapabilities(read_text_file=True, write_text_file=True), terminal=False),
        client_info=schema.Implementation(name="taskpin", title="taskpin", version=taskpin_version()),
    )
    caps = init.agent_capabilities
    load_supported = bool(caps and caps.load_session)
    if resume_id and load_supported:
        replaying(True)
        try:
            loaded = await conn.load_session(cwd=cwd, session_id=resume_id, mcp_servers=[])
        finally:
            replaying(False)
        session_id, modes = resume_id, (loaded.modes if loaded is not None else None)
    else:
        created = await conn.new_session(cwd=cwd, mcp_servers=[])
        session_id, modes = created.session_id, created.modes
    opened = OpenedSession(session_id, load_supported, [], None, bool(resume_id and load_supported))
    if modes is not None:
        opened.modes = [m.id for m in modes.available_modes]
        opened.current_mode = modes.current_mode_id
    if mode and mode != opened.current_mode:
        if opened.modes and mode not in opened.modes:
            raise ConfigProblem(f"the agent has no session mode {mode!r}; its modes are: {', '.join(opened.modes)}")
        await conn.set_session_mode(session_id=session_id, mode_id=mode)
        opened.current_mode = mode
    return opened


class StdoutRelay:
    """The agent's stdout, relayed line by line into `reader` (what the acp connection reads)
    with room() awaited before each line: back-pressure. The connection runs every notification
    in a task of its own, so a handler that waits would not stop its reading; this does, and
    then the agent's stdout pipe fills and its writes block. `reader` gets EOF when the agent's
    stdout does (or the relay ends otherwise)."""

    def __init__(self, stdout: asyncio.StreamReader, room: Callable[[], Awaitable[None]], *, limit: int):
        self.reader = asyncio.StreamReader(limit=limit)
        self._stdout = stdout
        self._room = room
        self.waiting = False      # paused in room(): the rest waits for taskpin, not for the agent

    async def run(self) -> None:
        src, dst = self._stdout, self.reader
        try:
            while True:
                try:
                    data = await src.readuntil(b"\n")
                except asyncio.LimitOverrunError as exc:
                    data = await src.readexactly(exc.consumed)    # a piece of an over-long line
                except asyncio.IncompleteReadError as exc:        # EOF
                    if exc.partial:
                        dst.feed_data(exc.partial)
                    return
                self.waiting = True
                try:
                    await self._room()
                finally:
                    self.waiting = False
                dst.feed_data(data)
                # Let the connection take the line and start its handler before the next room()
                # check, so what is queued counts it (else a full pipe buffer goes through at once).
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the connection sees EOF and ends the session
            log.info("relaying the ACP agent's stdout failed: %s", exc)
        finally:
            dst.feed_eof()


def describe(exc: BaseException) -> str:
    data = getattr(exc, "data", None)
    text = str(exc) or type(exc).__name__
    if data:
        with contextlib.suppress(TypeError, ValueError):
            text += " " + json.dumps(data, ensure_ascii=False)[:500]
    return text
