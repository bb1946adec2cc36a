"""The `codex` harness: OpenAI's Codex CLI driven through ``codex app-server`` (JSON-RPC on stdio).

One session is one app-server process and one Codex *thread*:

    initialize / initialized  ->  thread/start (or thread/resume)  ->  turn/start {prompt}

Codex streams notifications (``item/*``, ``turn/*``, ``thread/tokenUsage/updated``) which become
normalized events, and sends *server requests* when it needs a human:
``item/commandExecution/requestApproval`` and ``item/fileChange/requestApproval`` become
permission interventions, ``item/tool/requestUserInput`` a question. The answer goes back as
the JSON-RPC result (``{"decision": "accept" | "acceptForSession" | "decline"}``).

Codex's ``decline`` carries no message, so a reason the human typed is delivered as a user
message right after the decline: ``turn/steer`` while the turn is still running (the model
sees it in its very next request), else a follow-up ``turn/start`` on the same thread.
``send()`` works the same way. The session finishes when a turn completes with nothing
queued; its summary is Codex's last agent message.

Options ([agents.NAME] with kind = "codex"):

    command          argv of the app-server, default ["codex", "app-server"]
    codex_home       CODEX_HOME for the agent (config.toml, auth, sessions); default: inherited
    model            model name (default: Codex's own config)
    model_provider   a provider id from config.toml (default: Codex's own config)
    approval_policy  "untrusted" | "on-request" | "never" (or a granular table); default "on-request"
    sandbox          "read-only" | "workspace-write" | "danger-full-access"; default "workspace-write"
    config           extra Codex config overrides for the thread (a table, dotted keys allowed)
    env              extra environment for the agent
    stop_grace_s     seconds between SIGTERM and SIGKILL when stopping, default 5
    startup_timeout_s  how long the app-server may take to answer initialize/thread start, default 60
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import time
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
    count_or_zero,
    env_option,
    executable_problem,
    json_text,
    reject_unknown,
    seconds_option,
    taskpin_version,
)
from .process import AgentStderr, close_stdin, describe_exit, descendants, proc_table, settle, spawn_agent

log = logging.getLogger(__name__)

DEFAULT_COMMAND = ("codex", "app-server")
APPROVAL_POLICIES = ("untrusted", "on-request", "never")
SANDBOX_MODES = ("read-only", "workspace-write", "danger-full-access")
DEFAULT_STOP_GRACE_S = 5.0
DEFAULT_STARTUP_TIMEOUT_S = 60.0
STREAM_LIMIT = 16 * 1024 * 1024      # one JSON-RPC message per line; thread/resume can be large
OUTPUT_FLUSH_CHARS = 4000            # agent message deltas are coalesced up to this size
INTERRUPT_WAIT_S = 2.0               # after turn/interrupt: how long to wait for turn/completed
READER_DRAIN_S = 2.0

_KNOWN_OPTIONS = ("command", "codex_home", "model", "model_provider", "approval_policy", "sandbox",
                  "config", "env", "stop_grace_s", "startup_timeout_s")

# Turn failures that another attempt would only repeat.
_FATAL_ERRORS = {"contextWindowExceeded", "sessionBudgetExceeded", "usageLimitExceeded", "modelNotFound",
                 "unauthorized", "badRequest", "cyberPolicy", "misalignmentPolicyViolation", "tooManyDenials",
                 "inferenceHookDenied"}

_FATAL_HTTP = {400, 401, 403, 404}   # the model provider refused the request itself

APPROVE = Option(id="accept", label="Approve", kind="allow")
APPROVE_SESSION = Option(id="acceptForSession", label="Approve for this session", kind="allow",
                         description="Approve this and similar requests until the task ends")
DENY = Option(id="decline", label="Deny", kind="deny")
APPROVAL_OPTIONS = (APPROVE, APPROVE_SESSION, DENY)


# ---- options ------------------------------------------------------------------------------

def _parse_options(options: Mapping[str, Any]) -> dict[str, Any]:
    reject_unknown(options, _KNOWN_OPTIONS, "codex")
    command = argv_option(options, example='["codex", "app-server"]', default=DEFAULT_COMMAND, required=True)

    codex_home = options.get("codex_home")
    if codex_home is not None and (not isinstance(codex_home, (str, os.PathLike)) or not str(codex_home)):
        raise HarnessConfigError(f"codex_home must be a directory path, got {codex_home!r}")

    for key in ("model", "model_provider"):
        value = options.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise HarnessConfigError(f"{key} must be a non-empty string, got {value!r}")

    policy = options.get("approval_policy", "on-request")
    if isinstance(policy, Mapping):
        if set(policy) != {"granular"} or not isinstance(policy["granular"], Mapping):
            raise HarnessConfigError('a table approval_policy must be {granular = {...}}')
        policy = {"granular": dict(policy["granular"])}
    elif policy not in APPROVAL_POLICIES:
        hint = ' ("on-failure" is gone in this Codex version: use "on-request")' if policy == "on-failure" else ""
        raise HarnessConfigError(f"approval_policy must be one of {', '.join(APPROVAL_POLICIES)}, "
                                 f"got {policy!r}{hint}")

    sandbox = options.get("sandbox", "workspace-write")
    if sandbox not in SANDBOX_MODES:
        raise HarnessConfigError(f"sandbox must be one of {', '.join(SANDBOX_MODES)}, got {sandbox!r}")

    config = options.get("config") or {}
    if not isinstance(config, Mapping):
        raise HarnessConfigError(f"config must be a table of Codex settings, got {config!r}")

    env = env_option(options)

    return {
        "command": command,
        "codex_home": None if codex_home is None else str(codex_home),
        "model": options.get("model"),
        "model_provider": options.get("model_provider"),
        "approval_policy": policy,
        "sandbox": sandbox,
        "config": dict(config),
        "env": env,
        "stop_grace_s": seconds_option(options, "stop_grace_s", DEFAULT_STOP_GRACE_S),
        "startup_timeout_s": (seconds_option(options, "startup_timeout_s", DEFAULT_STARTUP_TIMEOUT_S)
                              or DEFAULT_STARTUP_TIMEOUT_S),
    }


# ---- the harness --------------------------------------------------------------------------

class CodexHarness:
    kind = "codex"

    def __init__(self, config: AgentConfig | Mapping[str, Any], *, stop_grace_s: float | None = None):
        opts = _parse_options(agent_options(config))
        self.command: list[str] = opts["command"]
        self.codex_home: str | None = opts["codex_home"]
        self.model: str | None = opts["model"]
        self.model_provider: str | None = opts["model_provider"]
        self.approval_policy: Any = opts["approval_policy"]
        self.sandbox: str = opts["sandbox"]
        self.config: dict[str, Any] = opts["config"]
        self.env: dict[str, str] = opts["env"]
        self.stop_grace_s: float = opts["stop_grace_s"] if stop_grace_s is None else float(stop_grace_s)
        self.startup_timeout_s: float = opts["startup_timeout_s"]

    @property
    def supports_resume(self) -> bool:
        return True   # thread/resume reloads the thread from $CODEX_HOME/sessions

    async def start(self, spec: SessionSpec) -> "CodexSession":
        return await self._launch(spec, resume_id=None)

    async def resume(self, spec: SessionSpec) -> "CodexSession":
        if not spec.resume_session_id:
            raise HarnessError("cannot resume: no Codex thread id was recorded for this task")
        return await self._launch(spec, resume_id=spec.resume_session_id)

    def check(self) -> list[str]:
        problem = executable_problem(self.command[0], self.env, not_found="install the Codex CLI (npm install "
                                     "-g @openai/codex) or put its absolute path in command")
        problems = [problem] if problem else []
        if self.codex_home is not None:
            home = Path(self.codex_home).expanduser()
            if home.exists() and not home.is_dir():
                problems.append(f"codex_home {self.codex_home} is not a directory")
        return problems

    # -- internals --

    def build_env(self, spec: SessionSpec) -> dict[str, str]:
        env = agent_env(self.env, spec.env)
        if self.codex_home is not None:
            env["CODEX_HOME"] = str(Path(self.codex_home).expanduser().resolve())
        return env

    def thread_params(self, spec: SessionSpec) -> dict[str, Any]:
        params: dict[str, Any] = {
            "cwd": str(Path(spec.workdir).resolve()),
            "approvalPolicy": self.approval_policy,
            "sandbox": self.sandbox,
        }
        if self.model:
            params["model"] = self.model
        if self.model_provider:
            params["modelProvider"] = self.model_provider
        if self.config:
            params["config"] = self.config
        return params

    async def _launch(self, spec: SessionSpec, resume_id: str | None) -> "CodexSession":
        if not Path(spec.workdir).is_dir():
            raise HarnessError(f"cannot start codex: workdir {spec.workdir} does not exist")
        env = self.build_env(spec)
        if "CODEX_HOME" in env and self.codex_home is not None:
            Path(env["CODEX_HOME"]).mkdir(parents=True, exist_ok=True)
        if spec.log_path is not None:
            Path(spec.log_path).parent.mkdir(parents=True, exist_ok=True)
        try:
            proc = await spawn_agent(self.command, cwd=spec.workdir, env=env, limit=STREAM_LIMIT)
        except FileNotFoundError as exc:
            raise HarnessError(f"cannot start codex: executable {self.command[0]!r} not found "
                               f"(install @openai/codex or set command)") from exc
        except (OSError, ValueError) as exc:
            raise HarnessError(f"cannot start codex {self.command[0]!r}: {exc}") from exc

        session = CodexSession(proc, spec, stop_grace_s=self.stop_grace_s)
        session._begin()
        try:
            await asyncio.wait_for(session._handshake(self.thread_params(spec), resume_id, spec.prompt),
                                   self.startup_timeout_s)
        except BaseException as exc:
            await session.stop()
            if isinstance(exc, asyncio.TimeoutError):
                raise HarnessError(f"codex app-server did not answer within {self.startup_timeout_s:g}s"
                                   + session._stderr_suffix()) from exc
            if isinstance(exc, HarnessError):
                raise
            if isinstance(exc, Exception):
                raise HarnessError(f"cannot start codex: {exc}") from exc
            raise
        return session


class _RpcError(HarnessError):
    def __init__(self, method: str, error: Any):
        self.error = error if isinstance(error, dict) else {"message": str(error)}
        super().__init__(f"{method} failed: {self.error.get('message') or self.error}")


class CodexSession:
    """One app-server process, one Codex thread."""

    def __init__(self, proc: asyncio.subprocess.Process, spec: SessionSpec, *, stop_grace_s: float):
        self._proc = proc
        self._spec = spec
        self._grace = stop_grace_s
        self._queue: asyncio.Queue[HarnessEvent] = asyncio.Queue()
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future]] = {}
        self._write_lock = asyncio.Lock()
        self._stop_lock = asyncio.Lock()
        self._term_lock = asyncio.Lock()
        self._stderr = AgentStderr(spec.log_path)   # closed in _supervise
        self._tasks: list[asyncio.Task] = []
        self._reader_tasks: list[asyncio.Task] = []
        self.thread_id: str | None = None
        self.turn_id: str | None = None          # the running turn, None between turns
        self._turn_starting = False
        self._finished_turns: set[str] = set()
        self._queued: list[str] = []             # user messages waiting for the next turn
        self._steering = 0                       # turn/steer requests awaiting their answer
        self._completed_while_steering = False
        self._server_requests: dict[str, tuple[int | str, str, dict]] = {}   # our id -> (rpc id, method, params)
        self._items: dict[str, dict] = {}        # item id -> last seen item (for file change paths)
        self._deltas: dict[str, list[str]] = {}  # agent message id -> unflushed deltas
        self._streamed: set[str] = set()         # agent message ids with at least one delta shown
        self._last_message = ""
        self._last_error: str | None = None
        self._usage_seen: tuple[int, int] | None = None
        self._our_turns: set[str] = set()
        self._terminal: Finished | Failed | None = None
        self._stop_reason: str | None = None
        self._end_queued = False
        self._delivered_end = False
        self._group_dead = False
        self._known_descendants: set[int] = set()
        self._known_sessions: set[int] = set()

    # -- AgentSession --

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def supports_follow_up(self) -> bool:
        return True

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
        entry = self._server_requests.pop(request_id, None)
        if entry is None:
            raise HarnessError(f"codex is no longer waiting for request {request_id} "
                               "(the turn ended or was interrupted)")
        rpc_id, method, params = entry
        text = answer.text.strip()
        follow_up: str | None = None
        if method in ("item/commandExecution/requestApproval", "item/fileChange/requestApproval"):
            decision = answer.option_id or ""
            if decision not in {o.id for o in APPROVAL_OPTIONS}:
                decision = "decline"   # a reply without a button: deny, and tell the agent why
            result: dict[str, Any] = {"decision": decision}
            if decision == "decline" and text:
                what = params.get("command") or request.detail or "that"
                follow_up = f"I denied {what}. {text}"
            elif text:
                follow_up = text
        elif method == "item/permissions/requestApproval":
            decision = answer.option_id or "decline"
            if decision == "decline":
                result = {"permissions": {}, "scope": "turn"}
                if text:
                    follow_up = f"I denied the extra permissions. {text}"
            else:
                granted = {k: v for k, v in (params.get("permissions") or {}).items() if v is not None}
                result = {"permissions": granted, "scope": "session" if decision == "acceptForSession" else "turn"}
        elif method == "item/tool/requestUserInput":
            result = {"answers": self._user_input_answers(params, answer, request)}
        else:  # pragma: no cover - only the methods above become interventions
            result = {}
        await self._respond(rpc_id, result)
        if follow_up:
            await self.send(follow_up)

    async def send(self, text: str) -> None:
        """A user message: steers the running turn, else starts the next one."""
        if self._proc.returncode is not None or self._stop_reason is not None:
            raise HarnessError("codex has stopped: the message cannot be delivered")
        if self._terminal is not None:
            raise HarnessError("the codex session has ended: the message cannot be delivered")
        if self.turn_id is not None and not self._turn_starting:
            self._steering += 1
            steered = False
            try:
                await self._request("turn/steer", {"threadId": self.thread_id, "expectedTurnId": self.turn_id,
                                                   "input": [_text_input(text)]}, timeout=10)
                steered = True
            except (_RpcError, asyncio.TimeoutError) as exc:
                log.info("codex: turn/steer refused (%s); the message waits for the next turn", exc)
            finally:
                self._steering -= 1
            if not steered:
                self._queued.append(text)
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
        """Interrupt the running turn, then end the session (like a cancel)."""
        self._stop_reason = self._stop_reason or "interrupted by taskpin"
        await self.stop()

    async def stop(self) -> None:
        """turn/interrupt, close stdin, SIGTERM the group (and Codex's own command sessions),
        SIGKILL after the grace period. Idempotent."""
        async with self._stop_lock:
            if self._proc.returncode is None:
                self._stop_reason = self._stop_reason or "stopped by taskpin"
                self._remember_tree()   # before the interrupt orphans anything
                await self._interrupt_turn()
                close_stdin(self._proc)   # the app-server exits on EOF and ends its command sessions
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._proc.wait()), min(self._grace, 3.0))
            await self._terminate()
            await settle(self._tasks, READER_DRAIN_S + 1.0)
            self._queue_end()

    # -- JSON-RPC plumbing --

    def _begin(self) -> None:
        loop = asyncio.get_running_loop()
        self._reader_tasks = [loop.create_task(self._read_stdout()),
                              loop.create_task(self._stderr.pump(self._proc.stderr, "codex app-server"))]
        self._tasks = [loop.create_task(self._supervise())]

    async def _write(self, obj: Mapping[str, Any]) -> None:
        stdin = self._proc.stdin
        if self._proc.returncode is not None or stdin is None or stdin.is_closing():
            raise HarnessError("codex app-server has exited")
        data = (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        async with self._write_lock:
            try:
                stdin.write(data)
                await stdin.drain()
            except (BrokenPipeError, ConnectionResetError, OSError, RuntimeError) as exc:
                raise HarnessError(f"cannot write to codex app-server: {exc}") from exc

    async def _request(self, method: str, params: Any, *, timeout: float | None = None) -> Any:
        rid = next(self._ids)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[rid] = (method, fut)
        try:
            await self._write({"id": rid, "method": method, "params": params})
            if timeout is None:
                return await fut
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(rid, None)

    async def _notify(self, method: str, params: Any = None) -> None:
        msg: dict[str, Any] = {"method": method}
        if params is not None:
            msg["params"] = params
        await self._write(msg)

    async def _respond(self, rpc_id: int | str, result: Any) -> None:
        await self._write({"id": rpc_id, "result": result})

    async def _respond_error(self, rpc_id: int | str, code: int, message: str) -> None:
        with contextlib.suppress(HarnessError):
            await self._write({"id": rpc_id, "error": {"code": code, "message": message}})

    async def _handshake(self, thread_params: dict[str, Any], resume_id: str | None, prompt: str) -> None:
        await self._request("initialize", {
            "clientInfo": {"name": "taskpin", "title": "taskpin", "version": taskpin_version()},
            "capabilities": None,
        })
        await self._notify("initialized")
        if resume_id is not None:
            result = await self._request("thread/resume", {"threadId": resume_id, **thread_params,
                                                           "excludeTurns": True})
        else:
            result = await self._request("thread/start", thread_params)
        thread = (result or {}).get("thread") or {}
        self.thread_id = thread.get("id") or resume_id
        if not self.thread_id:
            raise HarnessError(f"codex answered thread start without a thread id: {result!r}")
        self._queue.put_nowait(SessionIdAssigned(self.thread_id))
        await self._start_turn(prompt)

    async def _start_turn(self, text: str) -> None:
        self._turn_starting = True
        try:
            result = await self._request("turn/start", {"threadId": self.thread_id, "input": [_text_input(text)]})
            turn = (result or {}).get("turn") or {}
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
            self._end(Finished(summary=self._last_message))

    async def _interrupt_turn(self) -> None:
        if self.turn_id is None or self.thread_id is None:
            return
        turn_id = self.turn_id
        with contextlib.suppress(HarnessError, asyncio.TimeoutError):
            await self._request("turn/interrupt", {"threadId": self.thread_id, "turnId": turn_id}, timeout=1.0)
            deadline = time.monotonic() + INTERRUPT_WAIT_S
            while self.turn_id == turn_id and time.monotonic() < deadline and self._proc.returncode is None:
                await asyncio.sleep(0.05)

    # -- reading --

    async def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        try:
            while True:
                try:
                    line = await self._proc.stdout.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    log.warning("codex: dropped an over-long message")
                    continue
                if not line:
                    return
                line = line.strip()
                if not line:
                    continue
                try:
                    msg = json.loads(line)
                except ValueError:
                    self._stderr.write_log(b"[codex stdout] " + line)
                    continue
                if isinstance(msg, dict):
                    try:
                        await self._dispatch(msg)
                    except HarnessError as exc:   # e.g. a write after the process died
                        log.info("codex: %s", exc)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a reader bug must not hang the session
            log.exception("reading codex app-server stdout failed")
        finally:
            for _method, fut in list(self._pending.values()):
                if not fut.done():
                    fut.set_exception(HarnessError("codex app-server exited" + self._stderr_suffix()))

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        method = msg.get("method")
        if method is None:   # a response to one of our requests
            pending = self._pending.get(msg.get("id"))  # type: ignore[arg-type]
            if pending is not None and not pending[1].done():
                name, fut = pending
                if "error" in msg:
                    fut.set_exception(_RpcError(name, msg["error"]))
                else:
                    fut.set_result(msg.get("result"))
            return
        params = msg.get("params") or {}
        if "id" in msg:
            await self._on_server_request(msg["id"], method, params)
        else:
            self._on_notification(method, params)

    # -- notifications --

    def _emit(self, event: HarnessEvent) -> None:
        if self._terminal is None:
            self._queue.put_nowait(event)

    def _end(self, event: Finished | Failed) -> None:
        if self._terminal is None:
            self._flush_all()
            self._terminal = event
            self._queue_end()

    def _on_notification(self, method: str, p: dict[str, Any]) -> None:
        if p.get("threadId") not in (None, self.thread_id) and self.thread_id is not None:
            return   # a sub-agent's thread: its approvals still reach us as server requests
        if method == "item/agentMessage/delta":
            item_id = str(p.get("itemId"))
            buf = self._deltas.setdefault(item_id, [])
            buf.append(str(p.get("delta") or ""))
            if sum(len(s) for s in buf) >= OUTPUT_FLUSH_CHARS:
                self._flush(item_id)
        elif method == "item/started":
            self._on_item(p.get("item") or {}, started=True)
        elif method == "item/completed":
            self._on_item(p.get("item") or {}, started=False)
        elif method == "thread/tokenUsage/updated":
            self._on_usage(p.get("tokenUsage") or {}, p.get("turnId"))
        elif method == "turn/started":
            turn = p.get("turn") or {}
            if turn.get("id"):
                self.turn_id = turn["id"]
                self._our_turns.add(turn["id"])
        elif method == "turn/completed":
            self._on_turn_completed(p.get("turn") or {})
        elif method == "error":
            err = p.get("error") or {}
            message = _error_text(err)
            if p.get("willRetry"):
                self._stderr.write_log(f"[codex] {message} (retrying)".encode())
            else:
                self._last_error = message
        elif method == "serverRequest/resolved":
            rid = p.get("requestId")
            for key, (rpc_id, _m, _p) in list(self._server_requests.items()):
                if rpc_id == rid:
                    self._server_requests.pop(key, None)

    def _on_item(self, item: dict[str, Any], *, started: bool) -> None:
        kind = item.get("type")
        item_id = str(item.get("id"))
        self._items[item_id] = item
        if kind == "agentMessage":
            if started:
                return
            text = item.get("text") or ""
            if item_id in self._streamed or self._deltas.get(item_id):
                self._flush(item_id)
            elif text:
                self._emit(OutputText(text))
            if text.strip():
                self._last_message = text
            self._streamed.discard(item_id)
        elif kind == "commandExecution":
            command = item.get("command") or ""
            if started:
                self._emit(ToolActivity("command", command))
                # Learn the command's process session while it is still linked to Codex.
                asyncio.get_running_loop().call_later(0.3, self._remember_tree)
            elif item.get("status") in ("failed", "declined"):
                exit_code = item.get("exitCode")
                status = item["status"] + (f" (exit {exit_code})" if exit_code not in (None, 0) else "")
                self._emit(ToolActivity("command", f"{status}: {command}"))
        elif kind == "fileChange":
            if started:
                self._emit(ToolActivity("edit", _change_paths(item)))
            elif item.get("status") in ("failed", "declined"):
                self._emit(ToolActivity("edit", f"{item['status']}: {_change_paths(item)}"))
        elif started and kind == "mcpToolCall":
            self._emit(ToolActivity(f"mcp:{item.get('server')}/{item.get('tool')}", json_text(item.get("arguments"))))
        elif started and kind == "dynamicToolCall":
            self._emit(ToolActivity(str(item.get("tool") or "tool"), json_text(item.get("arguments"))))
        elif started and kind == "webSearch":
            self._emit(ToolActivity("web_search", str(item.get("query") or "")))

    def _flush(self, item_id: str) -> None:
        text = "".join(self._deltas.pop(item_id, []))
        if text:
            self._streamed.add(item_id)
            self._emit(OutputText(text))

    def _flush_all(self) -> None:
        for item_id in list(self._deltas):
            self._flush(item_id)

    def _on_usage(self, usage: dict[str, Any], turn_id: Any) -> None:
        total = usage.get("total") or {}
        last = usage.get("last") or {}
        now = (count_or_zero(total.get("inputTokens")), count_or_zero(total.get("outputTokens")))
        if turn_id is not None and turn_id not in self._our_turns:
            self._usage_seen = now   # thread/resume replays the history's usage: not this session's
            return
        if self._usage_seen is None:
            # A resumed thread reports its whole history: only the last request is this session's.
            self._usage_seen = (max(0, now[0] - count_or_zero(last.get("inputTokens"))),
                                max(0, now[1] - count_or_zero(last.get("outputTokens"))))
        d_in, d_out = now[0] - self._usage_seen[0], now[1] - self._usage_seen[1]
        self._usage_seen = (max(now[0], self._usage_seen[0]), max(now[1], self._usage_seen[1]))
        if d_in > 0 or d_out > 0:
            self._emit(Usage(input_tokens=max(0, d_in), output_tokens=max(0, d_out)))

    def _on_turn_completed(self, turn: dict[str, Any]) -> None:
        if turn.get("id") not in (None, self.turn_id) and self.turn_id is not None:
            return
        self.turn_id = None
        if turn.get("id"):
            self._finished_turns.add(turn["id"])
        self._flush_all()
        for key, (_rid, _m, params) in list(self._server_requests.items()):
            if params.get("turnId") == turn.get("id"):
                self._server_requests.pop(key, None)
        status = turn.get("status")
        if self._stop_reason is not None:
            self._end(Failed(self._stop_reason, retryable=False))
        elif status == "completed":
            if self._steering:
                self._completed_while_steering = True
            else:
                self._after_completed_turn()
        elif status == "interrupted":
            self._end(Failed("the codex turn was interrupted", retryable=False))
        else:
            err = turn.get("error") or {}
            message = _error_text(err) if err else (self._last_error or f"the codex turn ended as {status}")
            info = err.get("codexErrorInfo") if isinstance(err, dict) else None
            fatal = (isinstance(info, str) and info in _FATAL_ERRORS) or (
                isinstance(info, dict) and bool(set(info) & _FATAL_ERRORS)) or _http_status(info) in _FATAL_HTTP
            self._end(Failed(message, retryable=not fatal))

    # -- server requests --

    async def _on_server_request(self, rpc_id: int | str, method: str, p: dict[str, Any]) -> None:
        key = str(rpc_id)
        if method == "item/commandExecution/requestApproval":
            command = p.get("command") or json_text(p.get("commandActions")) or "(a command)"
            kind = p.get("kind") or "command"
            if kind == "writeStdin":
                prompt = "Codex wants to send input to a running command"
            else:
                prompt = "Codex wants to run a command"
            reason = p.get("reason")
            if reason:
                prompt += f": {reason}"
            detail = command if not p.get("cwd") else f"{command}\n(in {p['cwd']})"
            self._server_requests[key] = (rpc_id, method, p)
            self._emit(InterventionRequest(request_id=key, kind=InterventionKind.PERMISSION, prompt=prompt,
                                           options=APPROVAL_OPTIONS, tool="command", detail=detail))
        elif method == "item/fileChange/requestApproval":
            item = self._items.get(str(p.get("itemId"))) or {}
            paths = _change_paths(item) if item else ""
            prompt = "Codex wants to change files"
            if p.get("reason"):
                prompt += f": {p['reason']}"
            if p.get("grantRoot"):
                prompt += f" (and write access under {p['grantRoot']} for the rest of the session)"
            self._server_requests[key] = (rpc_id, method, p)
            self._emit(InterventionRequest(request_id=key, kind=InterventionKind.PERMISSION, prompt=prompt,
                                           options=APPROVAL_OPTIONS, tool="edit",
                                           detail=paths or p.get("grantRoot") or "(files)"))
        elif method == "item/permissions/requestApproval":
            prompt = "Codex asks for extra permissions" + (f": {p['reason']}" if p.get("reason") else "")
            self._server_requests[key] = (rpc_id, method, p)
            self._emit(InterventionRequest(request_id=key, kind=InterventionKind.PERMISSION, prompt=prompt,
                                           options=APPROVAL_OPTIONS, tool="permissions",
                                           detail=json_text(p.get("permissions"))))
        elif method == "item/tool/requestUserInput":
            self._server_requests[key] = (rpc_id, method, p)
            self._emit(_user_input_request(key, p))
        elif method == "mcpServer/elicitation/request":
            # MCP forms have arbitrary schemas; taskpin cannot render them. Decline, visibly.
            self._emit(OutputText(f"[taskpin] declined an MCP request from {p.get('serverName')}: "
                                  f"{p.get('message') or ''}".rstrip(": ")))
            await self._respond(rpc_id, {"action": "decline", "content": None, "_meta": None})
        elif method in ("applyPatchApproval", "execCommandApproval"):
            await self._respond(rpc_id, {"decision": "denied"})   # legacy v1 API: never used by v2 threads
        else:
            await self._respond_error(rpc_id, -32601, f"taskpin does not support {method}")

    def _user_input_answers(self, params: dict, answer: Answer, request: InterventionRequest) -> dict:
        questions = [q for q in params.get("questions") or [] if isinstance(q, dict)]
        labels = {o.id: o.label for o in request.options}
        chosen = [labels.get(o, o) for o in answer.option_ids]
        text = answer.text.strip()
        answers: dict[str, dict[str, list[str]]] = {}
        for q in questions:
            values = list(chosen) if chosen and len(questions) == 1 else []
            if text:
                values.append(text)
            answers[str(q.get("id"))] = {"answers": values}
        return answers

    # -- lifecycle --

    async def _supervise(self) -> None:
        try:
            await self._proc.wait()
            await settle(self._reader_tasks, READER_DRAIN_S)
            self._queue_end()
            # Codex ends the commands it started when it exits; sweep any it left behind.
            await self._terminate()
        finally:
            self._queue_end()
            close_stdin(self._proc)
            self._stderr.close()

    def _queue_end(self) -> None:
        if not self._end_queued:
            self._end_queued = True
            self._flush_all()
            self._queue.put_nowait(self._final_event())

    def _final_event(self) -> Finished | Failed:
        if self._terminal is not None:
            return self._terminal
        if self._stop_reason is not None:
            self._terminal = Failed(self._stop_reason, retryable=False)
            return self._terminal
        code = self._proc.returncode
        how = ("was " if code is not None and code < 0 else "") + describe_exit(code)
        self._terminal = Failed(f"codex app-server {how} before the task finished{self._stderr_suffix()}",
                                retryable=True)
        return self._terminal

    def _stderr_suffix(self) -> str:
        return self._stderr.suffix()

    def _targets(self) -> tuple[bool, set[int]]:
        """(group alive, other processes to signal): Codex's descendants outside our group, and
        everything in the sessions they started (an orphan there has lost its parent link)."""
        table = proc_table()
        pgid = self._proc.pid
        for pid in descendants(pgid, table):
            sid = table[pid][3]
            if sid != pgid and sid > 1:
                self._known_sessions.add(sid)
            self._known_descendants.add(pid)
        others = {p for p, (_pp, pg, st, sid) in table.items()
                  if st != b"Z" and pg != pgid and (p in self._known_descendants or sid in self._known_sessions)}
        self._known_descendants &= set(table)
        group = any(pg == pgid and st != b"Z" for _pp, pg, st, _sid in table.values())
        return group, others - {os.getpid()}

    def _remember_tree(self) -> None:
        if not self._group_dead:
            with contextlib.suppress(Exception):
                self._targets()

    def _signal(self, sig: int) -> None:
        _group, others = self._targets()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)
        for pid in others:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def _alive(self) -> bool:
        group, others = self._targets()
        return self._proc.returncode is None or group or bool(others)

    async def _terminate(self) -> None:
        async with self._term_lock:
            await self._terminate_locked()

    async def _terminate_locked(self) -> None:
        if self._group_dead:
            return
        self._targets()   # remember Codex's command sessions while their parent is alive
        if self._alive():
            self._signal(signal.SIGTERM)
            deadline = time.monotonic() + self._grace
            while self._alive() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        if self._alive():
            self._signal(signal.SIGKILL)
        await self._proc.wait()
        deadline = time.monotonic() + 1.0
        while self._alive() and time.monotonic() < deadline:
            self._signal(signal.SIGKILL)
            await asyncio.sleep(0.02)
        self._group_dead = True


# ---- helpers --------------------------------------------------------------------------------

def _text_input(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text, "text_elements": []}


def _user_input_request(key: str, p: dict[str, Any]) -> InterventionRequest:
    questions = [q for q in p.get("questions") or [] if isinstance(q, dict)]
    if len(questions) == 1 and questions[0].get("options"):
        q = questions[0]
        options = tuple(Option(id=str(o.get("label")), label=str(o.get("label")),
                               description=str(o.get("description") or ""))
                        for o in q["options"] if isinstance(o, dict) and o.get("label"))
        prompt = str(q.get("question") or q.get("header") or "Codex has a question")
        return InterventionRequest(request_id=key, kind=InterventionKind.QUESTION, prompt=prompt,
                                   options=options, tool="request_user_input")
    lines = []
    for n, q in enumerate(questions, 1):
        text = str(q.get("question") or q.get("header") or "")
        opts = [str(o.get("label")) for o in q.get("options") or [] if isinstance(o, dict)]
        suffix = f" (options: {', '.join(opts)})" if opts else ""
        lines.append((f"{n}. " if len(questions) > 1 else "") + text + suffix)
    return InterventionRequest(request_id=key, kind=InterventionKind.INPUT,
                               prompt="\n".join(lines) or "Codex asks for input", tool="request_user_input")


def _change_paths(item: dict[str, Any]) -> str:
    parts = []
    for change in item.get("changes") or []:
        if not isinstance(change, dict):
            continue
        kind = change.get("kind")
        kind_name = kind.get("type") if isinstance(kind, dict) else kind
        parts.append(f"{kind_name} {change.get('path')}" if kind_name else str(change.get("path")))
    return "\n".join(parts)


def _http_status(info: Any) -> int | None:
    """The upstream HTTP status in a codexErrorInfo like {"httpConnectionFailed": {"httpStatusCode": 401}}."""
    if isinstance(info, dict):
        for value in info.values():
            if isinstance(value, dict) and isinstance(value.get("httpStatusCode"), int):
                return value["httpStatusCode"]
    return None


def _error_text(err: Any) -> str:
    if not isinstance(err, dict):
        return str(err)
    message = str(err.get("message") or "codex reported an error")
    details = err.get("additionalDetails")
    return f"{message} ({details})" if details else message
