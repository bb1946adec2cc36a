"""The `codex` harness: OpenAI's Codex CLI driven through ``codex app-server``.

One session is one app-server process and one Codex *thread* (client.py). Notifications
and server requests become taskpin's events (translate.py). Follow-ups: ``turn/steer``
while a turn runs (the model sees the message in its very next request), else the next
``turn/start`` on the same thread. The session finishes when a turn completes with nothing
queued; its summary is Codex's last agent message.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...config import AgentConfig
from ...models import Answer
from ..base import (
    Failed,
    Finished,
    HarnessEvent,
    InterventionRequest,
    OutputText,
    SessionIdAssigned,
    SessionSpec,
)
from ..env import agent_env
from ..errors import HarnessError
from ..jsonrpc import METHOD_NOT_FOUND
from ..options import executable_problem
from ..process import (
    AgentStderr,
    close_stdin,
    describe_exit,
    spawn_agent,
    stop_process_group,
)
from ..session import BaseSession, PendingRequests, settle, wait_quietly
from .client import CodexClient, CommandSessions, RpcError
from .options import CodexOptions
from .translate import (
    HUMAN_REQUESTS,
    ItemTranslator,
    answer_result,
    error_text,
    intervention,
    turn_failure,
)

log = logging.getLogger(__name__)

STREAM_LIMIT = 16 * 1024 * 1024      # one JSON-RPC message per line; thread/resume can be large
INTERRUPT_WAIT_S = 2.0               # after turn/interrupt: how long to wait for turn/completed
READER_DRAIN_S = 2.0
NOT_INSTALLED = "install the Codex CLI (npm install -g @openai/codex) or put its absolute path in command"


class CodexHarness:
    kind = "codex"

    def __init__(self, config: AgentConfig | Mapping[str, Any], *, stop_grace_s: float | None = None):
        self.options = opts = CodexOptions.parse(config)
        self.command: list[str] = list(opts.command)
        self.codex_home: str | None = opts.codex_home
        self.env: dict[str, str] = dict(opts.env)
        self.stop_grace_s: float = opts.stop_grace_s if stop_grace_s is None else float(stop_grace_s)
        self.startup_timeout_s: float = opts.startup_timeout_s

    @property
    def supports_resume(self) -> bool:
        return True   # thread/resume reloads the thread from $CODEX_HOME/sessions

    async def start(self, spec: SessionSpec) -> CodexSession:
        return await self._launch(spec, resume_id=None)

    async def resume(self, spec: SessionSpec) -> CodexSession:
        if not spec.resume_session_id:
            raise HarnessError("cannot resume: no Codex thread id was recorded for this task")
        return await self._launch(spec, resume_id=spec.resume_session_id)

    def check(self) -> list[str]:
        problem = executable_problem(self.command[0], self.env, not_found=NOT_INSTALLED)
        problems = [problem] if problem else []
        if self.codex_home is not None:
            home = Path(self.codex_home).expanduser()
            if home.exists() and not home.is_dir():
                problems.append(f"codex_home {self.codex_home} is not a directory")
        return problems

    def build_env(self, spec: SessionSpec) -> dict[str, str]:
        env = agent_env(self.env, spec.env)
        if self.codex_home is not None:
            env["CODEX_HOME"] = str(Path(self.codex_home).expanduser().resolve())
        return env

    def thread_params(self, spec: SessionSpec) -> dict[str, Any]:
        opts = self.options
        params: dict[str, Any] = {"cwd": str(Path(spec.workdir).resolve()),
                                  "approvalPolicy": opts.approval_policy, "sandbox": opts.sandbox}
        if opts.model:
            params["model"] = opts.model
        if opts.model_provider:
            params["modelProvider"] = opts.model_provider
        if opts.config:
            params["config"] = dict(opts.config)
        return params

    async def _launch(self, spec: SessionSpec, resume_id: str | None) -> CodexSession:
        if not Path(spec.workdir).is_dir():  # noqa: ASYNC240 - one stat before a process starts
            raise HarnessError(f"cannot start codex: workdir {spec.workdir} does not exist")
        env = self.build_env(spec)
        if "CODEX_HOME" in env and self.codex_home is not None:
            Path(env["CODEX_HOME"]).mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once per session
        if spec.log_path is not None:
            Path(spec.log_path).parent.mkdir(parents=True, exist_ok=True)
        try:
            proc = await spawn_agent(self.command, cwd=spec.workdir, env=env, limit=STREAM_LIMIT)
        except FileNotFoundError as exc:
            raise HarnessError(f"cannot start codex: executable {self.command[0]!r} not found "
                               f"(install @openai/codex or set command)") from exc
        except (OSError, ValueError) as exc:
            raise HarnessError(f"cannot start codex {self.command[0]!r}: {exc}") from exc
        token = env.get("TASKPIN_ATTEMPT_TOKEN")
        session = CodexSession(proc, spec, stop_grace_s=self.stop_grace_s,
                               marker=f"TASKPIN_ATTEMPT_TOKEN={token}".encode() if token else None)
        await session.open(self.thread_params(spec), resume_id, spec.prompt, timeout=self.startup_timeout_s)
        return session


class CodexSession(BaseSession):
    """One app-server process, one Codex thread."""

    def __init__(self, proc: asyncio.subprocess.Process, spec: SessionSpec, *, stop_grace_s: float,
                 marker: bytes | None = None):
        super().__init__(follow_up=True)
        self._proc = proc
        self._grace = stop_grace_s
        self._stderr = AgentStderr(spec.log_path)   # closed in _supervise
        self._client = CodexClient(proc, self, self._stderr, room=self.out.room)
        self._items = ItemTranslator(self._emit, on_command_started=self._command_started)
        self._commands = CommandSessions(proc.pid, marker)
        self.pending: PendingRequests[tuple[int | str, str, dict[str, Any]]] = PendingRequests("codex")
        self._tasks: list[asyncio.Task[Any]] = []
        self._readers: list[asyncio.Task[Any]] = []
        self._term_lock = asyncio.Lock()
        self._group_dead = False
        self.thread_id: str | None = None
        self.turn_id: str | None = None          # the running turn, None between turns
        self._turn_starting = False
        self._finished_turns: set[str] = set()
        self._our_turns: set[str] = set()
        self._queued: list[str] = []             # user messages waiting for the next turn
        self._steering = 0                       # turn/steer requests awaiting their answer
        self._completed_while_steering = False
        self._last_error: str | None = None
        self._interrupting = False
        self._stop_reason: str | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    # -- AgentSession --

    async def answer(self, request_id: str, answer: Answer, request: InterventionRequest) -> None:
        rpc_id, method, params = self.pending.take(request_id)
        result, follow_up = answer_result(method, params, answer, request)
        await self._client.respond(rpc_id, result)
        if follow_up:
            await self.send(follow_up)

    async def send(self, text: str) -> None:
        """A user message: steers the running turn, else starts the next one."""
        if self._proc.returncode is not None or self._stop_reason is not None:
            raise HarnessError("codex has stopped: the message cannot be delivered")
        if self.out.ended:
            raise HarnessError("the codex session has ended: the message cannot be delivered")
        if self.turn_id is not None and not self._turn_starting:
            self._steering += 1
            try:
                await self._client.steer(self.thread_id or "", self.turn_id, text)
            except (TimeoutError, RpcError) as exc:
                log.info("codex: turn/steer refused (%s); the message waits for the next turn", exc)
                self._queued.append(text)
            finally:
                self._steering -= 1
            if self._completed_while_steering and self._steering == 0:
                # The turn ended while we were steering: decide now what comes next.
                self._completed_while_steering = False
                self._after_completed_turn()
            return
        self._queued.append(text)
        if self.turn_id is None and not self._turn_starting:
            self._turn_starting = True
            await self._start_queued_turn()

    async def interrupt(self) -> None:
        """turn/interrupt: the turn ends; a queued follow-up then runs as the next turn,
        otherwise the events end with Failed("interrupted by taskpin")."""
        if self.out.ended or self._proc.returncode is not None:
            return
        self._interrupting = True
        self.pending.drain()
        await self._interrupt_turn()

    async def _shutdown(self) -> None:
        """turn/interrupt, close stdin, SIGTERM the group (and Codex's own command sessions),
        SIGKILL after the grace period."""
        self.out.release()   # a reader paused for room reads on: the turn can end, codex can exit
        if self._proc.returncode is None:
            self._stop_reason = self._stop_reason or "stopped by taskpin"
            self._commands.remember()   # before the interrupt orphans anything
            await self._interrupt_turn()
            close_stdin(self._proc)   # the app-server exits on EOF and ends its command sessions
            await wait_quietly(asyncio.shield(self._proc.wait()), min(self._grace, 3.0))
        await self._terminate()
        await settle(self._tasks, READER_DRAIN_S + 1.0)
        self._end(self._final_event())

    # -- starting, turns --

    async def open(self, thread_params: dict[str, Any], resume_id: str | None, prompt: str, *,
                   timeout: float) -> None:
        """Start reading, open the thread and send the prompt; on failure the process is gone."""
        loop = asyncio.get_running_loop()
        self._readers = [loop.create_task(self._client.rpc.read_loop()),
                         loop.create_task(self._stderr.pump(self._proc.stderr, "codex app-server"))]
        self._tasks = [loop.create_task(self._supervise())]
        try:
            await asyncio.wait_for(self._handshake(thread_params, resume_id, prompt), timeout)
        except BaseException as exc:
            await self.stop()   # a cancelled start still ends the process; then re-raised
            if isinstance(exc, asyncio.TimeoutError):
                raise HarnessError(f"codex app-server did not answer within {timeout:g}s"
                                   + self._stderr.suffix()) from exc
            if isinstance(exc, Exception) and not isinstance(exc, HarnessError):
                raise HarnessError(f"cannot start codex: {exc}") from exc
            raise

    async def _handshake(self, thread_params: dict[str, Any], resume_id: str | None, prompt: str) -> None:
        self.thread_id = await self._client.open_thread(thread_params, resume_id)
        self.out.emit(SessionIdAssigned(self.thread_id))
        await self._start_turn(prompt)

    async def _start_turn(self, text: str) -> None:
        self._turn_starting = True
        try:
            turn = await self._client.start_turn(self.thread_id or "", text)
            if turn.get("id"):
                self._our_turns.add(turn["id"])
            if self.turn_id is None and turn.get("status", "inProgress") == "inProgress" \
                    and turn.get("id") not in self._finished_turns:
                self.turn_id = turn.get("id")
        finally:
            self._turn_starting = False

    async def _start_queued_turn(self) -> None:
        """The next turn, with every queued message (the caller set _turn_starting)."""
        text = "\n\n".join(self._queued)
        self._queued.clear()
        self._interrupting = False
        try:
            await self._start_turn(text)
        except HarnessError as exc:
            self._turn_starting = False
            self._end(Failed(f"could not send the follow-up to codex: {exc}", retryable=True))

    def _after_completed_turn(self) -> None:
        if self._queued and self._stop_reason is None:
            self._turn_starting = True
            asyncio.get_running_loop().create_task(self._start_queued_turn())
        else:
            self._end(Finished(summary=self._items.last_message))

    async def _interrupt_turn(self) -> None:
        if self.turn_id is None or self.thread_id is None:
            return
        turn_id = self.turn_id
        with self.out.unblocked():   # turn/completed comes only if the reader reads on
            try:
                await self._client.interrupt(self.thread_id, turn_id)
            except (TimeoutError, HarnessError):
                return
            loop = asyncio.get_running_loop()
            deadline = loop.time() + INTERRUPT_WAIT_S
            while self.turn_id == turn_id and loop.time() < deadline and self._proc.returncode is None:  # noqa: ASYNC110 - bounded: the reader clears turn_id when codex ends the turn
                await asyncio.sleep(0.05)

    # -- events (RpcHandler) --

    def _emit(self, event: HarnessEvent) -> None:
        self.out.emit(event)

    def _end(self, event: Finished | Failed) -> None:
        self._items.flush_all()
        self.out.finish(event)

    def _command_started(self) -> None:
        # Learn the command's process session while it is still linked to Codex.
        asyncio.get_running_loop().call_later(0.3, self._remember_commands)

    def _remember_commands(self) -> None:
        if not self._group_dead:
            self._commands.remember()

    def on_notification(self, method: str, p: dict[str, Any]) -> None:
        if p.get("threadId") not in (None, self.thread_id) and self.thread_id is not None:
            return   # a sub-agent's thread: its approvals still reach us as server requests
        if method == "item/agentMessage/delta":
            self._items.delta(str(p.get("itemId")), str(p.get("delta") or ""))
        elif method in ("item/started", "item/completed"):
            self._items.item(p.get("item") or {}, started=method == "item/started")
        elif method == "thread/tokenUsage/updated":
            turn_id = p.get("turnId")
            self._items.usage(p.get("tokenUsage") or {}, ours=turn_id is None or turn_id in self._our_turns)
        elif method == "turn/started":
            turn = p.get("turn") or {}
            if turn.get("id"):
                self.turn_id = turn["id"]
                self._our_turns.add(turn["id"])
        elif method == "turn/completed":
            self._on_turn_completed(p.get("turn") or {})
        elif method == "error":
            message = error_text(p.get("error") or {})
            if p.get("willRetry"):
                self._stderr.write_log(f"[codex] {message} (retrying)".encode())
            else:
                self._last_error = message
        elif method == "serverRequest/resolved":
            rid = p.get("requestId")
            for key, (rpc_id, _m, _p) in self.pending.items():
                if rpc_id == rid:
                    self.pending.discard(key)

    async def on_request(self, rpc_id: int | str, method: str, p: dict[str, Any]) -> None:
        key = str(rpc_id)
        if method in HUMAN_REQUESTS:
            self.pending.add(key, (rpc_id, method, p))
            self._emit(intervention(key, method, p, self._items.items))
        elif method == "mcpServer/elicitation/request":
            # MCP forms have arbitrary schemas; taskpin cannot render them. Decline, visibly.
            self._emit(OutputText(f"[taskpin] declined an MCP request from {p.get('serverName')}: "
                                  f"{p.get('message') or ''}".rstrip(": ")))
            await self._client.respond(rpc_id, {"action": "decline", "content": None, "_meta": None})
        elif method in ("applyPatchApproval", "execCommandApproval"):
            await self._client.respond(rpc_id, {"decision": "denied"})   # legacy v1 API: never used by v2 threads
        else:
            await self._client.respond_error(rpc_id, METHOD_NOT_FOUND, f"taskpin does not support {method}")

    def _on_turn_completed(self, turn: dict[str, Any]) -> None:
        if turn.get("id") not in (None, self.turn_id) and self.turn_id is not None:
            return
        self.turn_id = None
        if turn.get("id"):
            self._finished_turns.add(turn["id"])
        self._items.flush_all()
        for key, (_rid, _m, params) in self.pending.items():
            if params.get("turnId") == turn.get("id"):
                self.pending.discard(key)
        status = turn.get("status")
        if self._stop_reason is not None:
            self._end(Failed(self._stop_reason, retryable=False))
        elif status == "completed" and self._steering:
            self._completed_while_steering = True
        elif status == "completed":
            self._after_completed_turn()
        elif status == "interrupted" and self._interrupting and self._queued:
            self._after_completed_turn()
        elif status == "interrupted":
            self._end(Failed("interrupted by taskpin" if self._interrupting else "the codex turn was interrupted",
                             retryable=False))
        else:
            self._end(turn_failure(turn, self._last_error))

    # -- lifecycle --

    async def _supervise(self) -> None:
        try:
            await self._proc.wait()
            await settle(self._readers, READER_DRAIN_S)
            self._end(self._final_event())
            # Codex ends the commands it started when it exits; sweep any it left behind.
            await self._terminate()
        finally:
            self._end(self._final_event())
            close_stdin(self._proc)
            self._stderr.close()

    def _final_event(self) -> Finished | Failed:
        if self._stop_reason is not None:
            return Failed(self._stop_reason, retryable=False)
        code = self._proc.returncode
        how = ("was " if code is not None and code < 0 else "") + describe_exit(code)
        return Failed(f"codex app-server {how} before the task finished{self._stderr.suffix()}", retryable=True)

    async def _terminate(self) -> None:
        async with self._term_lock:
            if not self._group_dead:
                self._commands.remember()   # Codex's command sessions, while their parent is alive
                await stop_process_group(self._proc, self._grace, others=self._commands.others)
                self._group_dead = True
