"""The `acp` harness: any agent that speaks the Agent Client Protocol over stdio.

taskpin is the ACP *client* (client.py). Per session it starts the agent in the task's
worktree as its own process group, `initialize`s it, opens a session there (`session/new`,
or `session/load` to resume), optionally sets the session mode, and sends the task as the
first prompt. Updates become events in translate.py.

- session/request_permission -> InterventionRequest(kind=permission); options keep the agent's
  option ids, allow_* -> "allow", reject_* -> "deny". A thread reply to a permission selects
  the agent's reject option (reject_once preferred); ACP's permission response cannot carry
  text, so the text is queued as a follow-up prompt sent when the current turn ends.
- stop_reason end_turn -> the next queued follow-up prompt, or Finished(summary = the last
  agent message); refusal / max_tokens / max_turn_requests -> Failed(retryable=False);
  cancelled (after interrupt()) -> the next queued follow-up, or Failed(retryable=False).
- the agent process exiting (or the connection breaking) -> Failed(retryable=True).
"""
from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config import AgentConfig
from ...models import Answer, InterventionKind
from ..base import (
    Failed,
    Finished,
    InterventionRequest,
    OutputText,
    SessionIdAssigned,
    SessionSpec,
)
from ..env import agent_env
from ..errors import HarnessError
from ..options import executable_problem
from ..process import (
    AgentStderr,
    close_stdin,
    describe_exit,
    spawn_agent,
    spawn_error,
    stop_process_group,
)
from ..session import BaseSession, PendingRequests, cancel_and_wait, wait_quietly
from .client import ConfigProblem, StdoutRelay, TaskpinClient, acp_module, describe, open_session
from .options import AcpOptions
from .translate import KIND_VERBS, UpdateTranslator, input_detail, permission_option

log = logging.getLogger(__name__)

STREAM_LIMIT = 50 * 1024 * 1024     # one JSON-RPC frame may carry a whole file
CANCEL_WAIT_S = 1.0                 # stop(): how long the turn may take to end after session/cancel


class AcpHarness:
    """Runs ``config.command`` (an argv list) per session as an ACP agent."""

    kind = "acp"

    def __init__(self, config: AgentConfig | Mapping[str, Any], *, stop_grace_s: float | None = None):
        self.options = opts = AcpOptions.parse(config)
        self.command: list[str] = list(opts.command)
        self.env: dict[str, str] = dict(opts.env)
        self.mode: str | None = opts.mode
        self.follow_up: bool = opts.follow_up
        self.startup_timeout_s: float = opts.startup_timeout_s
        self.stop_grace_s: float = opts.stop_grace_s if stop_grace_s is None else float(stop_grace_s)

    @property
    def supports_resume(self) -> bool:
        """session/load is used when the agent advertises loadSession; otherwise a resume
        opens a new session (and says so in the output)."""
        return self.options.resume

    async def start(self, spec: SessionSpec) -> AcpSession:
        return await self._launch(spec, resume_id=None)

    async def resume(self, spec: SessionSpec) -> AcpSession:
        if not self.options.resume:
            raise HarnessError("resume is off for this ACP agent (resume = false)")
        if not spec.resume_session_id:
            raise HarnessError("cannot resume: no session id was recorded for this task")
        return await self._launch(spec, resume_id=spec.resume_session_id)

    def check(self) -> list[str]:
        if not self.command:
            return ['command is not set: add e.g. command = ["npx", "@agentclientprotocol/claude-agent-acp"] '
                    "to this agent"]
        problem = executable_problem(self.command[0], self.env, interpreter="node")
        problems = [problem] if problem else []
        try:
            acp_module()
        except HarnessError as exc:
            problems.append(str(exc))
        return problems

    def build_env(self, spec: SessionSpec) -> dict[str, str]:
        return agent_env(self.env, spec.env)

    async def _launch(self, spec: SessionSpec, resume_id: str | None) -> AcpSession:
        acp_module()
        if not self.command:
            raise HarnessError('command is not set: add e.g. command = ["gemini", "--acp"] to this agent')
        if spec.log_path is not None:
            Path(spec.log_path).parent.mkdir(parents=True, exist_ok=True)
        try:
            proc = await spawn_agent(self.command, cwd=spec.workdir, env=self.build_env(spec), limit=STREAM_LIMIT)
        except (OSError, ValueError) as exc:
            raise spawn_error(exc, self.command, spec.workdir) from exc
        session = AcpSession(proc, spec, resume_id, mode=self.mode, follow_up=self.follow_up,
                             stop_grace_s=self.stop_grace_s, startup_timeout_s=self.startup_timeout_s)
        session.begin()
        return session


@dataclass
class _Permission:
    future: asyncio.Future[Any]
    options: list[Any]               # acp PermissionOption
    title: str
    detail: str | None


class AcpSession(BaseSession):
    """One ACP agent process and the one session taskpin opened in it."""

    def __init__(self, proc: asyncio.subprocess.Process, spec: SessionSpec, resume_id: str | None, *,
                 mode: str | None, follow_up: bool, stop_grace_s: float, startup_timeout_s: float):
        super().__init__(follow_up=follow_up)
        self._proc = proc
        self._spec = spec
        self._resume_id = resume_id
        self._mode = mode
        self._grace = stop_grace_s
        self._startup_timeout_s = startup_timeout_s
        self.session_id: str | None = None
        self.load_session_supported = False
        self.modes: list[str] = []
        self._follow_ups: deque[str] = deque()
        self.pending: PendingRequests[_Permission] = PendingRequests("the agent")
        self._request_ids = itertools.count(1)
        self._stderr = AgentStderr(spec.log_path)   # closed in _shutdown
        self._updates = UpdateTranslator(self.out.emit)
        self._turn_running = False
        self._interrupted = False
        self._stopping = False
        self._conn: Any = None
        self._driver: asyncio.Task[Any] | None = None
        self._watcher: asyncio.Task[Any] | None = None
        self._stderr_task: asyncio.Task[Any] | None = None
        self._relay: StdoutRelay | None = None
        self._relay_task: asyncio.Task[Any] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def current_mode(self) -> str | None:
        return self._updates.current_mode

    # -- AgentSession --

    async def answer(self, request_id: str, answer: Answer, request: InterventionRequest) -> None:
        pending = self.pending.require(request_id)
        if pending.future.done():
            raise HarnessError(f"the agent is no longer waiting for {request_id}")
        schema = acp_module().schema
        ids = {o.option_id: o for o in pending.options}
        chosen = next((oid for oid in answer.option_ids if oid in ids), None)
        text = answer.text.strip()
        if chosen is None:
            if not text:
                raise HarnessError(f"none of {list(answer.option_ids)} is an option the agent offered")
            chosen = _reject_option(pending.options)
            if chosen is None:
                pending.future.set_result(schema.DeniedOutcome(outcome="cancelled"))
                self._follow_ups.append(_denial_message(pending, text))
                return
        if ids[chosen].kind in ("reject_once", "reject_always") and text:
            # ACP's permission response has no room for a message: the agent gets it as the
            # next prompt, after the current turn.
            self._follow_ups.append(_denial_message(pending, text))
        pending.future.set_result(schema.AllowedOutcome(outcome="selected", option_id=chosen))

    async def send(self, text: str) -> None:
        if not self._follow_up:
            raise HarnessError("follow-up messages are off for this agent (follow_up = false)")
        if self.out.ended or self._stopping:
            raise HarnessError("the agent session has ended")
        self._follow_ups.append(text)

    async def interrupt(self) -> None:
        """session/cancel: the current turn ends `cancelled`; a queued follow-up then runs,
        otherwise the events end with Failed("interrupted by taskpin")."""
        if self.out.ended or self._stopping:
            return
        self._interrupted = True
        await self._send_cancel()       # ACP: session/cancel first, then the pending requests
        self._cancel_pending()

    async def _shutdown(self) -> None:
        self._stopping = True
        self.out.release()   # the relay reads on: the agent can answer the cancel, and exit
        if self._turn_running and self._proc.returncode is None:
            await self._send_cancel()   # ACP: session/cancel first, then the pending requests
            self._cancel_pending()
            if self._driver is not None:
                await wait_quietly(self._driver, min(CANCEL_WAIT_S, self._grace or 0.1))
        self._cancel_pending()
        await cancel_and_wait(self._driver)
        if self._conn is not None:
            await wait_quietly(self._conn.close(), 2.0)
        close_stdin(self._proc)
        await stop_process_group(self._proc, self._grace)
        for task in (self._relay_task, self._stderr_task, self._watcher):
            if task is not None and not await wait_quietly(task, 1.0):
                await cancel_and_wait(task)
        self._finish(Failed("stopped by taskpin", retryable=False))
        self._updates.close()
        self._stderr.close()

    # -- running --

    def begin(self) -> None:
        """Connect to the agent and start the session (the handshake runs in the driver)."""
        acp = acp_module()
        client = TaskpinClient(self._spec.workdir, on_update=self._updates.update,
                               on_permission=self._on_permission, emit=self._updates.emit)
        assert self._proc.stdout is not None
        self._relay = StdoutRelay(self._proc.stdout, self.out.room, limit=STREAM_LIMIT)
        self._conn = acp.connect_to_agent(client, self._proc.stdin, self._relay.reader)
        loop = asyncio.get_running_loop()
        task_id = self._spec.task_id
        self._relay_task = loop.create_task(self._relay.run(), name=f"acp-stdout:{task_id}")
        self._stderr_task = loop.create_task(self._stderr.pump(self._proc.stderr, "ACP agent"),
                                             name=f"acp-stderr:{task_id}")
        self._driver = loop.create_task(self._drive(), name=f"acp:{task_id}")
        self._watcher = loop.create_task(self._watch(), name=f"acp-watch:{task_id}")

    async def _open(self) -> str:
        def replaying(on: bool) -> None:
            self._updates.replaying = on

        opened = await open_session(self._conn, str(self._spec.workdir), self._resume_id, self._mode,
                                    replaying=replaying)
        if opened.loaded:
            self._updates.reset_output()
        elif self._resume_id:
            self._updates.emit(OutputText(
                f"[taskpin] this agent cannot load session {self._resume_id} (no loadSession "
                "capability): starting a new session"))
        self.session_id = opened.session_id
        self.load_session_supported = opened.load_supported
        self.modes = opened.modes
        self._updates.current_mode = opened.current_mode
        self._updates.emit(SessionIdAssigned(opened.session_id))
        return opened.session_id

    async def _drive(self) -> None:
        acp = acp_module()
        try:
            try:
                session_id = await asyncio.wait_for(self._open(), self._startup_timeout_s)
            except TimeoutError:
                self._finish(Failed(f"the agent did not start an ACP session within "
                                    f"{self._startup_timeout_s:g}s{self._stderr.suffix()}", retryable=True))
                return
            prompt: str | None = self._spec.prompt
            while prompt is not None:
                self._turn_running = True
                self._interrupted = False
                try:
                    response = await self._conn.prompt(session_id=session_id, prompt=[acp.text_block(prompt)])
                finally:
                    self._turn_running = False
                self._updates.end_message()
                self._updates.turn_usage(response)
                if self._stopping:
                    return
                prompt = self._after_turn(response.stop_reason)
        except asyncio.CancelledError:
            raise
        except ConfigProblem as exc:
            self._finish(Failed(str(exc), retryable=False))
        except Exception as exc:  # noqa: BLE001 - the agent broke the session somehow
            if not self._stopping:
                await self._fail_from(exc)

    def _after_turn(self, stop_reason: str) -> str | None:
        """The next prompt, or None after queueing the final event."""
        if stop_reason in ("end_turn", "cancelled") and self._follow_ups:
            return self._follow_ups.popleft()
        if stop_reason == "end_turn":
            self._finish(Finished(summary=self._updates.last_message))
        elif stop_reason == "cancelled":
            why = "interrupted by taskpin" if self._interrupted else "the agent cancelled the turn"
            self._finish(Failed(why, retryable=False))
        elif stop_reason == "refusal":
            self._finish(Failed("the agent refused to continue (stop reason: refusal)", retryable=False))
        elif stop_reason == "max_tokens":
            self._finish(Failed("the agent hit its token limit (stop reason: max_tokens)", retryable=False))
        elif stop_reason == "max_turn_requests":
            self._finish(Failed("the agent hit its request limit for one turn (stop reason: max_turn_requests)",
                                retryable=False))
        else:
            self._finish(Failed(f"the turn ended with stop reason {stop_reason!r}", retryable=False))
        return None

    async def _fail_from(self, exc: BaseException) -> None:
        # A broken connection usually means the process died: give it a moment to be reaped.
        await wait_quietly(asyncio.shield(self._proc.wait()), 2.0)
        await wait_quietly(self._stderr_task, 1.0)
        code = self._proc.returncode
        self._updates.end_message()
        if code is not None:
            self._finish(Failed(f"the agent process {describe_exit(code)}{self._stderr.suffix()}", retryable=True))
        else:
            self._finish(Failed(f"ACP error from the agent: {describe(exc)}{self._stderr.suffix()}", retryable=True))

    async def _watch(self) -> None:
        """The process exited: normally the connection breaks and the driver reports it; if
        something still holds the agent's stdout open, report it from here."""
        await self._proc.wait()
        if self._driver is None or self._stopping:
            return
        # What the agent wrote before it exited may still wait for taskpin to read the events
        # before it (back-pressure): the relay brings it, however long that takes.
        while (self._relay_task is not None and self._relay is not None and not self._stopping
               and not await wait_quietly(self._relay_task, 2.0) and self._relay.waiting):
            pass
        if not await wait_quietly(self._driver, 2.0) and not self._stopping and not self.out.ended:
            await cancel_and_wait(self._driver)
            await self._fail_from(ConnectionError("the agent exited"))

    def _finish(self, event: Finished | Failed) -> None:
        self._updates.flush_output()
        self.out.finish(event)
        self._cancel_pending()

    # -- permission requests --

    async def _on_permission(self, tool_call: Any, options: list[Any]) -> Any:
        schema = acp_module().schema
        if self.out.ended or self._stopping:
            return schema.RequestPermissionResponse(outcome=schema.DeniedOutcome(outcome="cancelled"))
        self._updates.end_message()
        state = self._updates.tool_state(tool_call)
        request_id = f"perm-{next(self._request_ids)}"
        detail = input_detail(state.raw_input) or state.title or None
        verb = KIND_VERBS.get(state.kind or "", "use a tool")
        title = state.title or state.tool
        pending = _Permission(asyncio.get_running_loop().create_future(), list(options), title, detail)
        self.pending.add(request_id, pending)
        self._updates.emit(InterventionRequest(
            request_id=request_id, kind=InterventionKind.PERMISSION, prompt=f"The agent wants to {verb}: {title}",
            options=tuple(permission_option(o) for o in options), tool=state.tool, detail=detail))
        try:
            outcome = await pending.future
        finally:
            self.pending.discard(request_id, pending)
        return schema.RequestPermissionResponse(outcome=outcome)

    def _cancel_pending(self) -> None:
        if not len(self.pending):
            return
        schema = acp_module().schema
        for pending in self.pending.drain():
            if not pending.future.done():
                pending.future.set_result(schema.DeniedOutcome(outcome="cancelled"))

    async def _send_cancel(self) -> None:
        if self.session_id is None or self._proc.returncode is not None or self._conn is None:
            return
        try:
            await asyncio.wait_for(self._conn.cancel(session_id=self.session_id), 1.0)
        except Exception as exc:  # noqa: BLE001 - a dead agent cannot be cancelled; stop() ends it
            log.debug("session/cancel failed: %s", exc)


def _denial_message(pending: _Permission, text: str) -> str:
    return f'I denied your permission request ("{pending.detail or pending.title}"). {text}'


def _reject_option(options: list[Any]) -> str | None:
    for kind in ("reject_once", "reject_always"):
        for option in options:
            if option.kind == kind:
                return str(option.option_id)
    return None
