"""The `claude-code` harness: Claude Code driven through the Claude Agent SDK (`ClaudeSDKClient`).

One session is one Claude Code CLI process (the SDK's bundled binary, or `cli_path`) running
in the task's worktree, spoken to over the SDK's stream-json control protocol:

- every tool call that needs a permission reaches `can_use_tool` and becomes an
  InterventionRequest of kind permission (Approve / Deny); a deny carries the owner's text
  back to Claude as the tool's error;
- `AskUserQuestion` becomes one question intervention per question, asked in turn (Claude
  may ask up to four in one call; Slack shows one intervention at a time, each with its own
  options and multi-select flag). All answers go back together as the tool's `answers`;
- assistant text -> OutputText, tool calls -> ToolActivity, the result -> Usage and
  Finished/Failed, the CLI's session id -> SessionIdAssigned (for resume after a restart);
- follow-up messages are new user messages in the same session, while it runs or after.

Agent options ([agents.NAME] with kind = "claude-code"):
    model, permission_mode ("default"), allowed_tools, disallowed_tools, max_turns,
    max_budget_usd, env (extra environment, e.g. ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY),
    settings (a settings file, passed to --settings), cli_path (instead of the bundled CLI).

The CLI's environment is inherited_env() (taskpin's own secrets removed) + `env` + the
core's spec.env (+ what the SDK adds). The CLI is started as the leader of its own process
group, so the pid the core records can be cleaned up after a crash.
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import glob
import itertools
import json
import logging
import os
import shutil
import signal
import time
import uuid
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
from .options import agent_options, count_or_zero, env_option, reject_unknown
from .process import AgentStderr, pid_alive, processes_with_env

try:  # the SDK is an optional dependency: only agents of this kind need it
    import claude_agent_sdk as sdk
    from claude_agent_sdk import (
        AssistantMessage,
        ClaudeAgentOptions,
        ClaudeSDKClient,
        PermissionResultAllow,
        PermissionResultDeny,
        ResultMessage,
        SystemMessage,
        TextBlock,
        ToolPermissionContext,
        ToolUseBlock,
    )
    _SDK_IMPORT_ERROR: str | None = None
except ImportError as _exc:  # pragma: no cover - depends on the installation
    sdk = None  # type: ignore[assignment]
    _SDK_IMPORT_ERROR = str(_exc)

log = logging.getLogger(__name__)

PERMISSION_MODES = ("default", "acceptEdits", "plan", "bypassPermissions", "dontAsk", "auto")
_KNOWN_OPTIONS = ("model", "permission_mode", "allowed_tools", "disallowed_tools", "max_turns",
                  "max_budget_usd", "env", "settings", "cli_path")
_SECRET_PREFIXES = ("SLACK_", "TASKPIN_")   # never reach the CLI unless the agent/core sets them

PERMISSION_OPTIONS = (
    Option(id="allow", label="Approve", kind="allow"),
    Option(id="deny", label="Deny", kind="deny"),
)
DEFAULT_DENY_MESSAGE = "The user denied this."
INTERRUPTED_MESSAGE = "The session was stopped."

DETAIL_MAX = 2500           # characters of an intervention's detail
PREVIEW_LINES = 12          # lines of a Write/Edit preview
ACTIVITY_MAX = 300          # characters of a ToolActivity detail
INTERRUPT_WAIT_S = 3.0      # after interrupt(): how long stop() waits for the turn to end
DISCONNECT_WAIT_S = 8.0     # the SDK waits 5 s for the CLI to exit on EOF, then SIGTERMs
KILL_GRACE_S = 1.0

# HTTP statuses of API errors that another attempt may get past (rate limits, overload, 5xx).
_RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504, 529}
_FINAL_ASSISTANT_ERRORS = {"authentication_failed", "billing_error", "invalid_request"}


# ---- spawning the CLI: own process group, no taskpin secrets --------------------------------

_spawn_env: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "taskpin_claude_code_spawn", default=None)


class _AnyioSpawnHook:
    """Stands in for `anyio` inside the SDK's subprocess transport module.

    The SDK starts the CLI with ``anyio.open_process(...)`` and always merges taskpin's own
    environment into it; it has no option for a new process group. While one of our sessions
    connects (a context variable is set, so other SDK users are untouched), this adds
    ``start_new_session=True`` and drops SLACK_*/TASKPIN_* variables that the agent's own
    environment did not set. Everything else is delegated to the real module.
    """

    def __init__(self, real: Any):
        self._taskpin_real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._taskpin_real, name)

    async def open_process(self, command: Any, **kwargs: Any) -> Any:
        explicit = _spawn_env.get()
        if explicit is not None:
            kwargs["start_new_session"] = True
            env = kwargs.get("env")
            if env is not None:
                kwargs["env"] = {k: v for k, v in env.items()
                                 if not k.startswith(_SECRET_PREFIXES) or k in explicit}
        return await self._taskpin_real.open_process(command, **kwargs)


def _install_spawn_hook() -> bool:
    try:
        from claude_agent_sdk._internal.transport import subprocess_cli
    except Exception:  # noqa: BLE001 - a different SDK layout: fall back to plain spawning
        return False
    current = getattr(subprocess_cli, "anyio", None)
    if isinstance(current, _AnyioSpawnHook):
        return True
    if current is None or not hasattr(current, "open_process"):
        return False
    subprocess_cli.anyio = _AnyioSpawnHook(current)  # type: ignore[attr-defined]
    return True


# ---- options --------------------------------------------------------------------------------

def _str_list(name: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise HarnessConfigError(f'{name} must be a list of tool names like ["Read", "Bash(git:*)"], got {value!r}')


def _parse_options(options: Mapping[str, Any]) -> dict[str, Any]:
    reject_unknown(options, _KNOWN_OPTIONS, "claude-code")
    model = options.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise HarnessConfigError(f'model must be a model name like "claude-sonnet-4-5", got {model!r}')
    mode = options.get("permission_mode", "default")
    if mode not in PERMISSION_MODES:
        raise HarnessConfigError(f"permission_mode must be one of {', '.join(PERMISSION_MODES)}, got {mode!r}")
    max_turns = options.get("max_turns")
    if max_turns is not None and (isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1):
        raise HarnessConfigError(f"max_turns must be a whole number >= 1, got {max_turns!r}")
    budget = options.get("max_budget_usd")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0):
        raise HarnessConfigError(f"max_budget_usd must be a number > 0, got {budget!r}")
    env = env_option(options)
    settings = options.get("settings")
    if settings is not None and (not isinstance(settings, str) or not settings.strip()):
        raise HarnessConfigError(f"settings must be the path of a Claude Code settings file, got {settings!r}")
    cli_path = options.get("cli_path")
    if cli_path is not None and (not isinstance(cli_path, str) or not cli_path.strip()):
        raise HarnessConfigError(f"cli_path must be the path of the claude executable, got {cli_path!r}")
    return {
        "model": model,
        "permission_mode": mode,
        "allowed_tools": _str_list("allowed_tools", options.get("allowed_tools")),
        "disallowed_tools": _str_list("disallowed_tools", options.get("disallowed_tools")),
        "max_turns": max_turns,
        "max_budget_usd": None if budget is None else float(budget),
        "env": env,
        "settings": settings,
        "cli_path": cli_path,
    }


def bundled_cli() -> Path | None:
    if sdk is None:
        return None
    path = Path(sdk.__file__).parent / "_bundled" / ("claude.exe" if os.name == "nt" else "claude")
    return path if path.is_file() else None


# ---- the harness ----------------------------------------------------------------------------

class ClaudeCodeHarness:
    kind = "claude-code"

    def __init__(self, config: AgentConfig | Mapping[str, Any]):
        opts = _parse_options(agent_options(config))
        if sdk is None:
            raise HarnessConfigError(f"the claude-code agent needs the claude-agent-sdk package "
                                     f"(pip install claude-agent-sdk): {_SDK_IMPORT_ERROR}")
        self.model: str | None = opts["model"]
        self.permission_mode: str = opts["permission_mode"]
        self.allowed_tools: list[str] = opts["allowed_tools"]
        self.disallowed_tools: list[str] = opts["disallowed_tools"]
        self.max_turns: int | None = opts["max_turns"]
        self.max_budget_usd: float | None = opts["max_budget_usd"]
        self.env: dict[str, str] = opts["env"]
        self.settings: str | None = opts["settings"]
        self.cli_path: str | None = opts["cli_path"]

    @property
    def supports_resume(self) -> bool:
        return True

    async def start(self, spec: SessionSpec) -> "ClaudeCodeSession":
        return await self._launch(spec, resume_id=None)

    async def resume(self, spec: SessionSpec) -> "ClaudeCodeSession":
        if not spec.resume_session_id:
            raise HarnessError("cannot resume: no Claude Code session id was recorded for this task")
        return await self._launch(spec, resume_id=spec.resume_session_id)

    def check(self) -> list[str]:
        problems: list[str] = []
        if self.cli_path:
            path = Path(self.cli_path).expanduser()
            if not path.exists() and shutil.which(self.cli_path) is None:
                problems.append(f"cli_path {self.cli_path} does not exist: point it at the claude executable")
            elif path.exists() and (path.is_dir() or not os.access(path, os.X_OK)):
                problems.append(f"cli_path {self.cli_path} is not an executable file")
        elif bundled_cli() is None and shutil.which("claude") is None:
            problems.append("the Claude Code CLI was not found: this claude-agent-sdk wheel has no bundled CLI and "
                            "`claude` is not on PATH; install @anthropic-ai/claude-code or set cli_path")
        if self.settings and not self.settings.lstrip().startswith("{"):
            if not Path(self.settings).expanduser().is_file():
                problems.append(f"settings file {self.settings} does not exist")
        if (self.permission_mode == "bypassPermissions" and hasattr(os, "geteuid") and os.geteuid() == 0
                and self.build_env_base().get("IS_SANDBOX") != "1"):
            problems.append("permission_mode bypassPermissions is refused by Claude Code when running as root "
                            "(unless IS_SANDBOX=1); use default or acceptEdits")
        return problems

    # -- internals --

    def build_env_base(self) -> dict[str, str]:
        return agent_env(self.env)

    def explicit_env(self, spec: SessionSpec) -> dict[str, str]:
        """What taskpin sets on purpose: the agent's env option and the core's spec.env."""
        env = dict(self.env)
        env.update({str(k): str(v) for k, v in spec.env.items()})
        return env

    def build_env(self, spec: SessionSpec) -> dict[str, str]:
        return agent_env(self.env, spec.env)

    def build_options(self, spec: SessionSpec, session: "ClaudeCodeSession", resume_id: str | None,
                      *, hooked: bool) -> "ClaudeAgentOptions":
        env = self.build_env(spec)
        if not hooked:
            # The SDK merges taskpin's own environment into the CLI's: blank the secrets out.
            explicit = self.explicit_env(spec)
            env.update({k: "" for k in os.environ if k.startswith(_SECRET_PREFIXES) and k not in explicit})
        kwargs: dict[str, Any] = dict(
            cwd=str(spec.workdir),
            env=env,
            permission_mode=self.permission_mode,
            can_use_tool=session._can_use_tool,
            stderr=session._stderr.add,
            # Claude Code's own system prompt (the SDK's default is an empty one).
            system_prompt={"type": "preset", "preset": "claude_code"},
        )
        if self.model:
            kwargs["model"] = self.model
        if self.allowed_tools:
            kwargs["allowed_tools"] = list(self.allowed_tools)
        if self.disallowed_tools:
            kwargs["disallowed_tools"] = list(self.disallowed_tools)
        if self.max_turns:
            kwargs["max_turns"] = self.max_turns
        if self.max_budget_usd is not None:
            kwargs["max_budget_usd"] = self.max_budget_usd
        if self.settings:
            kwargs["settings"] = (self.settings if self.settings.lstrip().startswith("{")
                                  else str(Path(self.settings).expanduser()))
        if self.cli_path:
            kwargs["cli_path"] = self.cli_path
        if resume_id:
            kwargs["resume"] = resume_id
        return ClaudeAgentOptions(**kwargs)

    async def _launch(self, spec: SessionSpec, resume_id: str | None) -> "ClaudeCodeSession":
        if not Path(spec.workdir).is_dir():
            raise HarnessError(f"cannot start Claude Code: workdir {spec.workdir} does not exist")
        session = ClaudeCodeSession(spec, resume_id=resume_id, env=self.build_env(spec))
        if resume_id:
            # The CLI's total_cost_usd covers the whole session, including what an earlier
            # process already reported before the resume: Usage counts only what is new.
            session._cost_reported = await asyncio.to_thread(resumed_cost_baseline, resume_id, session._env)
        hooked = _install_spawn_hook()
        options = self.build_options(spec, session, resume_id, hooked=hooked)
        client = ClaudeSDKClient(options)
        token = _spawn_env.set(self.explicit_env(spec)) if hooked else None
        try:
            await client.connect()
        except Exception as exc:
            session._stderr.close()
            tail = session._stderr.tail()
            raise HarnessError(f"cannot start Claude Code: {exc}{': ' + tail if tail else ''}") from exc
        finally:
            if token is not None:
                _spawn_env.reset(token)
        session._attach(client)
        await session._query(spec.prompt)
        return session


# ---- the session ----------------------------------------------------------------------------

class _Pending:
    """A can_use_tool call waiting for a human."""

    def __init__(self, tool: str, input: dict[str, Any], future: asyncio.Future,
                 questions: list[dict[str, Any]] | None = None):
        self.tool = tool
        self.input = input
        self.future = future
        self.questions = questions or []      # AskUserQuestion: asked one at a time
        self.index = 0
        self.answers: dict[str, str] = {}


class ClaudeCodeSession:
    def __init__(self, spec: SessionSpec, *, resume_id: str | None, env: Mapping[str, str]):
        self.spec = spec
        self.resume_id = resume_id
        self.session_id: str | None = None
        self._env = dict(env)
        self._client: Any = None
        self._pid: int | None = None
        self._queue: asyncio.Queue[HarnessEvent] = asyncio.Queue()
        self._reader: asyncio.Task | None = None
        self._outstanding: list[str] = []          # uuids of user messages not yet answered by a result
        self._terminal_sent = False
        self._interrupted = False
        self._stopping = False
        self._stopped = False
        self._stop_lock = asyncio.Lock()
        self._turn_done = asyncio.Event()
        self._pending: dict[str, _Pending] = {}    # request_id -> waiting can_use_tool call
        self._cost_reported: float | None = 0.0    # total_cost_usd already turned into Usage
        self._last_text = ""
        self._last_assistant_error: str | None = None
        self._stderr = AgentStderr(spec.log_path)    # closed in stop()
        self._loop = asyncio.get_running_loop()
        self._ids = itertools.count(1)

    # -- AgentSession --

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def supports_follow_up(self) -> bool:
        return True

    async def events(self) -> AsyncIterator[HarnessEvent]:
        """Events until the next Finished/Failed (after a send() past the end, call again)."""
        while True:
            event = await self._queue.get()
            yield event
            if isinstance(event, (Finished, Failed)):
                return

    async def answer(self, request_id: str, answer: Answer, request: InterventionRequest) -> None:
        key = request_id.split("#", 1)[0]
        pending = self._pending.get(key)
        if pending is None or pending.future.done():
            raise HarnessError(f"Claude is no longer waiting for {request_id} (the turn ended)")
        if pending.tool == "AskUserQuestion" and pending.questions:
            self._answer_question(key, pending, answer)
            return
        self._pending.pop(key, None)
        chosen = next((o for o in PERMISSION_OPTIONS if o.id in answer.option_ids), None)
        if chosen is not None and chosen.kind == "allow":
            pending.future.set_result(PermissionResultAllow(updated_input=pending.input))
        else:
            pending.future.set_result(PermissionResultDeny(message=answer.text.strip() or DEFAULT_DENY_MESSAGE))

    async def send(self, text: str) -> None:
        if self._client is None or self._stopping:
            raise HarnessError("cannot send the message: the Claude Code session has ended")
        if self._terminal_sent:   # a new turn after the last one finished
            self._terminal_sent = False
            self._interrupted = False
        await self._query(text)

    async def interrupt(self) -> None:
        if self._client is None or self._stopping:
            return
        self._interrupted = True
        self._deny_all(INTERRUPTED_MESSAGE, interrupt=True)
        if self._outstanding:
            try:
                await asyncio.wait_for(self._client.interrupt(), INTERRUPT_WAIT_S)
            except Exception as exc:  # noqa: BLE001 - the CLI may already be gone
                log.debug("interrupt failed: %s", exc)

    async def stop(self) -> None:
        async with self._stop_lock:
            if self._stopped:
                return
            self._stopping = True
            try:
                self._deny_all(INTERRUPTED_MESSAGE, interrupt=True)
                client = self._client
                if client is not None and self._outstanding and self._reader and not self._reader.done():
                    self._interrupted = True
                    self._turn_done.clear()
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(client.interrupt(), INTERRUPT_WAIT_S)
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._turn_done.wait(), INTERRUPT_WAIT_S)
                if client is not None:
                    try:
                        await asyncio.wait_for(client.disconnect(), DISCONNECT_WAIT_S)
                    except Exception as exc:  # noqa: BLE001 - killed below in any case
                        log.debug("disconnect from Claude Code failed: %s", exc)
                if self._reader is not None:
                    self._reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await self._reader
                await asyncio.to_thread(self._kill_leftovers)
                self._emit_terminal(Failed(INTERRUPTED_MESSAGE, retryable=False))
            finally:
                self._stopped = True
                self._stderr.close()

    # -- starting, sending --

    def _attach(self, client: Any) -> None:
        self._client = client
        process = getattr(getattr(client, "_transport", None), "_process", None)
        pid = getattr(process, "pid", None)
        self._pid = pid if isinstance(pid, int) else None
        self._reader = asyncio.create_task(self._read(), name=f"claude-code:{self.spec.task_id}")

    async def _query(self, text: str) -> None:
        message_uuid = str(uuid.uuid4())
        message = {
            "type": "user",
            "message": {"role": "user", "content": text},
            "parent_tool_use_id": None,
            "uuid": message_uuid,
        }

        async def one() -> AsyncIterator[dict[str, Any]]:
            yield message

        self._outstanding.append(message_uuid)
        try:
            await self._client.query(one())
        except Exception as exc:
            with contextlib.suppress(ValueError):
                self._outstanding.remove(message_uuid)
            raise HarnessError(f"cannot send the message to Claude Code: {exc}") from exc

    # -- reading --

    async def _read(self) -> None:
        try:
            async for message in self._client.receive_messages():
                for event in self._translate(message):
                    self._emit(event)
            if not self._stopping:
                tail = self._stderr.tail()
                self._emit_terminal(Failed("the Claude Code CLI ended without a result"
                                           + (f": {tail}" if tail else ""), retryable=True))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure ends the session
            if not self._stopping:
                tail = self._stderr.tail()
                self._emit_terminal(Failed(f"lost the Claude Code CLI: {exc}" + (f": {tail}" if tail else ""),
                                           retryable=True))
        finally:
            self._turn_done.set()
            self._deny_all(INTERRUPTED_MESSAGE, interrupt=True)

    def _emit(self, event: HarnessEvent) -> None:
        if isinstance(event, (Finished, Failed)):
            self._emit_terminal(event)
        else:
            self._queue.put_nowait(event)

    def _emit_terminal(self, event: Finished | Failed) -> None:
        if not self._terminal_sent:
            self._terminal_sent = True
            self._queue.put_nowait(event)

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

    def _on_result(self, result: "ResultMessage") -> list[HarnessEvent]:
        events: list[HarnessEvent] = []
        if result.session_id and result.session_id != self.session_id:
            self.session_id = result.session_id
            events.append(SessionIdAssigned(result.session_id))
        events.append(self._usage(result))
        taken = list(result.user_message_uuids or ([result.user_message_uuid] if result.user_message_uuid else []))
        before = len(self._outstanding)
        self._outstanding = [u for u in self._outstanding if u not in taken]
        if len(self._outstanding) == before and self._outstanding:
            self._outstanding.pop(0)   # a CLI that does not say which message it answered: one per result
        self._turn_done.set()
        failure = result_failure(result, interrupted=self._interrupted,
                                 assistant_error=self._last_assistant_error)
        self._last_assistant_error = None
        if self._outstanding and not self._stopping:
            return events            # a follow-up is still to be answered: the session goes on
        if failure is not None:
            events.append(failure)
        else:
            events.append(Finished(summary=(result.result or self._last_text or "").strip()))
        return events

    def _usage(self, result: "ResultMessage") -> Usage:
        usage = result.usage or {}
        input_tokens = sum(count_or_zero(usage.get(k)) for k in
                           ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
        output_tokens = count_or_zero(usage.get("output_tokens"))
        total = float(result.total_cost_usd or 0.0)
        if self._cost_reported is None:
            # A resumed session whose earlier cost could not be read from its transcript.
            self._cost_reported = estimate_baseline(result)
        delta = max(0.0, total - self._cost_reported)
        self._cost_reported = max(self._cost_reported, total)
        return Usage(input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=delta)

    # -- permissions and questions --

    async def _can_use_tool(self, tool_name: str, tool_input: dict[str, Any],
                            context: "ToolPermissionContext") -> Any:
        if self._stopping:
            return PermissionResultDeny(message=INTERRUPTED_MESSAGE, interrupt=True)
        key = context.tool_use_id or f"req-{next(self._ids)}"
        future: asyncio.Future = self._loop.create_future()
        if tool_name == "AskUserQuestion":
            questions = [q for q in (tool_input.get("questions") or []) if isinstance(q, dict)]
            pending = _Pending(tool_name, tool_input, future, questions=questions)
            self._pending[key] = pending
            self._queue.put_nowait(self._question_request(key, pending) if questions else InterventionRequest(
                request_id=key, kind=InterventionKind.INPUT, prompt="Claude asks for input.",
                tool=tool_name, detail=compact_json(tool_input)))
        else:
            pending = _Pending(tool_name, tool_input, future)
            self._pending[key] = pending
            self._queue.put_nowait(InterventionRequest(
                request_id=key,
                kind=InterventionKind.PERMISSION,
                prompt=permission_prompt(tool_name, tool_input, context),
                options=PERMISSION_OPTIONS,
                tool=tool_name,
                detail=permission_detail(tool_name, tool_input),
            ))
        try:
            return await future
        finally:
            if self._pending.get(key) is pending:
                del self._pending[key]

    def _question_request(self, key: str, pending: _Pending) -> InterventionRequest:
        q = pending.questions[pending.index]
        options = tuple(
            Option(id=str(i + 1), label=str(o.get("label", "")) or str(i + 1),
                   description=str(o.get("description", "") or ""))
            for i, o in enumerate(q.get("options") or []) if isinstance(o, dict))
        total = len(pending.questions)
        header = str(q.get("header") or "").strip()
        prompt = str(q.get("question") or "Claude has a question.")
        if total > 1:
            prompt = f"({pending.index + 1}/{total}) {prompt}"
        return InterventionRequest(
            request_id=f"{key}#q{pending.index + 1}",
            kind=InterventionKind.QUESTION,
            prompt=prompt,
            options=options,
            tool="AskUserQuestion",
            detail=header or None,
            multi_select=bool(q.get("multiSelect")),
        )

    def _answer_question(self, key: str, pending: _Pending, answer: Answer) -> None:
        q = pending.questions[pending.index]
        raw_options = [o for o in (q.get("options") or []) if isinstance(o, dict)]
        labels = []
        for oid in answer.option_ids:
            with contextlib.suppress(ValueError, IndexError):
                labels.append(str(raw_options[int(oid) - 1].get("label", "")))
        text = answer.text.strip()
        value = ", ".join(labels)
        if text:
            value = f"{value} ({text})" if value else text
        pending.answers[str(q.get("question") or f"question {pending.index + 1}")] = value
        pending.index += 1
        if pending.index < len(pending.questions):
            self._queue.put_nowait(self._question_request(key, pending))
            return
        self._pending.pop(key, None)
        pending.future.set_result(PermissionResultAllow(updated_input={**pending.input, "answers": pending.answers}))

    def _deny_all(self, message: str, *, interrupt: bool) -> None:
        for key, pending in list(self._pending.items()):
            self._pending.pop(key, None)
            if not pending.future.done():
                pending.future.set_result(PermissionResultDeny(message=message, interrupt=interrupt))

    # -- cleanup --

    def _kill_leftovers(self) -> None:
        """After disconnect: the CLI's process group, and anything else of this attempt.

        Claude Code runs each Bash command in a process group of its own, so the CLI's group
        does not hold them; every process of this attempt carries its TASKPIN_ATTEMPT_TOKEN.
        """
        if self._pid is not None:
            with contextlib.suppress(OSError):
                if os.getpgid(self._pid) == self._pid:
                    os.killpg(self._pid, signal.SIGKILL)
        token = self._env.get("TASKPIN_ATTEMPT_TOKEN")
        if not token:
            return
        marker = f"TASKPIN_ATTEMPT_TOKEN={token}".encode()
        victims = processes_with_env(marker)
        for pid in victims:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE_S
        while victims and time.monotonic() < deadline:
            time.sleep(0.05)
            victims = [p for p in victims if pid_alive(p)]
        for pid in victims:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


# ---- results ---------------------------------------------------------------------------------

def result_failure(result: "ResultMessage", *, interrupted: bool = False,
                   assistant_error: str | None = None) -> Failed | None:
    """None for a successful turn, else the Failed it means (and whether a new attempt may help)."""
    subtype = result.subtype or ""
    text = (result.result or "").strip() or "; ".join(str(e) for e in (result.errors or []))
    if not result.is_error and subtype == "success":
        if (result.stop_reason or "") == "refusal":
            return Failed(f"Claude declined the task{': ' + text if text else ''}", retryable=False)
        return None
    if interrupted or (result.terminal_reason or "").startswith("aborted"):
        return Failed("interrupted", retryable=False)
    if subtype == "error_max_turns":
        return Failed(f"Claude Code stopped after {result.num_turns} turns (max_turns)", retryable=False)
    if subtype == "error_max_budget_usd":
        return Failed(f"Claude Code reached its max_budget_usd (${result.total_cost_usd or 0:.2f} spent)",
                      retryable=False)
    if subtype.startswith("error_max"):
        return Failed(f"Claude Code stopped: {subtype}{': ' + text if text else ''}", retryable=False)
    status = result.api_error_status
    if status is not None:
        return Failed(f"Anthropic API error (HTTP {status}){': ' + text if text else ''}",
                      retryable=status in _RETRYABLE_STATUS)
    if assistant_error in _FINAL_ASSISTANT_ERRORS:
        return Failed(f"Claude Code failed ({assistant_error}){': ' + text if text else ''}", retryable=False)
    if (result.stop_reason or "") == "refusal":
        return Failed(f"Claude declined the task{': ' + text if text else ''}", retryable=False)
    return Failed(f"Claude Code failed ({subtype or 'error'}){': ' + text if text else ''}", retryable=True)


def _config_dir(env: Mapping[str, str]) -> Path | None:
    if env.get("CLAUDE_CONFIG_DIR"):
        return Path(env["CLAUDE_CONFIG_DIR"]).expanduser()
    home = env.get("HOME") or os.environ.get("HOME")
    return Path(home) / ".claude" if home else None


def resumed_cost_baseline(session_id: str | None, env: Mapping[str, str]) -> float | None:
    """What a resumed session had already cost: the last cost record in its transcript.

    None when it cannot be found (then the first result's share is estimated).
    """
    base = _config_dir(env)
    if not session_id or base is None:
        return None
    best: float | None = None
    for path in glob.glob(str(base / "projects" / "*" / f"{glob.escape(session_id)}.jsonl")):
        try:
            with open(path, "rb") as fh:
                for raw in fh:
                    if b'"cost-state"' not in raw:
                        continue
                    with contextlib.suppress(ValueError):
                        record = json.loads(raw)
                        if record.get("type") == "cost-state" and isinstance(record.get("totalCostUSD"), (int, float)):
                            best = float(record["totalCostUSD"])
        except OSError:
            continue
    return best


# Relative prices of the token kinds (the same ratios for every Claude model).
_WEIGHTS = {"input": 1.0, "output": 5.0, "cache_read": 0.1, "cache_write": 1.25}


def estimate_baseline(result: "ResultMessage") -> float:
    """The share of total_cost_usd spent before this turn, from the turn's and the session's tokens."""
    total = float(result.total_cost_usd or 0.0)
    usage = result.usage or {}
    turn = (count_or_zero(usage.get("input_tokens")) * _WEIGHTS["input"] + count_or_zero(usage.get("output_tokens")) * _WEIGHTS["output"]
            + count_or_zero(usage.get("cache_read_input_tokens")) * _WEIGHTS["cache_read"]
            + count_or_zero(usage.get("cache_creation_input_tokens")) * _WEIGHTS["cache_write"])
    session = 0.0
    for model in (result.model_usage or {}).values():
        if isinstance(model, Mapping):
            session += (count_or_zero(model.get("inputTokens")) * _WEIGHTS["input"]
                        + count_or_zero(model.get("outputTokens")) * _WEIGHTS["output"]
                        + count_or_zero(model.get("cacheReadInputTokens")) * _WEIGHTS["cache_read"]
                        + count_or_zero(model.get("cacheCreationInputTokens")) * _WEIGHTS["cache_write"])
    if session <= 0 or turn >= session:
        return 0.0
    return total * (1.0 - turn / session)


# ---- summaries of tool calls -----------------------------------------------------------------

def compact_json(value: Any, limit: int = DETAIL_MAX) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _preview(text: str, lines: int = PREVIEW_LINES) -> str:
    parts = text.splitlines()
    shown = "\n".join(parts[:lines])
    if len(parts) > lines:
        shown += f"\n… ({len(parts) - lines} more lines)"
    return shown


def permission_detail(tool: str, data: Mapping[str, Any]) -> str:
    """What the tool will do, for a human deciding: the command, the path and a preview, the URL..."""
    def s(key: str) -> str:
        value = data.get(key)
        return value if isinstance(value, str) else ""

    if tool == "Bash":
        return _cut(s("command"), DETAIL_MAX) or compact_json(data)
    if tool == "Write":
        return _cut(f"{s('file_path')}\n{_preview(s('content'))}", DETAIL_MAX)
    if tool == "Edit":
        old, new = _preview(s("old_string"), 6), _preview(s("new_string"), 6)
        minus = "\n".join("- " + line for line in old.splitlines())
        plus = "\n".join("+ " + line for line in new.splitlines())
        return _cut(f"{s('file_path')}\n{minus}\n{plus}".rstrip(), DETAIL_MAX)
    if tool == "MultiEdit":
        edits = data.get("edits") if isinstance(data.get("edits"), list) else []
        return _cut(f"{s('file_path')} ({len(edits)} edits)", DETAIL_MAX)
    if tool == "NotebookEdit":
        return _cut(s("notebook_path") or compact_json(data), DETAIL_MAX)
    if tool == "WebFetch":
        return _cut(s("url") or compact_json(data), DETAIL_MAX)
    if tool == "WebSearch":
        return _cut(s("query") or compact_json(data), DETAIL_MAX)
    if tool in ("Read", "Glob", "Grep"):
        path = s("file_path") or s("path")
        pattern = s("pattern")
        if path or pattern:
            return _cut(" ".join(p for p in (pattern, path) if p), DETAIL_MAX)
    return compact_json(data)


def permission_prompt(tool: str, data: Mapping[str, Any], context: Any) -> str:
    title = getattr(context, "title", None)
    if isinstance(title, str) and title.strip():
        return title.strip()
    description = data.get("description")
    if tool == "Bash":
        return f"Claude wants to run a command{': ' + description if isinstance(description, str) and description else ''}"
    if tool == "Write":
        return "Claude wants to write a file"
    if tool in ("Edit", "MultiEdit", "NotebookEdit"):
        return "Claude wants to edit a file"
    if tool == "WebFetch":
        return "Claude wants to fetch a web page"
    return f"Claude wants to use {tool}"


def activity_detail(tool: str, data: Mapping[str, Any]) -> str:
    if tool == "AskUserQuestion":
        questions = data.get("questions") if isinstance(data.get("questions"), list) else []
        return _cut(" / ".join(str(q.get("question", "")) for q in questions if isinstance(q, dict)), ACTIVITY_MAX)
    if tool in ("Write", "Edit", "MultiEdit"):
        value = data.get("file_path")
        return _cut(value, ACTIVITY_MAX) if isinstance(value, str) else ""
    detail = permission_detail(tool, data)
    first = detail.splitlines()[0] if detail else ""
    return _cut(first + (" …" if "\n" in detail else ""), ACTIVITY_MAX)
