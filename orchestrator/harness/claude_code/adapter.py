"""The `claude-code` harness: Claude Code driven through the Claude Agent SDK (`ClaudeSDKClient`).

One session is one Claude Code CLI process (the SDK's bundled binary, or `cli_path`) running
in the task's worktree, spoken to over the SDK's stream-json control protocol:

- every tool call that needs a permission reaches `can_use_tool` and becomes an
  InterventionRequest of kind permission (Approve / Deny); a deny carries the owner's text
  back to Claude as the tool's error;
- `AskUserQuestion` becomes one question intervention per question, asked in turn; all
  answers go back together as the tool's `answers`;
- assistant text -> OutputText, tool calls -> ToolActivity, the result -> Usage and
  Finished/Failed, the CLI's session id -> SessionIdAssigned (for resume after a restart);
- follow-up messages are new user messages in the same session, while it runs or after.

The CLI's environment is inherited_env() + `env` + the core's spec.env; it leads its own
process group (client.py), so the pid the core records can be cleaned up after a crash.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...config import AgentConfig
from ...models import Answer, InterventionKind
from ..base import (
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
from ..env import agent_env
from ..errors import HarnessConfigError, HarnessError
from ..process import AgentStderr, processes_with_env, stop_process_group
from ..session import (
    BaseSession,
    Cumulative,
    PendingRequests,
    cancel_and_wait,
    wait_quietly,
)
from .client import NO_CLI, SDK_IMPORT_ERROR, CliLauncher, real_cli, sdk_options
from .options import ClaudeCodeOptions
from .sdk_seams import resumed_cost_baseline
from .translate import (
    PERMISSION_OPTIONS,
    Questions,
    activity_detail,
    compact_json,
    estimate_baseline,
    permission_detail,
    permission_prompt,
    result_failure,
    result_tokens,
)

try:
    from claude_agent_sdk import (
        AssistantMessage,
        ClaudeSDKClient,
        PermissionResultAllow,
        PermissionResultDeny,
        ResultMessage,
        SystemMessage,
        TextBlock,
        ToolUseBlock,
    )
except ImportError:  # pragma: no cover - depends on the installation
    ClaudeSDKClient = None  # type: ignore[assignment,misc]

log = logging.getLogger(__name__)

DEFAULT_DENY_MESSAGE = "The user denied this."
STOPPED_MESSAGE = "stopped by taskpin"
INTERRUPT_WAIT_S = 3.0      # after interrupt(): how long stop() waits for the turn to end
DISCONNECT_WAIT_S = 8.0     # the SDK waits 5 s for the CLI to exit on EOF, then SIGTERMs
KILL_GRACE_S = 1.0


class ClaudeCodeHarness:
    kind = "claude-code"

    def __init__(self, config: AgentConfig | Mapping[str, Any]):
        self.options = opts = ClaudeCodeOptions.parse(config)
        if ClaudeSDKClient is None:
            raise HarnessConfigError(f"the claude-code agent needs the claude-agent-sdk package "
                                     f"(pip install claude-agent-sdk): {SDK_IMPORT_ERROR}")
        self.allowed_tools: list[str] = list(opts.allowed_tools)
        self.max_budget_usd: float | None = opts.max_budget_usd
        self.env: dict[str, str] = dict(opts.env)

    @property
    def supports_resume(self) -> bool:
        return True

    async def start(self, spec: SessionSpec) -> ClaudeCodeSession:
        return await self._launch(spec, resume_id=None)

    async def resume(self, spec: SessionSpec) -> ClaudeCodeSession:
        if not spec.resume_session_id:
            raise HarnessError("cannot resume: no Claude Code session id was recorded for this task")
        return await self._launch(spec, resume_id=spec.resume_session_id)

    def check(self) -> list[str]:
        opts, problems = self.options, []
        if opts.cli_path:
            path = Path(opts.cli_path).expanduser()
            cli = real_cli(opts.cli_path)
            if not path.exists() and (cli is None or not Path(cli).exists()):
                problems.append(f"cli_path {opts.cli_path} does not exist: point it at the claude executable")
            elif path.exists() and (path.is_dir() or not os.access(path, os.X_OK)):
                problems.append(f"cli_path {opts.cli_path} is not an executable file")
        elif real_cli(None) is None:
            problems.append(NO_CLI)
        if opts.settings and not opts.settings.lstrip().startswith("{"):
            if not Path(opts.settings).expanduser().is_file():
                problems.append(f"settings file {opts.settings} does not exist")
        if (opts.permission_mode == "bypassPermissions" and hasattr(os, "geteuid") and os.geteuid() == 0
                and agent_env(self.env).get("IS_SANDBOX") != "1"):
            problems.append("permission_mode bypassPermissions is refused by Claude Code when running as root "
                            "(unless IS_SANDBOX=1); use default or acceptEdits")
        return problems

    def build_env(self, spec: SessionSpec) -> dict[str, str]:
        return agent_env(self.env, spec.env)

    async def _launch(self, spec: SessionSpec, resume_id: str | None) -> ClaudeCodeSession:
        if not Path(spec.workdir).is_dir():  # noqa: ASYNC240 - one stat before a process starts
            raise HarnessError(f"cannot start Claude Code: workdir {spec.workdir} does not exist")
        cli = real_cli(self.options.cli_path)
        if cli is None:
            raise HarnessError(f"cannot start Claude Code: {NO_CLI}")
        env = self.build_env(spec)
        baseline: float | None = 0.0
        if resume_id:
            # The CLI's total_cost_usd covers the whole session, including what an earlier
            # process already reported before the resume: Usage counts only what is new.
            baseline = await asyncio.to_thread(resumed_cost_baseline, resume_id, env)
        session = ClaudeCodeSession(spec, env=env, cost_baseline=baseline)
        launcher = CliLauncher(cli, keep={**self.env, **spec.env})
        options = sdk_options(self.options, workdir=str(spec.workdir), env=env, launcher=launcher,
                              can_use_tool=session.can_use_tool, stderr=session.stderr_line, resume_id=resume_id)
        await session.connect(ClaudeSDKClient(options), launcher, spec.prompt)
        return session


@dataclass
class _Pending:
    """A can_use_tool call waiting for a human."""

    tool: str
    input: dict[str, Any]
    future: asyncio.Future[Any]
    questions: Questions | None = None      # AskUserQuestion: asked one at a time
    extra: dict[str, Any] = field(default_factory=dict)


class ClaudeCodeSession(BaseSession):
    def __init__(self, spec: SessionSpec, *, env: Mapping[str, str], cost_baseline: float | None):
        super().__init__(follow_up=True)
        self.spec = spec
        self.session_id: str | None = None
        self._env = dict(env)
        self._client: Any = None
        self._launcher: CliLauncher | None = None
        self._pid: int | None = None
        self._reader: asyncio.Task[Any] | None = None
        self._outstanding: list[str] = []          # uuids of user messages not yet answered by a result
        self._interrupted = False
        self._stopping = False
        self._turn_done = asyncio.Event()
        self.pending: PendingRequests[_Pending] = PendingRequests("Claude")
        self._cost = Cumulative(cost_baseline)      # None: estimated from the first result
        self._last_text = ""
        self._last_assistant_error: str | None = None
        self._stderr = AgentStderr(spec.log_path)    # closed in _shutdown
        self._ids = itertools.count(1)

    @property
    def pid(self) -> int | None:
        return self._pid

    # -- AgentSession --

    def events(self) -> AsyncIterator[HarnessEvent]:
        """Events until the next Finished/Failed (after a send() past the end, call again)."""
        return self.out.stream()

    async def answer(self, request_id: str, answer: Answer, request: InterventionRequest) -> None:
        key = request_id.split("#", 1)[0]
        pending = self.pending.require(key)
        if pending.future.done():
            raise HarnessError(f"Claude is no longer waiting for {request_id} (the turn ended)")
        if pending.questions is not None:
            if pending.questions.record(answer):
                self.pending.discard(key)
                pending.future.set_result(PermissionResultAllow(updated_input=pending.questions.updated_input()))
            else:
                self.out.emit(pending.questions.request())
            return
        self.pending.discard(key)
        chosen = next((o for o in PERMISSION_OPTIONS if o.id in answer.option_ids), None)
        if chosen is not None and chosen.kind == "allow":
            pending.future.set_result(PermissionResultAllow(updated_input=pending.input))
        else:
            pending.future.set_result(PermissionResultDeny(message=answer.text.strip() or DEFAULT_DENY_MESSAGE))

    async def send(self, text: str) -> None:
        if self._client is None or self._stopping:
            raise HarnessError("cannot send the message: the Claude Code session has ended")
        if self.out.ended:   # a new turn after the last one finished
            self.out.reopen()
            self._interrupted = False
        await self._query(text)

    async def interrupt(self) -> None:
        """Interrupt the running turn: it ends with Failed("interrupted by taskpin") unless a
        follow-up is still to be answered; send() starts a new turn afterwards."""
        if self._client is None or self._stopping:
            return
        self._interrupted = True
        self._deny_all(STOPPED_MESSAGE, interrupt=True)
        if self._outstanding:
            try:
                # The SDK reads the interrupt's response with the messages: read on meanwhile.
                with self.out.unblocked():
                    await asyncio.wait_for(self._client.interrupt(), INTERRUPT_WAIT_S)
            except Exception as exc:  # noqa: BLE001 - the CLI may already be gone
                log.debug("interrupt failed: %s", exc)

    async def _shutdown(self) -> None:
        self._stopping = True
        self.out.release()   # a reader paused for room reads on: the interrupt's answer can arrive
        self._deny_all(STOPPED_MESSAGE, interrupt=True)
        client = self._client
        if client is not None and self._outstanding and self._reader and not self._reader.done():
            self._interrupted = True
            self._turn_done.clear()
            await wait_quietly(client.interrupt(), INTERRUPT_WAIT_S)
            await wait_quietly(self._turn_done.wait(), INTERRUPT_WAIT_S)
        if client is not None:
            await wait_quietly(client.disconnect(), DISCONNECT_WAIT_S)
        await cancel_and_wait(self._reader)
        await self._kill_leftovers()
        self.out.finish(Failed(STOPPED_MESSAGE, retryable=False))
        self._stderr.close()
        if self._launcher is not None:
            self._launcher.close()

    # -- starting, sending --

    def stderr_line(self, line: str) -> None:
        self._stderr.add(line)

    async def connect(self, client: Any, launcher: CliLauncher, prompt: str) -> None:
        """Start the CLI (through the launcher) and send the first message."""
        self._launcher = launcher
        try:
            await client.connect()
        except Exception as exc:
            self._stderr.close()
            launcher.close()
            tail = self._stderr.tail()
            raise HarnessError(f"cannot start Claude Code: {exc}{': ' + tail if tail else ''}") from exc
        self._client = client
        self._pid = await launcher.pid()
        self._reader = asyncio.create_task(self._read(), name=f"claude-code:{self.spec.task_id}")
        await self._query(prompt)

    async def _query(self, text: str) -> None:
        message_uuid = str(uuid.uuid4())
        message = {"type": "user", "message": {"role": "user", "content": text},
                   "parent_tool_use_id": None, "uuid": message_uuid}

        async def one() -> AsyncIterator[dict[str, Any]]:
            yield message

        self._outstanding.append(message_uuid)
        try:
            await self._client.query(one())
        except Exception as exc:
            if message_uuid in self._outstanding:
                self._outstanding.remove(message_uuid)
            raise HarnessError(f"cannot send the message to Claude Code: {exc}") from exc

    # -- reading --

    async def _read(self) -> None:
        try:
            async for message in self._client.receive_messages():
                for event in self._translate(message):
                    self.out.emit(event)
                # Back-pressure: while taskpin is behind, the SDK's message buffer fills, its
                # reader stops reading the CLI's stdout and the CLI's writes block.
                await self.out.room()
            if not self._stopping:
                self.out.finish(Failed("the Claude Code CLI ended without a result" + self._stderr.suffix(),
                                       retryable=True))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure ends the session
            if not self._stopping:
                self.out.finish(Failed(f"lost the Claude Code CLI: {exc}{self._stderr.suffix()}", retryable=True))
        finally:
            self._turn_done.set()
            self._deny_all(STOPPED_MESSAGE, interrupt=True)

    def _translate(self, message: Any) -> list[HarnessEvent]:
        events: list[HarnessEvent] = []
        if isinstance(message, SystemMessage):
            if message.subtype == "init":
                sid = message.data.get("session_id")
                if isinstance(sid, str) and sid and sid != self.session_id:
                    self.session_id = sid
                    events.append(SessionIdAssigned(sid))
        elif isinstance(message, AssistantMessage):
            if message.error:
                self._last_assistant_error = str(message.error)
            for block in message.content:
                if isinstance(block, TextBlock) and message.parent_tool_use_id is None and block.text.strip():
                    self._last_text = block.text
                    events.append(OutputText(block.text))
                elif isinstance(block, ToolUseBlock):
                    events.append(ToolActivity(tool=block.name, detail=activity_detail(block.name, block.input)))
        elif isinstance(message, ResultMessage):
            events.extend(self._on_result(message))
        return events

    def _on_result(self, result: Any) -> list[HarnessEvent]:
        events: list[HarnessEvent] = []
        if result.session_id and result.session_id != self.session_id:
            self.session_id = result.session_id
            events.append(SessionIdAssigned(result.session_id))
        total = float(result.total_cost_usd or 0.0)
        if self._cost.seen is None:
            # A resumed session whose earlier cost could not be read from its transcript.
            self._cost.seen = estimate_baseline(result)
        input_tokens, output_tokens = result_tokens(result)
        events.append(Usage(input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=self._cost.advance(total)))
        taken = list(result.user_message_uuids or ([result.user_message_uuid] if result.user_message_uuid else []))
        before = len(self._outstanding)
        self._outstanding = [u for u in self._outstanding if u not in taken]
        if len(self._outstanding) == before and self._outstanding:
            self._outstanding.pop(0)   # a CLI that does not say which message it answered: one per result
        self._turn_done.set()
        failure = result_failure(result, interrupted=self._interrupted, assistant_error=self._last_assistant_error)
        self._last_assistant_error = None
        if self._outstanding and not self._stopping:
            return events            # a follow-up is still to be answered: the session goes on
        events.append(failure or Finished(summary=(result.result or self._last_text or "").strip()))
        return events

    # -- permissions and questions --

    async def can_use_tool(self, tool_name: str, tool_input: dict[str, Any], context: Any) -> Any:
        """The SDK's can_use_tool callback: a human decides in the task thread."""
        if self._stopping:
            return PermissionResultDeny(message=STOPPED_MESSAGE, interrupt=True)
        key = context.tool_use_id or f"req-{next(self._ids)}"
        pending = _Pending(tool_name, tool_input, asyncio.get_running_loop().create_future())
        self.pending.add(key, pending)
        if tool_name == "AskUserQuestion":
            pending.questions = Questions(key, tool_input)
            if pending.questions.questions:
                self.out.emit(pending.questions.request())
            else:
                pending.questions = None
                self.out.emit(InterventionRequest(request_id=key, kind=InterventionKind.INPUT,
                                                  prompt="Claude asks for input.", tool=tool_name,
                                                  detail=compact_json(tool_input)))
        else:
            self.out.emit(InterventionRequest(
                request_id=key, kind=InterventionKind.PERMISSION,
                prompt=permission_prompt(tool_name, tool_input, context), options=PERMISSION_OPTIONS,
                tool=tool_name, detail=permission_detail(tool_name, tool_input)))
        try:
            return await pending.future
        finally:
            self.pending.discard(key, pending)

    def _deny_all(self, message: str, *, interrupt: bool) -> None:
        for pending in self.pending.drain():
            if not pending.future.done():
                pending.future.set_result(PermissionResultDeny(message=message, interrupt=interrupt))

    # -- cleanup --

    async def _kill_leftovers(self) -> None:
        """After disconnect: the CLI's process group, and anything else of this attempt.

        Claude Code runs each Bash command in a process group of its own, so the CLI's group
        does not hold them; every process of this attempt carries its TASKPIN_ATTEMPT_TOKEN.
        """
        token = self._env.get("TASKPIN_ATTEMPT_TOKEN")
        marker = f"TASKPIN_ATTEMPT_TOKEN={token}".encode() if token else None

        def attempt_processes() -> list[int]:
            return processes_with_env(marker) if marker is not None else []

        await stop_process_group(self._pid, KILL_GRACE_S, others=attempt_processes)
