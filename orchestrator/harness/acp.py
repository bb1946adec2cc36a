"""The `acp` harness: any agent that speaks the Agent Client Protocol over stdio.

    [agents.claude]
    kind = "acp"
    command = ["npx", "@agentclientprotocol/claude-agent-acp"]   # or ["gemini", "--acp"], ["codex-acp"]
    mode = "default"             # optional: session/set_mode after the session is created
    env = { ANTHROPIC_API_KEY = "..." }
    stop_grace_s = 5             # SIGTERM -> SIGKILL
    follow_up = true             # send() queues a message as the next prompt
    resume = true                # session/load when the agent advertises loadSession
    startup_timeout_s = 60       # initialize + session/new (or load) + set_mode

taskpin is the ACP *client*. Per session it starts the agent in the task's worktree as its own
process group (PDEATHSIG like the command harness), `initialize`s it (client capabilities:
fs read/write confined to the worktree; no terminal), opens a session there (`session/new`
with cwd = the worktree and no MCP servers, or `session/load` to resume), optionally sets the
session mode, and sends the task as the first prompt.

Mapping to taskpin's events:
- agent_message_chunk -> OutputText, coalesced: complete lines go out when a chunk ends a line,
  the rest when the message changes, another event comes, the turn ends, or after a short
  quiet period (never one event per token).
- tool_call / tool_call_update -> ToolActivity (tool = the agent's tool name if it says one in
  _meta, else the ACP kind; detail = the title, plus the status once it completes or fails).
- usage_update.cost (cumulative) -> Usage with the cost delta; PromptResponse.usage (per turn)
  -> Usage with the turn's tokens.
- session/request_permission -> InterventionRequest(kind=permission); options keep the agent's
  option ids, allow_* -> "allow", reject_* -> "deny". The human's option id is sent back.
  A thread reply to a permission (an Answer with the deny option and text, or text alone)
  selects the agent's reject option (reject_once preferred). ACP's permission response cannot
  carry text, so the text is queued as a follow-up prompt sent when the current turn ends.
- stop_reason end_turn -> the next queued follow-up prompt, or Finished(summary = the last
  agent message); refusal / max_tokens / max_turn_requests -> Failed(retryable=False);
  cancelled (after interrupt()) -> the next queued follow-up, or Failed(retryable=False).
- the agent process exiting (or the connection breaking) -> Failed(retryable=True).

interrupt() sends session/cancel and answers pending permission requests `cancelled`.
stop() does the same, closes the connection, SIGTERMs the process group and SIGKILLs
whatever is left after the grace period.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
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
    seconds_option,
    taskpin_version,
)
from .process import AgentStderr, close_stdin, describe_exit, spawn_agent, spawn_error, stop_process_group

log = logging.getLogger(__name__)

DEFAULT_STOP_GRACE_S = 5.0
DEFAULT_STARTUP_TIMEOUT_S = 60.0
STREAM_LIMIT = 50 * 1024 * 1024     # one JSON-RPC frame may carry a whole file
OUTPUT_IDLE_FLUSH_S = 0.4           # a partial line is shown after this long without new text
OUTPUT_MAX_BUFFER = 4000            # ...or once this many characters are waiting
SUMMARY_MAX_CHARS = 4000
CANCEL_WAIT_S = 1.0                 # stop(): how long the turn may take to end after session/cancel

_KNOWN_OPTIONS = ("command", "env", "mode", "stop_grace_s", "follow_up", "resume", "startup_timeout_s")

_KIND_VERBS = {
    "execute": "run a command",
    "edit": "edit a file",
    "delete": "delete a file",
    "move": "move a file",
    "read": "read a file",
    "fetch": "fetch a URL",
    "search": "search",
    "switch_mode": "switch mode",
}


def _acp():
    """The `acp` package (agent-client-protocol), imported when an ACP agent is used."""
    try:
        import acp  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise HarnessError("the acp harness needs the agent-client-protocol package: "
                           "pip install agent-client-protocol") from exc
    return acp


# ---- options ----------------------------------------------------------------------------

def _parse_options(options: Mapping[str, Any]) -> dict[str, Any]:
    command = argv_option(options, example='["gemini", "--acp"]')
    env = env_option(options)

    mode = options.get("mode")
    if mode is not None and (not isinstance(mode, str) or not mode.strip()):
        raise HarnessConfigError(f'mode must be a session mode id like "default", got {mode!r}')

    return {
        "command": command,
        "env": env,
        "mode": mode.strip() if isinstance(mode, str) else None,
        "follow_up": bool_option(options, "follow_up", True),
        "resume": bool_option(options, "resume", True),
        "stop_grace_s": seconds_option(options, "stop_grace_s", DEFAULT_STOP_GRACE_S),
        "startup_timeout_s": (seconds_option(options, "startup_timeout_s", DEFAULT_STARTUP_TIMEOUT_S)
                              or DEFAULT_STARTUP_TIMEOUT_S),
    }


# ---- the harness ------------------------------------------------------------------------

class AcpHarness:
    """Runs ``config.command`` (an argv list) per session as an ACP agent."""

    kind = "acp"

    def __init__(self, config: AgentConfig | Mapping[str, Any], *, stop_grace_s: float | None = None):
        opts = _parse_options(agent_options(config))
        self.command: list[str] = opts["command"]
        self.env: dict[str, str] = opts["env"]
        self.mode: str | None = opts["mode"]
        self.follow_up: bool = opts["follow_up"]
        self.startup_timeout_s: float = opts["startup_timeout_s"]
        self.stop_grace_s: float = opts["stop_grace_s"] if stop_grace_s is None else float(stop_grace_s)
        self._resume: bool = opts["resume"]

    @property
    def supports_resume(self) -> bool:
        """session/load is used when the agent advertises loadSession; otherwise a resume
        opens a new session (and says so in the output)."""
        return self._resume

    async def start(self, spec: SessionSpec) -> AcpSession:
        return await self._launch(spec, resume_id=None)

    async def resume(self, spec: SessionSpec) -> AcpSession:
        if not self._resume:
            raise HarnessError("resume is off for this ACP agent (resume = false)")
        if not spec.resume_session_id:
            raise HarnessError("cannot resume: no session id was recorded for this task")
        return await self._launch(spec, resume_id=spec.resume_session_id)

    def check(self) -> list[str]:
        if not self.command:
            return ['command is not set: add e.g. command = ["npx", "@agentclientprotocol/claude-agent-acp"] '
                    "to this agent"]
        if not self.command[0]:
            return ["command[0] is empty: it must name the executable to run"]
        problem = executable_problem(self.command[0], self.env, interpreter="node")
        problems = [problem] if problem else []
        try:
            _acp()
        except HarnessError as exc:
            problems.append(str(exc))
        return problems

    # -- internals --

    def build_env(self, spec: SessionSpec) -> dict[str, str]:
        return agent_env(self.env, spec.env)

    async def _launch(self, spec: SessionSpec, resume_id: str | None) -> AcpSession:
        _acp()
        if not self.command:
            raise HarnessError('command is not set: add e.g. command = ["gemini", "--acp"] to this agent')
        argv = list(self.command)
        if spec.log_path is not None:
            Path(spec.log_path).parent.mkdir(parents=True, exist_ok=True)
        try:
            proc = await spawn_agent(argv, cwd=spec.workdir, env=self.build_env(spec), limit=STREAM_LIMIT)
        except (OSError, ValueError) as exc:
            raise spawn_error(exc, argv, spec.workdir) from exc
        session = AcpSession(self, proc, spec, resume_id)
        session._begin()
        return session


# ---- the session -------------------------------------------------------------------------

@dataclass
class _ToolState:
    title: str = ""
    kind: str | None = None
    status: str | None = None
    raw_input: Any = None
    name: str | None = None          # the agent's own tool name (e.g. claudeCode.toolName in _meta)
    reported: tuple = ()             # (title, status) last shown as activity


@dataclass
class _PendingPermission:
    future: asyncio.Future
    options: list[Any]               # acp PermissionOption
    title: str
    detail: str | None
    answered: list[str] = field(default_factory=list)


class AcpSession:
    """One ACP agent process and the one session taskpin opened in it."""

    def __init__(self, harness: AcpHarness, proc: asyncio.subprocess.Process, spec: SessionSpec,
                 resume_id: str | None):
        self._harness = harness
        self._proc = proc
        self._spec = spec
        self._resume_id = resume_id
        self._root = os.path.realpath(str(spec.workdir))
        self._grace = harness.stop_grace_s
        self.session_id: str | None = None
        self.load_session_supported = False
        self.modes: list[str] = []
        self.current_mode: str | None = None

        self._queue: asyncio.Queue[HarnessEvent] = asyncio.Queue()
        self._terminal: Finished | Failed | None = None
        self._follow_ups: deque[str] = deque()
        self._pending: dict[str, _PendingPermission] = {}
        self._request_ids = itertools.count(1)
        self._tools: dict[str, _ToolState] = {}
        self._stderr = AgentStderr(spec.log_path)   # closed in _cleanup

        # output coalescing
        self._out_buf = ""
        self._out_message_id: str | None = None
        self._flush_handle: asyncio.TimerHandle | None = None
        self._message_text = ""          # the agent message being written
        self._last_message = ""          # the last complete agent message (the summary)

        self._last_cost: float | None = None
        self._replaying = False          # session/load replays history as updates: not news
        self._turn_running = False
        self._interrupted = False
        self._stopping = False
        self._stopped = False
        self._stop_lock = asyncio.Lock()
        self._group_dead = False

        self._conn: Any = None
        self._driver: asyncio.Task | None = None
        self._watcher: asyncio.Task | None = None
        self._stderr_task: asyncio.Task | None = None

    # -- the AgentSession protocol --

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def supports_follow_up(self) -> bool:
        return self._harness.follow_up

    async def events(self) -> AsyncIterator[HarnessEvent]:
        while True:
            event = await self._queue.get()
            yield event
            if isinstance(event, (Finished, Failed)):
                return

    async def answer(self, request_id: str, answer: Answer, request: InterventionRequest) -> None:
        pending = self._pending.get(request_id)
        if pending is None or pending.future.done():
            raise HarnessError(f"the agent is no longer waiting for {request_id}")
        acp = _acp()
        ids = {o.option_id: o for o in pending.options}
        chosen = next((oid for oid in answer.option_ids if oid in ids), None)
        text = answer.text.strip()
        if chosen is None:
            if not text:
                raise HarnessError(f"none of {list(answer.option_ids)} is an option the agent offered")
            chosen = self._reject_option(pending.options)
            if chosen is None:
                pending.future.set_result(acp.schema.DeniedOutcome(outcome="cancelled"))
                self._queue_follow_up_nowait(self._denial_message(pending, text))
                return
        denied = ids[chosen].kind in ("reject_once", "reject_always")
        if denied and text:
            # ACP's permission response has no room for a message: the agent gets it as the
            # next prompt, after the current turn.
            self._queue_follow_up_nowait(self._denial_message(pending, text))
        pending.future.set_result(acp.schema.AllowedOutcome(outcome="selected", option_id=chosen))

    async def send(self, text: str) -> None:
        if not self._harness.follow_up:
            raise HarnessError("follow-up messages are off for this agent (follow_up = false)")
        if self._terminal is not None or self._stopping:
            raise HarnessError("the agent session has ended")
        self._queue_follow_up_nowait(text)

    async def interrupt(self) -> None:
        """session/cancel: the current turn ends `cancelled`; a queued follow-up then runs,
        otherwise the session ends with Failed(interrupted)."""
        if self._terminal is not None or self._stopping:
            return
        self._interrupted = True
        await self._send_cancel()       # ACP: session/cancel first, then the pending requests
        self._cancel_pending()

    async def stop(self) -> None:
        async with self._stop_lock:
            if self._stopped:
                return
            self._stopping = True
            if self._turn_running and self._proc.returncode is None:
                await self._send_cancel()   # ACP: session/cancel first, then the pending requests
                self._cancel_pending()
                if self._driver is not None:
                    with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                        await asyncio.wait_for(asyncio.shield(self._driver), min(CANCEL_WAIT_S, self._grace or 0.1))
            self._cancel_pending()
            if self._driver is not None and not self._driver.done():
                self._driver.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._driver
            await self._close_connection()
            await self._terminate_group()
            for task in (self._stderr_task, self._watcher):
                if task is None:
                    continue
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                    await asyncio.wait_for(asyncio.shield(task), 1.0)
                task.cancel()
            self._finish(Failed("stopped by taskpin", retryable=False))
            self._cleanup()
            self._stopped = True

    # -- startup --

    def _begin(self) -> None:
        acp = _acp()
        client = _Client(self)
        self._conn = acp.connect_to_agent(client, self._proc.stdin, self._proc.stdout)
        loop = asyncio.get_running_loop()
        self._stderr_task = loop.create_task(self._stderr.pump(self._proc.stderr, "ACP agent"),
                                             name=f"acp-stderr:{self._spec.task_id}")
        self._driver = loop.create_task(self._drive(), name=f"acp:{self._spec.task_id}")
        self._watcher = loop.create_task(self._watch(), name=f"acp-watch:{self._spec.task_id}")

    async def _handshake(self) -> str:
        acp = _acp()
        schema = acp.schema
        conn = self._conn
        init = await conn.initialize(
            protocol_version=acp.PROTOCOL_VERSION,
            client_capabilities=schema.ClientCapabilities(
                fs=schema.FileSystemCapabilities(read_text_file=True, write_text_file=True),
                terminal=False,
            ),
            client_info=schema.Implementation(name="taskpin", title="taskpin", version=taskpin_version()),
        )
        caps = init.agent_capabilities
        self.load_session_supported = bool(caps and caps.load_session)
        cwd = str(self._spec.workdir)
        modes = None
        if self._resume_id and self.load_session_supported:
            self._replaying = True
            try:
                loaded = await conn.load_session(cwd=cwd, session_id=self._resume_id, mcp_servers=[])
            finally:
                self._replaying = False
            self._reset_output()
            session_id = self._resume_id
            modes = loaded.modes if loaded is not None else None
        else:
            if self._resume_id:
                self._emit(OutputText(
                    f"[taskpin] this agent cannot load session {self._resume_id} (no loadSession "
                    "capability): starting a new session"))
            created = await conn.new_session(cwd=cwd, mcp_servers=[])
            session_id = created.session_id
            modes = created.modes
        self.session_id = session_id
        if modes is not None:
            self.modes = [m.id for m in modes.available_modes]
            self.current_mode = modes.current_mode_id
        self._emit(SessionIdAssigned(session_id))
        mode = self._harness.mode
        if mode and mode != self.current_mode:
            if self.modes and mode not in self.modes:
                raise _ConfigProblem(f"the agent has no session mode {mode!r}; its modes are: "
                                     f"{', '.join(self.modes)}")
            await conn.set_session_mode(session_id=session_id, mode_id=mode)
            self.current_mode = mode
        return session_id

    # -- the turn loop --

    async def _drive(self) -> None:
        acp = _acp()
        try:
            try:
                session_id = await asyncio.wait_for(self._handshake(), self._harness.startup_timeout_s)
            except asyncio.TimeoutError:
                self._finish(Failed(f"the agent did not start an ACP session within "
                                    f"{self._harness.startup_timeout_s:g}s{self._stderr_suffix()}", retryable=True))
                return
            prompt: str | None = self._spec.prompt
            while prompt is not None:
                self._turn_running = True
                self._interrupted = False
                try:
                    response = await self._conn.prompt(session_id=session_id, prompt=[acp.text_block(prompt)])
                finally:
                    self._turn_running = False
                self._end_message()
                self._flush_output()
                self._report_turn_usage(response)
                if self._stopping:
                    return
                prompt = self._after_turn(response.stop_reason)
        except asyncio.CancelledError:
            raise
        except _ConfigProblem as exc:
            self._finish(Failed(str(exc), retryable=False))
        except Exception as exc:  # noqa: BLE001 - the agent broke the session somehow
            if self._stopping:
                return
            await self._fail_from(exc)

    def _after_turn(self, stop_reason: str) -> str | None:
        """The next prompt, or None after queueing the final event."""
        if stop_reason in ("end_turn", "cancelled") and self._follow_ups:
            return self._follow_ups.popleft()
        if stop_reason == "end_turn":
            self._finish(Finished(summary=self._last_message))
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
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._proc.wait()), 2.0)
        if self._stderr_task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self._stderr_task), 1.0)
        code = self._proc.returncode
        self._end_message()
        self._flush_output()
        if code is not None:
            self._finish(Failed(f"the agent process {describe_exit(code)}{self._stderr_suffix()}", retryable=True))
        else:
            self._finish(Failed(f"ACP error from the agent: {_describe(exc)}{self._stderr_suffix()}",
                                retryable=True))

    # -- events --

    def _emit(self, event: HarnessEvent) -> None:
        if self._terminal is not None:
            return
        if self._out_buf and not isinstance(event, OutputText):
            self._flush_output()     # keep text and the events around it in order
        self._queue.put_nowait(event)

    def _finish(self, event: Finished | Failed) -> None:
        if self._terminal is not None:
            return
        self._flush_output()
        self._terminal = event
        self._queue.put_nowait(event)
        self._cancel_pending()

    def _queue_follow_up_nowait(self, text: str) -> None:
        self._follow_ups.append(text)

    @staticmethod
    def _denial_message(pending: _PendingPermission, text: str) -> str:
        what = pending.detail or pending.title
        return f'I denied your permission request ("{what}"). {text}'

    @staticmethod
    def _reject_option(options: list[Any]) -> str | None:
        for kind in ("reject_once", "reject_always"):
            for option in options:
                if option.kind == kind:
                    return option.option_id
        return None

    def _cancel_pending(self) -> None:
        if not self._pending:
            return
        acp = _acp()
        for pending in list(self._pending.values()):
            if not pending.future.done():
                pending.future.set_result(acp.schema.DeniedOutcome(outcome="cancelled"))

    async def _send_cancel(self) -> None:
        if self.session_id is None or self._proc.returncode is not None or self._conn is None:
            return
        with contextlib.suppress(asyncio.TimeoutError, Exception):
            await asyncio.wait_for(self._conn.cancel(session_id=self.session_id), 1.0)

    # -- session updates (called by _Client; no awaits, so updates keep their order) --

    def _on_update(self, update: Any) -> None:
        kind = getattr(update, "session_update", None)
        if self._replaying:
            if kind == "usage_update" and update.cost is not None:
                self._last_cost = float(update.cost.amount)
            return
        if kind == "agent_message_chunk":
            self._on_text(update)
        elif kind in ("tool_call", "tool_call_update"):
            self._end_message()
            self._on_tool(update, start=kind == "tool_call")
        elif kind == "usage_update":
            self._on_usage_update(update)
        elif kind == "plan":
            self._end_message()
            entries = getattr(update, "entries", None) or []
            lines = [f"- [{e.status}] {e.content}" for e in entries]
            if lines:
                self._flush_output()
                self._emit(OutputText("Plan:\n" + "\n".join(lines)))
        # user_message_chunk, agent_thought_chunk, available_commands_update, current_mode_update...
        # are not shown (thoughts are noise on a card; the rest is UI state).
        if kind == "current_mode_update":
            self.current_mode = getattr(update, "current_mode_id", self.current_mode)

    def _on_text(self, update: Any) -> None:
        content = update.content
        text = getattr(content, "text", None)
        if getattr(content, "type", None) != "text" or not text:
            return
        message_id = getattr(update, "message_id", None)
        if message_id is not None and message_id != self._out_message_id:
            if self._out_message_id is not None:
                self._end_message()
            self._out_message_id = message_id
        self._message_text += text
        self._out_buf += text
        if "\n" in text or len(self._out_buf) >= OUTPUT_MAX_BUFFER:
            cut = self._out_buf.rfind("\n")
            if cut < 0:
                cut = len(self._out_buf) - 1
            ready, self._out_buf = self._out_buf[:cut + 1], self._out_buf[cut + 1:]
            self._emit_text(ready)
        if self._out_buf:
            self._schedule_flush()

    def _emit_text(self, text: str) -> None:
        text = text.strip("\n")
        if text.strip():
            self._emit(OutputText(text))

    def _schedule_flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        loop = asyncio.get_running_loop()
        self._flush_handle = loop.call_later(OUTPUT_IDLE_FLUSH_S, self._flush_output)

    def _flush_output(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        buf, self._out_buf = self._out_buf, ""
        self._emit_text(buf)

    def _end_message(self) -> None:
        """The agent message being written is complete (another kind of update came)."""
        self._flush_output()
        if self._message_text.strip():
            summary = self._message_text.strip()
            if len(summary) > SUMMARY_MAX_CHARS:
                summary = summary[:SUMMARY_MAX_CHARS] + " …"
            self._last_message = summary
        self._message_text = ""
        self._out_message_id = None

    def _reset_output(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._out_buf = self._message_text = ""
        self._out_message_id = None

    def _tool_state(self, tool_call: Any) -> _ToolState:
        state = self._tools.setdefault(tool_call.tool_call_id, _ToolState())
        if getattr(tool_call, "title", None):
            state.title = tool_call.title
        if getattr(tool_call, "kind", None):
            state.kind = tool_call.kind
        if getattr(tool_call, "status", None):
            state.status = tool_call.status
        raw_input = getattr(tool_call, "raw_input", None)
        if raw_input not in (None, {}, ""):
            state.raw_input = raw_input
        meta = getattr(tool_call, "field_meta", None)
        if isinstance(meta, dict):
            for value in meta.values():
                if isinstance(value, dict) and isinstance(value.get("toolName"), str):
                    state.name = value["toolName"]
        return state

    def _on_tool(self, update: Any, *, start: bool) -> None:
        state = self._tool_state(update)
        shown_status = state.status if state.status in ("completed", "failed") else None
        key = (state.title, shown_status)
        if key == state.reported:
            return
        state.reported = key
        detail = state.title or _input_detail(state.raw_input) or ""
        if shown_status:
            detail = f"{detail} ({shown_status})" if detail else shown_status
        self._flush_output()
        self._emit(ToolActivity(tool=_tool_name(state), detail=detail))

    def _on_usage_update(self, update: Any) -> None:
        cost = getattr(update, "cost", None)
        if cost is None:
            return
        amount = float(cost.amount)
        previous = self._last_cost
        self._last_cost = amount
        delta = amount if previous is None or amount < previous else amount - previous
        if delta > 0:
            self._emit(Usage(cost_usd=delta))

    def _report_turn_usage(self, response: Any) -> None:
        usage = getattr(response, "usage", None)
        if usage is None:
            return
        if usage.input_tokens or usage.output_tokens:
            self._emit(Usage(input_tokens=int(usage.input_tokens), output_tokens=int(usage.output_tokens)))

    # -- permission requests (called by _Client) --

    async def _on_permission(self, tool_call: Any, options: list[Any]) -> Any:
        acp = _acp()
        if self._terminal is not None or self._stopping:
            return acp.schema.RequestPermissionResponse(outcome=acp.schema.DeniedOutcome(outcome="cancelled"))
        self._end_message()
        state = self._tool_state(tool_call)
        request_id = f"perm-{next(self._request_ids)}"
        detail = _input_detail(state.raw_input) or state.title or None
        verb = _KIND_VERBS.get(state.kind or "", "use a tool")
        title = state.title or _tool_name(state)
        loop = asyncio.get_running_loop()
        pending = _PendingPermission(loop.create_future(), list(options), title, detail)
        self._pending[request_id] = pending
        self._emit(InterventionRequest(
            request_id=request_id,
            kind=InterventionKind.PERMISSION,
            prompt=f"The agent wants to {verb}: {title}",
            options=tuple(_option(o) for o in options),
            tool=_tool_name(state),
            detail=detail,
        ))
        try:
            outcome = await pending.future
        finally:
            self._pending.pop(request_id, None)
        return acp.schema.RequestPermissionResponse(outcome=outcome)

    # -- fs (called by _Client) --

    def _confine(self, path: str, action: str) -> Path:
        acp = _acp()
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = Path(self._spec.workdir) / candidate
        resolved = os.path.realpath(candidate)
        if resolved != self._root and not resolved.startswith(self._root + os.sep):
            self._emit(ToolActivity(tool="fs", detail=f"refused to {action} {path}: outside the task's worktree"))
            raise acp.RequestError(-32602, f"refused: {path} is outside the task's worktree {self._root}",
                                   {"path": path})
        return Path(resolved)

    async def _read_file(self, path: str, line: int | None, limit: int | None) -> str:
        acp = _acp()
        target = self._confine(path, "read")
        try:
            text = await asyncio.to_thread(target.read_text, encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise acp.RequestError.resource_not_found(path) from None
        except OSError as exc:
            raise acp.RequestError.internal_error({"details": f"cannot read {path}: {exc.strerror or exc}"}) from None
        if line is None and limit is None:
            return text
        lines = text.splitlines(keepends=True)
        start = max((line or 1) - 1, 0)
        end = start + limit if limit is not None else None
        return "".join(lines[start:end])

    async def _write_file(self, path: str, content: str) -> None:
        acp = _acp()
        target = self._confine(path, "write")

        def write() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            raise acp.RequestError.internal_error({"details": f"cannot write {path}: {exc.strerror or exc}"}) from None

    # -- process --

    async def _watch(self) -> None:
        """The process exited: normally the connection breaks and the driver reports it; if
        something still holds the agent's stdout open, report it from here."""
        await self._proc.wait()
        if self._driver is None or self._stopping:
            return
        _, pending = await asyncio.wait({self._driver}, timeout=2.0)
        if pending and not self._stopping and self._terminal is None:
            self._driver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._driver
            await self._fail_from(ConnectionError("the agent exited"))

    def _stderr_suffix(self) -> str:
        return self._stderr.suffix()

    async def _close_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(self._conn.close(), 2.0)
        close_stdin(self._proc)

    async def _terminate_group(self) -> None:
        if not self._group_dead:
            await stop_process_group(self._proc, self._grace)
            self._group_dead = True

    def _cleanup(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._stderr.close()


class _ConfigProblem(Exception):
    """The agent cannot run as configured (e.g. an unknown mode): not worth a retry."""


class _Client:
    """The ACP client side taskpin implements; everything is forwarded to the session."""

    def __init__(self, session: AcpSession):
        self._session = session

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        self._session._on_update(update)

    async def request_permission(self, session_id: str, tool_call: Any, options: list[Any], **kwargs: Any) -> Any:
        return await self._session._on_permission(tool_call, options)

    async def read_text_file(self, session_id: str, path: str, line: int | None = None, limit: int | None = None,
                             **kwargs: Any) -> Any:
        content = await self._session._read_file(path, line, limit)
        return _acp().schema.ReadTextFileResponse(content=content)

    async def write_text_file(self, session_id: str, path: str, content: str, **kwargs: Any) -> Any:
        await self._session._write_file(path, content)
        return _acp().schema.WriteTextFileResponse()

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise _acp().RequestError.method_not_found(f"_{method}")

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        return None


# ---- helpers -----------------------------------------------------------------------------

def _option(option: Any) -> Option:
    kind = option.kind or ""
    mapped = "allow" if kind.startswith("allow") else "deny" if kind.startswith("reject") else "other"
    return Option(id=option.option_id, label=option.name or option.option_id, kind=mapped)


def _tool_name(state: _ToolState) -> str:
    return state.name or state.kind or "tool"


def _input_detail(raw: Any) -> str | None:
    """The exact command, path or URL a tool call is about, from its raw input."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw or None
    if isinstance(raw, dict):
        for key in ("command", "cmd"):
            value = raw.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                return " ".join(value)
        for key in ("path", "file_path", "filePath", "abs_path", "url", "pattern"):
            value = raw.get(key)
            if isinstance(value, str) and value:
                return value
        return None
    return None


def _describe(exc: BaseException) -> str:
    data = getattr(exc, "data", None)
    text = str(exc) or type(exc).__name__
    if data:
        with contextlib.suppress(TypeError, ValueError):
            text += " " + json.dumps(data, ensure_ascii=False)[:500]
    return text
