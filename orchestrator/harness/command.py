"""The `command` harness: any executable that speaks JSON lines on stdin/stdout.

The agent runs in the task's worktree as its own process group. taskpin writes the prompt,
answers and follow-up messages to its stdin; the agent writes one JSON event per line to
stdout. Lines that are not JSON events are shown as output, and the legacy plain-text marker
``[INTERVENTION_REQUIRED]`` asks the human for one line of input. The full protocol is in
docs/command-protocol.md.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import json
import logging
import signal
from collections import deque
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from ..config import AgentConfig
from ..models import Answer, InterventionKind, Option
from .base import (
    Failed,
    Finished,
    HarnessEvent,
    InterventionRequest,
    OutputText,
    SessionIdAssigned,
    SessionSpec,
    ToolActivity,
    Usage,
)
from .env import agent_env
from .errors import HarnessConfigError, HarnessError
from .options import (
    agent_options,
    argv_option,
    bool_option,
    env_option,
    executable_problem,
    json_text,
    require_cost,
    require_count,
    require_str,
    seconds_option,
)
from .process import (
    AgentStderr,
    close_stdin,
    describe_exit,
    settle,
    signal_group,
    spawn_agent,
    spawn_error,
    stop_process_group,
)

log = logging.getLogger(__name__)

PROMPT_MODES = ("stdin", "arg", "stdin-text")
LEGACY_MARKER = "[INTERVENTION_REQUIRED]"
DEFAULT_STOP_GRACE_S = 5.0

STREAM_LIMIT = 4 * 1024 * 1024        # asyncio StreamReader buffer limit for stdout/stderr
MAX_LINE_BYTES = 1024 * 1024          # longer lines are truncated (the rest is discarded)
SUMMARY_LINES = 5                     # output lines kept for an implicit Finished summary
MAX_ENV_PROMPT_BYTES = 100_000       # TASKPIN_PROMPT is cut here (Linux: 128 KiB per env string)
READER_DRAIN_S = 2.0                  # after exit: how long to wait for stdout/stderr EOF

DEFAULT_PERMISSION_OPTIONS = (
    Option(id="allow", label="Approve", kind="allow"),
    Option(id="deny", label="Deny", kind="deny"),
)
_OPTION_KINDS = ("allow", "deny", "other")
_KNOWN_OPTIONS = ("command", "prompt_via", "env", "resume", "follow_up", "stop_grace_s")


def fold_line(text: str) -> str:
    """One line for a plain-text agent: every newline (and CR) becomes a single space."""
    return " ".join(part for part in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


def _json_line(obj: Mapping[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


# ---- options ----------------------------------------------------------------------------

def _parse_options(options: Mapping[str, Any]) -> dict[str, Any]:
    command = argv_option(options, example='["python", "agent.py"]')

    prompt_via = options.get("prompt_via", "stdin")
    if prompt_via not in PROMPT_MODES:
        raise HarnessConfigError(
            f"prompt_via must be one of {', '.join(PROMPT_MODES)}, got {prompt_via!r}"
        )

    return {
        "command": command,
        "prompt_via": prompt_via,
        "env": env_option(options),
        "resume": bool_option(options, "resume", False),
        "follow_up": bool_option(options, "follow_up", prompt_via != "stdin-text"),
        "stop_grace_s": seconds_option(options, "stop_grace_s", DEFAULT_STOP_GRACE_S),
    }


# ---- the harness ------------------------------------------------------------------------

class CommandHarness:
    """Runs ``config.command`` (an argv list) per session and speaks the JSON-lines protocol."""

    kind = "command"

    def __init__(self, config: AgentConfig | Mapping[str, Any], *, stop_grace_s: float | None = None):
        opts = _parse_options(agent_options(config))
        self.command: list[str] = opts["command"]
        self.prompt_via: str = opts["prompt_via"]
        self.env: dict[str, str] = opts["env"]
        self.follow_up: bool = opts["follow_up"]
        self.stop_grace_s: float = opts["stop_grace_s"] if stop_grace_s is None else float(stop_grace_s)
        self._resume: bool = opts["resume"]

    @property
    def supports_resume(self) -> bool:
        return self._resume

    async def start(self, spec: SessionSpec) -> CommandSession:
        return await self._launch(spec, resume_id=None)

    async def resume(self, spec: SessionSpec) -> CommandSession:
        if not self._resume:
            raise HarnessError("this command agent does not support resume (set resume = true if it does)")
        if not spec.resume_session_id:
            raise HarnessError("cannot resume: no session id was recorded for this task")
        return await self._launch(spec, resume_id=spec.resume_session_id)

    def check(self) -> list[str]:
        if not self.command:
            return ['command is not set: add e.g. command = ["python", "agent.py"] to this agent']
        problem = executable_problem(self.command[0], self.env, interpreter="python")
        return [problem] if problem else []

    # -- internals --

    def build_env(self, spec: SessionSpec, resume_id: str | None = None) -> dict[str, str]:
        env = agent_env(self.env, spec.env)
        env.update({
            "TASKPIN_TASK_ID": str(spec.task_id),
            "TASKPIN_ATTEMPT": str(spec.attempt),
            "TASKPIN_PROMPT": _cut_utf8(spec.prompt.replace("\0", ""), MAX_ENV_PROMPT_BYTES),
            "TASKPIN_WORKDIR": str(spec.workdir),
        })
        if resume_id is not None:
            env["TASKPIN_RESUME_SESSION"] = resume_id
        else:
            env.pop("TASKPIN_RESUME_SESSION", None)
        return env

    async def _launch(self, spec: SessionSpec, resume_id: str | None) -> CommandSession:
        if not self.command:
            raise HarnessError('command is not set: add e.g. command = ["python", "agent.py"] to this agent')
        argv = list(self.command)
        if self.prompt_via == "arg":
            argv.append(spec.prompt.replace("\0", ""))  # exec cannot pass a NUL byte
        if spec.log_path is not None:
            Path(spec.log_path).parent.mkdir(parents=True, exist_ok=True)
        try:
            proc = await spawn_agent(argv, cwd=spec.workdir, env=self.build_env(spec, resume_id), limit=STREAM_LIMIT)
        except (OSError, ValueError) as exc:  # ValueError: e.g. a NUL byte in an argument
            if isinstance(exc, OSError) and exc.errno == errno.E2BIG:
                raise HarnessError(
                    "cannot start agent: the prompt is too long for a command-line argument; "
                    'use prompt_via = "stdin"'
                ) from exc
            raise spawn_error(exc, argv, spec.workdir) from exc

        session = CommandSession(
            proc,
            spec,
            json_stdin=self.prompt_via != "stdin-text",
            follow_up=self.follow_up,
            stop_grace_s=self.stop_grace_s,
        )
        if self.prompt_via == "stdin":
            prompt: dict[str, Any] = {
                "type": "prompt", "text": spec.prompt, "task_id": spec.task_id, "attempt": spec.attempt,
            }
            if resume_id is not None:
                prompt["resume_session"] = resume_id
            session._write_nowait(_json_line(prompt))
        elif self.prompt_via == "stdin-text":
            session._write_nowait((fold_line(spec.prompt) + "\n").encode("utf-8"))
        session._begin()
        return session


class CommandSession:
    """One running agent process (and its process group)."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        spec: SessionSpec,
        *,
        json_stdin: bool,
        follow_up: bool,
        stop_grace_s: float,
    ):
        self._proc = proc
        self._spec = spec
        self._json_stdin = json_stdin
        self._follow_up = follow_up
        self._grace = stop_grace_s
        self._queue: asyncio.Queue[HarnessEvent] = asyncio.Queue()
        self._terminal: Finished | Failed | None = None      # from a finished/failed line
        self._terminal_seen = asyncio.Event()
        self._delivered_end = False
        self._end_queued = False                               # the final event is in the queue
        self._stop_reason: str | None = None
        self._stop_lock = asyncio.Lock()
        self._term_lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()
        self._group_dead = False
        self._output_tail: deque[str] = deque(maxlen=SUMMARY_LINES)
        self._stderr = AgentStderr(spec.log_path)   # closed in _supervise
        self._marker_ids = itertools.count(1)
        self._marker_requests: set[str] = set()
        self._tasks: list[asyncio.Task] = []
        self.session_id: str | None = None

    # -- AgentSession --

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def supports_follow_up(self) -> bool:
        return self._follow_up

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    async def events(self) -> AsyncIterator[HarnessEvent]:
        if self._delivered_end:
            return
        while True:
            event = await self._queue.get()
            if isinstance(event, (Finished, Failed)):
                self._delivered_end = True
                yield event
                return
            yield event

    async def answer(self, request_id: str, answer: Answer, request: InterventionRequest) -> None:
        if request_id in self._marker_requests:
            # A legacy marker agent reads one plain line.
            text = answer.text
            if not text and answer.option_ids:
                labels = {o.id: o.label for o in request.options}
                text = ", ".join(labels.get(o, o) for o in answer.option_ids)
            await self._write((fold_line(text) + "\n").encode("utf-8"), "answer")
            return
        option_ids = list(answer.option_ids)
        if not option_ids and request.kind == InterventionKind.PERMISSION:
            # A reply without a button to a permission means "deny, and here is why".
            deny = next((o.id for o in request.options if o.kind == "deny"), None)
            if deny is not None:
                option_ids = [deny]
        line = _json_line({
            "type": "answer",
            "id": request_id,
            "option": option_ids[0] if option_ids else None,
            "options": option_ids,
            "text": answer.text,
        })
        await self._write(line, "answer")

    async def send(self, text: str) -> None:
        if not self._follow_up:
            raise HarnessError("this agent does not accept follow-up messages while it runs")
        if self._json_stdin:
            await self._write(_json_line({"type": "message", "text": text}), "message")
        else:
            await self._write((fold_line(text) + "\n").encode("utf-8"), "message")

    async def interrupt(self) -> None:
        """Ask the agent to stop, then end it: for a command agent an interrupt ends the session."""
        if self._proc.returncode is not None:
            await self.stop()
            return
        self._stop_reason = self._stop_reason or "interrupted by taskpin"
        if self._json_stdin:
            with contextlib.suppress(HarnessError):
                await asyncio.wait_for(self._write(_json_line({"type": "interrupt"}), "interrupt"), 1.0)
        signal_group(self._proc.pid, signal.SIGINT)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._proc.wait()), self._grace)
        await self.stop()

    async def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after the grace period, reap. Idempotent."""
        async with self._stop_lock:
            if self._proc.returncode is None:
                self._stop_reason = self._stop_reason or "stopped by taskpin"
            await self._terminate_group()
            # Let the supervisor queue the final event and close everything.
            await settle(self._tasks, READER_DRAIN_S + 1.0)
            close_stdin(self._proc)

    # -- internals --

    def _begin(self) -> None:
        loop = asyncio.get_running_loop()
        self._stdout_task = loop.create_task(self._read_stdout())
        self._stderr_task = loop.create_task(self._read_stderr())
        self._tasks = [loop.create_task(self._supervise())]

    def _write_nowait(self, data: bytes) -> None:
        stdin = self._proc.stdin
        if stdin is None or stdin.is_closing():
            return
        with contextlib.suppress(Exception):
            stdin.write(data)

    async def _write(self, data: bytes, what: str) -> None:
        stdin = self._proc.stdin
        if self._proc.returncode is not None or stdin is None or stdin.is_closing():
            raise HarnessError(f"cannot send the {what}: the agent process has exited"
                               + (f" (code {self._proc.returncode})" if self._proc.returncode is not None else ""))
        async with self._write_lock:
            try:
                stdin.write(data)
                await stdin.drain()
            except (BrokenPipeError, ConnectionResetError, OSError, RuntimeError) as exc:
                raise HarnessError(f"cannot send the {what}: the agent closed its input ({exc})") from exc

    async def _terminate_group(self) -> None:
        async with self._term_lock:
            if not self._group_dead:
                await stop_process_group(self._proc, self._grace)
                self._group_dead = True

    async def _read_lines(self, reader: asyncio.StreamReader) -> AsyncIterator[str]:
        """Lines without their newline; a line over MAX_LINE_BYTES is truncated, never fatal."""
        while True:
            buf = bytearray()
            dropped = 0
            eof = ended = False
            while not ended:
                try:
                    piece = (await reader.readuntil(b"\n"))[:-1]
                    ended = True
                except asyncio.IncompleteReadError as exc:
                    piece, eof, ended = exc.partial, True, True
                except asyncio.LimitOverrunError as exc:
                    # No newline within the buffer limit: take what is there, keep looking.
                    piece = await reader.read(max(exc.consumed, 1))
                    if not piece:
                        eof = ended = True
                room = MAX_LINE_BYTES - len(buf)
                if room > 0:
                    buf += piece[:room]
                dropped += max(0, len(piece) - max(room, 0))
            if buf.endswith(b"\r"):
                del buf[-1]
            if buf or dropped or not eof:
                text = buf.decode("utf-8", errors="replace")
                if dropped:
                    text += f" … [line truncated: {dropped} more bytes]"
                yield text
            if eof:
                return

    async def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        try:
            async for line in self._read_lines(self._proc.stdout):
                if self._terminal is not None:
                    continue  # events end at finished/failed; the rest is ignored
                for event in self._parse_line(line):
                    if isinstance(event, (Finished, Failed)):
                        self._terminal = event
                        self._terminal_seen.set()
                        break
                    self._queue.put_nowait(event)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a reader bug must not hang the session
            log.exception("reading agent stdout failed")

    async def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        try:
            async for line in self._read_lines(self._proc.stderr):
                self._stderr.add(line)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001
            log.exception("reading agent stderr failed")

    async def _supervise(self) -> None:
        try:
            exited = asyncio.ensure_future(self._proc.wait())
            terminal = asyncio.ensure_future(self._terminal_seen.wait())
            await asyncio.wait({exited, terminal}, return_when=asyncio.FIRST_COMPLETED)
            if not exited.done():
                # The agent said it is done: give it the grace period to exit, then end it.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(exited), self._grace)
                if not exited.done():
                    await self._terminate_group()
            terminal.cancel()
            await exited
            # The leader is gone; stdout/stderr reach EOF unless a child still holds them.
            await settle([self._stdout_task, self._stderr_task], READER_DRAIN_S)
            self._queue_end()
        finally:
            self._queue_end()  # even when cancelled: events() must always end
            if self._proc.returncode is not None:
                close_stdin(self._proc)
            self._stderr.close()

    def _queue_end(self) -> None:
        if not self._end_queued:
            self._end_queued = True
            self._queue.put_nowait(self._final_event())

    def _final_event(self) -> Finished | Failed:
        if self._terminal is not None:
            return self._terminal
        code = self._proc.returncode
        suffix = self._stderr.suffix()
        if self._stop_reason is not None:
            return Failed(self._stop_reason + suffix, retryable=False)
        if code == 0:
            return Finished(summary="\n".join(self._output_tail))
        return Failed(f"{describe_exit(code)}{suffix}", retryable=True)

    # -- parsing --

    def _remember_output(self, text: str) -> None:
        for line in text.splitlines():
            if line.strip():
                self._output_tail.append(line)

    def _plain(self, line: str) -> list[HarnessEvent]:
        marker = line.find(LEGACY_MARKER)
        if marker >= 0:
            after = line[marker + len(LEGACY_MARKER):].strip(" \t:-")
            before = line[:marker].strip()
            prompt = after or before or (self._output_tail[-1] if self._output_tail else "") \
                or "The agent is waiting for input."
            request_id = f"marker-{next(self._marker_ids)}"
            self._marker_requests.add(request_id)
            return [InterventionRequest(request_id=request_id, kind=InterventionKind.INPUT, prompt=prompt)]
        self._remember_output(line)
        return [OutputText(line)]

    def _parse_line(self, line: str) -> list[HarnessEvent]:
        stripped = line.strip()
        if not stripped.startswith("{"):
            return self._plain(line)
        try:
            obj = json.loads(stripped)
        except ValueError:
            return self._plain(line)
        if not isinstance(obj, dict):
            return self._plain(line)
        try:
            event = self._event_from(obj)
        except (KeyError, TypeError, ValueError):
            event = None
        if event is None:
            return self._plain(line)
        if isinstance(event, OutputText):
            self._remember_output(event.text)
        elif isinstance(event, SessionIdAssigned):
            self.session_id = event.session_id
        return [event]

    def _event_from(self, obj: dict[str, Any]) -> HarnessEvent | None:
        kind = obj.get("type")
        if kind == "output":
            return OutputText(require_str(obj["text"]))
        if kind == "activity":
            return ToolActivity(tool=require_str(obj["tool"]), detail=json_text(obj.get("detail", "")))
        if kind == "intervention":
            return self._intervention(obj)
        if kind == "usage":
            return Usage(
                input_tokens=require_count(obj.get("input_tokens", 0)),
                output_tokens=require_count(obj.get("output_tokens", 0)),
                cost_usd=require_cost(obj.get("cost_usd", 0.0)),
            )
        if kind == "session":
            sid = obj["id"]
            if isinstance(sid, bool) or not isinstance(sid, (str, int)) or str(sid) == "":
                return None
            return SessionIdAssigned(str(sid))
        if kind == "finished":
            return Finished(summary=json_text(obj.get("summary", "")))
        if kind == "failed":
            retryable = obj.get("retryable", True)
            if not isinstance(retryable, bool):
                return None
            return Failed(error=json_text(obj.get("error", "")) or "the agent reported a failure", retryable=retryable)
        return None

    def _intervention(self, obj: dict[str, Any]) -> InterventionRequest | None:
        rid = obj["id"]
        if isinstance(rid, bool) or not isinstance(rid, (str, int)) or str(rid) == "":
            return None
        prompt = require_str(obj["prompt"])
        raw_options = obj.get("options") or []
        if not isinstance(raw_options, list):
            return None
        options: list[Option] = []
        for raw in raw_options:
            if isinstance(raw, str):
                options.append(Option(id=raw, label=raw))
                continue
            if not isinstance(raw, dict):
                return None
            oid = raw["id"]
            if isinstance(oid, bool) or not isinstance(oid, (str, int)):
                return None
            okind = raw.get("kind", "other")
            options.append(Option(
                id=str(oid),
                label=json_text(raw.get("label")) or str(oid),
                kind=okind if okind in _OPTION_KINDS else "other",
                description=json_text(raw.get("description", "")),
            ))
        kind_name = obj.get("kind") or ("question" if options else "input")
        kind = InterventionKind(kind_name)
        if kind == InterventionKind.PERMISSION and not options:
            options = list(DEFAULT_PERMISSION_OPTIONS)
        multi = obj.get("multi_select", False)
        if not isinstance(multi, bool):
            return None
        tool = obj.get("tool")
        detail = obj.get("detail")
        return InterventionRequest(
            request_id=str(rid),
            kind=kind,
            prompt=prompt,
            options=tuple(options),
            tool=None if tool is None else json_text(tool),
            detail=None if detail is None else json_text(detail),
            multi_select=multi,
        )


def _cut_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")
