"""The `command` harness: any executable that speaks JSON lines on stdin/stdout.

The agent runs in the task's worktree as its own process group. taskpin writes the prompt,
answers and follow-up messages to its stdin; the agent writes one JSON event per line to
stdout (translate.py). The full protocol is in docs/command-protocol.md.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...config import AgentConfig
from ...models import Answer, InterventionKind
from ..base import Failed, Finished, InterventionRequest, SessionSpec
from ..env import agent_env
from ..errors import HarnessError
from ..options import executable_problem
from ..process import (
    AgentStderr,
    close_stdin,
    describe_exit,
    signal_group,
    spawn_agent,
    spawn_error,
    stop_process_group,
)
from ..session import BaseSession, settle, wait_quietly
from .client import AgentStdin, json_line, read_lines, text_line
from .options import CommandOptions
from .translate import LineParser

log = logging.getLogger(__name__)

# asyncio StreamReader buffer limit for stdout/stderr. Longer lines are read in pieces (read_lines);
# the limit bounds what is buffered when taskpin stops reading (2x this, then the pipe fills).
STREAM_LIMIT = 64 * 1024
MAX_ENV_PROMPT_BYTES = 100_000       # TASKPIN_PROMPT is cut here (Linux: 128 KiB per env string)
READER_DRAIN_S = 2.0                  # after exit: how long to wait for stdout/stderr EOF
NO_COMMAND = 'command is not set: add e.g. command = ["python", "agent.py"] to this agent'


class CommandHarness:
    """Runs ``config.command`` (an argv list) per session and speaks the JSON-lines protocol."""

    kind = "command"

    def __init__(self, config: AgentConfig | Mapping[str, Any], *, stop_grace_s: float | None = None):
        self.options = opts = CommandOptions.parse(config)
        self.command: list[str] = list(opts.command)
        self.prompt_via: str = opts.prompt_via
        self.env: dict[str, str] = dict(opts.env)
        self.follow_up: bool = opts.takes_follow_ups
        self.stop_grace_s: float = opts.stop_grace_s if stop_grace_s is None else float(stop_grace_s)

    @property
    def supports_resume(self) -> bool:
        return self.options.resume

    async def start(self, spec: SessionSpec) -> CommandSession:
        return await self._launch(spec, resume_id=None)

    async def resume(self, spec: SessionSpec) -> CommandSession:
        if not self.options.resume:
            raise HarnessError("this command agent does not support resume (set resume = true if it does)")
        if not spec.resume_session_id:
            raise HarnessError("cannot resume: no session id was recorded for this task")
        return await self._launch(spec, resume_id=spec.resume_session_id)

    def check(self) -> list[str]:
        if not self.command:
            return [NO_COMMAND]
        problem = executable_problem(self.command[0], self.env, interpreter="python")
        return [problem] if problem else []

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

    def first_input(self, spec: SessionSpec, resume_id: str | None) -> bytes | None:
        """What the agent reads first on stdin (the prompt), per prompt_via."""
        if self.prompt_via == "stdin":
            prompt: dict[str, Any] = {
                "type": "prompt", "text": spec.prompt, "task_id": spec.task_id, "attempt": spec.attempt,
            }
            if resume_id is not None:
                prompt["resume_session"] = resume_id
            return json_line(prompt)
        if self.prompt_via == "stdin-text":
            return text_line(spec.prompt)
        return None

    async def _launch(self, spec: SessionSpec, resume_id: str | None) -> CommandSession:
        if not self.command:
            raise HarnessError(NO_COMMAND)
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
        session = CommandSession(proc, spec, json_stdin=self.prompt_via != "stdin-text",
                                 follow_up=self.follow_up, stop_grace_s=self.stop_grace_s)
        session.begin(self.first_input(spec, resume_id))
        return session


class CommandSession(BaseSession):
    """One running agent process (and its process group)."""

    def __init__(self, proc: asyncio.subprocess.Process, spec: SessionSpec, *,
                 json_stdin: bool, follow_up: bool, stop_grace_s: float):
        super().__init__(follow_up=follow_up)
        self._proc = proc
        self._json_stdin = json_stdin
        self._grace = stop_grace_s
        self._stdin = AgentStdin(proc)
        self._parser = LineParser()
        self._agent_final: Finished | Failed | None = None     # from a finished/failed line
        self._agent_final_seen = asyncio.Event()
        self._stop_reason: str | None = None
        self._term_lock = asyncio.Lock()
        self._group_dead = False
        self._stderr = AgentStderr(spec.log_path)   # closed in _supervise
        self._readers: list[asyncio.Task[Any]] = []
        self._tasks: list[asyncio.Task[Any]] = []

    # -- AgentSession --

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    @property
    def session_id(self) -> str | None:
        return self._parser.session_id

    async def answer(self, request_id: str, answer: Answer, request: InterventionRequest) -> None:
        if request_id in self._parser.marker_requests:
            # A legacy marker agent reads one plain line.
            text = answer.text
            if not text and answer.option_ids:
                labels = {o.id: o.label for o in request.options}
                text = ", ".join(labels.get(o, o) for o in answer.option_ids)
            await self._stdin.write(text_line(text), "answer")
            return
        option_ids = list(answer.option_ids)
        if not option_ids and request.kind == InterventionKind.PERMISSION:
            # A reply without a button to a permission means "deny, and here is why".
            deny = next((o.id for o in request.options if o.kind == "deny"), None)
            if deny is not None:
                option_ids = [deny]
        await self._stdin.write(json_line({
            "type": "answer", "id": request_id, "option": option_ids[0] if option_ids else None,
            "options": option_ids, "text": answer.text,
        }), "answer")

    async def send(self, text: str) -> None:
        if not self._follow_up:
            raise HarnessError("this agent does not accept follow-up messages while it runs")
        data = json_line({"type": "message", "text": text}) if self._json_stdin else text_line(text)
        await self._stdin.write(data, "message")

    async def interrupt(self) -> None:
        """A command agent's turn is its process: ask it to stop (an interrupt line, SIGINT),
        then stop it. The events end with Failed("interrupted by taskpin")."""
        if self._proc.returncode is None:
            self._stop_reason = self._stop_reason or "interrupted by taskpin"
            if self._json_stdin:
                try:
                    await asyncio.wait_for(self._stdin.write(json_line({"type": "interrupt"}), "interrupt"), 1.0)
                except (TimeoutError, HarnessError):
                    pass
            signal_group(self._proc.pid, signal.SIGINT)
            await wait_quietly(asyncio.shield(self._proc.wait()), self._grace)
        await self.stop()

    async def _shutdown(self) -> None:
        """SIGTERM the process group, SIGKILL it after the grace period, reap."""
        self.out.release()   # a reader paused for room reads on to EOF
        if self._proc.returncode is None:
            self._stop_reason = self._stop_reason or "stopped by taskpin"
        await self._terminate_group()
        # Let the supervisor queue the final event and close everything.
        await settle(self._tasks, READER_DRAIN_S + 1.0)
        close_stdin(self._proc)

    # -- running --

    def begin(self, first_input: bytes | None) -> None:
        """Write the prompt (if it goes to stdin) and start reading the agent."""
        if first_input is not None:
            self._stdin.write_nowait(first_input)
        loop = asyncio.get_running_loop()
        self._readers = [loop.create_task(self._read_stdout()), loop.create_task(self._read_stderr())]
        self._tasks = [loop.create_task(self._supervise())]

    async def _terminate_group(self) -> None:
        async with self._term_lock:
            if not self._group_dead:
                await stop_process_group(self._proc, self._grace)
                self._group_dead = True

    async def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        try:
            async for line in read_lines(self._proc.stdout):
                if self._agent_final is not None:
                    continue  # events end at finished/failed; the rest is ignored
                await self.out.room()   # back-pressure: stop reading while taskpin is behind
                for event in self._parser.parse(line):
                    if isinstance(event, (Finished, Failed)):
                        self._agent_final = event
                        self._agent_final_seen.set()
                        break
                    self.out.emit(event)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a reader bug must not hang the session
            log.exception("reading agent stdout failed")

    async def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        try:
            async for line in read_lines(self._proc.stderr):
                self._stderr.add(line)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001
            log.exception("reading agent stderr failed")

    async def _supervise(self) -> None:
        try:
            exited = asyncio.ensure_future(self._proc.wait())
            said_done = asyncio.ensure_future(self._agent_final_seen.wait())
            await asyncio.wait({exited, said_done}, return_when=asyncio.FIRST_COMPLETED)
            if not exited.done():
                # The agent said it is done: give it the grace period to exit, then end it.
                await wait_quietly(exited, self._grace)
                if not exited.done():
                    await self._terminate_group()
            said_done.cancel()
            await exited
            # The leader is gone; stdout/stderr reach EOF unless a child still holds them.
            await settle(self._readers, READER_DRAIN_S)
        finally:
            self.out.finish(self._final_event())  # even when cancelled: events() must always end
            if self._proc.returncode is not None:
                close_stdin(self._proc)
            self._stderr.close()

    def _final_event(self) -> Finished | Failed:
        if self._agent_final is not None:
            return self._agent_final
        code = self._proc.returncode
        suffix = self._stderr.suffix()
        if self._stop_reason is not None:
            return Failed(self._stop_reason + suffix, retryable=False)
        if code == 0:
            return Finished(summary="\n".join(self._parser.output_tail))
        return Failed(f"{describe_exit(code)}{suffix}", retryable=True)


def _cut_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")
