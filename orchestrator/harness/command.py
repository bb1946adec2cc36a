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
import ctypes
import ctypes.util
import errno
import itertools
import json
import logging
import os
import shutil
import signal
import sys
import time
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
from .env import inherited_env
from .errors import HarnessConfigError, HarnessError

log = logging.getLogger(__name__)

PROMPT_MODES = ("stdin", "arg", "stdin-text")
LEGACY_MARKER = "[INTERVENTION_REQUIRED]"
DEFAULT_STOP_GRACE_S = 5.0

STREAM_LIMIT = 4 * 1024 * 1024        # asyncio StreamReader buffer limit for stdout/stderr
MAX_LINE_BYTES = 1024 * 1024          # longer lines are truncated (the rest is discarded)
SUMMARY_LINES = 5                     # output lines kept for an implicit Finished summary
STDERR_TAIL_LINES = 10                # stderr lines kept for error messages
ERROR_TAIL_LINES = 5                  # ...of which this many go into a Failed error
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


# ---- PR_SET_PDEATHSIG ---------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_libc: Any = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(Exception):  # no libc via ctypes: simply no death signal
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _child_preexec() -> None:  # pragma: no cover - runs in the forked child
    # Runs between fork and exec: the direct child gets SIGKILL when taskpin dies, even by
    # SIGKILL. (The rest of the group is cleaned up by the core's recovery, by pgid.)
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


# ---- options ----------------------------------------------------------------------------

def _parse_options(options: Mapping[str, Any]) -> dict[str, Any]:
    command = options.get("command")
    if isinstance(command, str):
        raise HarnessConfigError(
            f"command must be a list of arguments, not a shell string: write "
            f"command = {json.dumps(command.split() or ['path/to/agent'])} "
            f"(taskpin never runs agents through a shell)"
        )
    if command is None:
        command = []
    if not isinstance(command, (list, tuple)) or not all(isinstance(a, str) for a in command):
        raise HarnessConfigError(
            f'command must be a list of strings like ["python", "agent.py"], got {command!r}'
        )

    prompt_via = options.get("prompt_via", "stdin")
    if prompt_via not in PROMPT_MODES:
        raise HarnessConfigError(
            f"prompt_via must be one of {', '.join(PROMPT_MODES)}, got {prompt_via!r}"
        )

    env = options.get("env") or {}
    if not isinstance(env, Mapping):
        raise HarnessConfigError(f"env must be a table of NAME = value, got {env!r}")
    env = {str(k): str(v) for k, v in env.items()}

    resume = options.get("resume", False)
    if not isinstance(resume, bool):
        raise HarnessConfigError(f"resume must be true or false, got {resume!r}")

    follow_up = options.get("follow_up", prompt_via != "stdin-text")
    if not isinstance(follow_up, bool):
        raise HarnessConfigError(f"follow_up must be true or false, got {follow_up!r}")

    grace = options.get("stop_grace_s", DEFAULT_STOP_GRACE_S)
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0:
        raise HarnessConfigError(f"stop_grace_s must be a number >= 0, got {grace!r}")

    return {
        "command": list(command),
        "prompt_via": prompt_via,
        "env": env,
        "resume": resume,
        "follow_up": follow_up,
        "stop_grace_s": float(grace),
    }


# ---- the harness ------------------------------------------------------------------------

class CommandHarness:
    """Runs ``config.command`` (an argv list) per session and speaks the JSON-lines protocol."""

    kind = "command"

    def __init__(self, config: AgentConfig | Mapping[str, Any], *, stop_grace_s: float | None = None):
        options = config.options if isinstance(config, AgentConfig) else dict(config)
        options.pop("kind", None)
        opts = _parse_options(options)
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
        exe = self.command[0]
        if not exe:
            return ["command[0] is empty: it must name the executable to run"]
        if os.sep in exe:
            path = Path(exe).expanduser()
            if not path.is_absolute():
                return []  # resolved inside the task's worktree at run time
            if not path.exists():
                return [f"executable {exe} does not exist: fix the path in command"]
            if path.is_dir() or not os.access(path, os.X_OK):
                return [f"{exe} is not an executable file: chmod +x it, or run it through an "
                        f'interpreter (command = ["python", "{exe}"])']
            return []
        search_path = self.env.get("PATH", os.environ.get("PATH", os.defpath))
        if shutil.which(exe, path=search_path) is None:
            return [f"executable {exe!r} was not found on PATH: install it, or put its absolute "
                    f"path in command"]
        return []

    # -- internals --

    def build_env(self, spec: SessionSpec, resume_id: str | None = None) -> dict[str, str]:
        env = inherited_env()
        env.update(self.env)
        env.update({str(k): str(v) for k, v in spec.env.items()})
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
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=str(spec.workdir),
                env=self.build_env(spec, resume_id),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                preexec_fn=_child_preexec if _libc is not None else None,
                limit=STREAM_LIMIT,
            )
        except FileNotFoundError as exc:
            if not Path(spec.workdir).is_dir():
                raise HarnessError(f"cannot start agent: workdir {spec.workdir} does not exist") from exc
            raise HarnessError(f"cannot start agent: executable {argv[0]!r} not found ({exc.strerror})") from exc
        except OSError as exc:
            if exc.errno == errno.E2BIG:
                raise HarnessError(
                    "cannot start agent: the prompt is too long for a command-line argument; "
                    'use prompt_via = "stdin"'
                ) from exc
            raise HarnessError(f"cannot start agent {argv[0]!r}: {exc}") from exc
        except ValueError as exc:  # e.g. a NUL byte in an argument
            raise HarnessError(f"cannot start agent {argv[0]!r}: {exc}") from exc

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
        self._stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._marker_ids = itertools.count(1)
        self._marker_requests: set[str] = set()
        self._log_file = None
        if spec.log_path is not None:
            try:
                self._log_file = open(spec.log_path, "ab")  # noqa: SIM115 - closed in _supervise
            except OSError as exc:
                log.warning("cannot open agent log %s: %s", spec.log_path, exc)
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
        self._signal_group(signal.SIGINT)
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
            if self._tasks:
                done, pending = await asyncio.wait(self._tasks, timeout=READER_DRAIN_S + 1.0)
                for task in pending:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            self._close_stdin()

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

    def _close_stdin(self) -> None:
        stdin = self._proc.stdin
        if stdin is not None and not stdin.is_closing():
            with contextlib.suppress(Exception):
                stdin.close()

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    def _group_alive(self) -> bool:
        """Does the process group still have a member that is not a zombie?"""
        pgid = self._proc.pid
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return _live_group_member(pgid)

    async def _terminate_group(self) -> None:
        async with self._term_lock:
            await self._terminate_group_locked()

    async def _terminate_group_locked(self) -> None:
        if self._group_dead:
            return
        deadline = time.monotonic() + self._grace
        if self._proc.returncode is None or self._group_alive():
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._proc.wait()), self._grace)
            while self._group_alive() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        # Whatever is left of the group (the leader, or children that ignored SIGTERM).
        self._signal_group(signal.SIGKILL)
        await self._proc.wait()
        kill_deadline = time.monotonic() + 1.0   # SIGKILL is delivered asynchronously
        while self._group_alive() and time.monotonic() < kill_deadline:
            await asyncio.sleep(0.01)
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
                if line.strip():
                    self._stderr_tail.append(line if len(line) <= 2000 else line[:2000] + " …")
                if self._log_file is not None:
                    with contextlib.suppress(OSError):
                        self._log_file.write(line.encode("utf-8", errors="replace") + b"\n")
                        self._log_file.flush()
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
            readers = [self._stdout_task, self._stderr_task]
            _, pending = await asyncio.wait(readers, timeout=READER_DRAIN_S)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._queue_end()
        finally:
            self._queue_end()  # even when cancelled: events() must always end
            if self._proc.returncode is not None:
                self._close_stdin()
            if self._log_file is not None:
                with contextlib.suppress(OSError):
                    self._log_file.close()
                self._log_file = None

    def _queue_end(self) -> None:
        if not self._end_queued:
            self._end_queued = True
            self._queue.put_nowait(self._final_event())

    def _final_event(self) -> Finished | Failed:
        if self._terminal is not None:
            return self._terminal
        code = self._proc.returncode
        tail = list(self._stderr_tail)[-ERROR_TAIL_LINES:]
        suffix = (": " + "\n".join(tail)) if tail else ""
        if self._stop_reason is not None:
            return Failed(self._stop_reason + suffix, retryable=False)
        if code == 0:
            return Finished(summary="\n".join(self._output_tail))
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            return Failed(f"killed by signal {name}{suffix}", retryable=True)
        return Failed(f"exited with code {code}{suffix}", retryable=True)

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
            return OutputText(_str(obj["text"]))
        if kind == "activity":
            return ToolActivity(tool=_str(obj["tool"]), detail=_text(obj.get("detail", "")))
        if kind == "intervention":
            return self._intervention(obj)
        if kind == "usage":
            return Usage(
                input_tokens=_count(obj.get("input_tokens", 0)),
                output_tokens=_count(obj.get("output_tokens", 0)),
                cost_usd=_cost(obj.get("cost_usd", 0.0)),
            )
        if kind == "session":
            sid = obj["id"]
            if isinstance(sid, bool) or not isinstance(sid, (str, int)) or str(sid) == "":
                return None
            return SessionIdAssigned(str(sid))
        if kind == "finished":
            return Finished(summary=_text(obj.get("summary", "")))
        if kind == "failed":
            retryable = obj.get("retryable", True)
            if not isinstance(retryable, bool):
                return None
            return Failed(error=_text(obj.get("error", "")) or "the agent reported a failure", retryable=retryable)
        return None

    def _intervention(self, obj: dict[str, Any]) -> InterventionRequest | None:
        rid = obj["id"]
        if isinstance(rid, bool) or not isinstance(rid, (str, int)) or str(rid) == "":
            return None
        prompt = _str(obj["prompt"])
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
                label=_text(raw.get("label")) or str(oid),
                kind=okind if okind in _OPTION_KINDS else "other",
                description=_text(raw.get("description", "")),
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
            tool=None if tool is None else _text(tool),
            detail=None if detail is None else _text(detail),
            multi_select=multi,
        )


def _live_group_member(pgid: int) -> bool:
    """Linux: is any process of group `pgid` not a zombie? (Zombies wait for their reaper,
    which may be a lazy init in a container; they hold no resources worth waiting for.)"""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] != b"Z":
            return True
    return False


def _cut_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _text(value: Any) -> str:
    """A display string from any JSON value (objects are shown as compact JSON)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("expected a number")
    return max(0, int(value))


def _cost(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("expected a number")
    return max(0.0, float(value))
