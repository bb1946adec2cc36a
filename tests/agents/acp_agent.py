#!/usr/bin/env python3
"""A scripted ACP agent for tests (the agent side of the `acp` package, over stdio).

The script for the first prompt comes from env ACP_AGENT_SCRIPT (a JSON list of steps, or
the path of a JSON file holding one). Later prompts (follow-ups, a resumed session) run
ACP_AGENT_NEXT (default: [{"say": "got follow-up: {prompt}"}]). "{prompt}" in a `say` text is
replaced by the prompt's text. Every protocol event is appended as one JSON line to the file
named by ACP_AGENT_LOG (initialize, new_session, load_session, set_mode, prompt, permission
outcomes, fs results, cancel).

Sessions are remembered in ACP_AGENT_STATE_DIR (one JSON file per session id) so that
session/load works from a new process; ACP_AGENT_LOAD_SESSION=0 hides the capability.
Modes "default" and "auto" are offered; a new session starts in "auto".

Steps (one key each, run in order; a turn ends with stop_reason end_turn unless a step ends it):

  {"say": "text"}                     agent_message_chunk, streamed a few characters at a time
  {"tool": {"id", "title", "kind", "input"}}   tool_call (status pending)
  {"ask": {"id", "title", "kind", "input", "write": {"path", "content"}, "options": [...]}}
        tool_call + session/request_permission with options allow_once, allow_always,
        reject_once, reject_always (ids "allow-once", "allow-always", "reject-once",
        "reject-always") unless given. Allowed: write the file itself (relative to cwd), then
        tool_call_update completed and say "wrote <path>". Rejected: tool_call_update failed,
        say "not allowed". Cancelled: the turn ends with stop_reason cancelled.
  {"run": {"id", "title", "seconds"}} tool_call in_progress, then "run" for that long (a
                                      session/cancel ends the turn: stop_reason cancelled)
  {"read": "path"}                    fs/read_text_file (a relative path is joined to cwd, not
                                      normalized); say "read ok: <first line>" or "read refused"
  {"write": {"path", "content"}}      fs/write_text_file through the client
  {"usage": {"used", "size", "cost"}} usage_update (cost is the cumulative USD amount)
  {"turn_usage": {"input", "output"}} PromptResponse.usage for this turn
  {"stop_reason": "refusal"}          end the turn now with this stop reason
  {"say_env": ["NAME", ...]}          say "env NAME=<value>" (or "env NAME unset") for each
  {"sleep": 0.2}
  {"write_pid": "agent.pid"}          write this process's pid (relative to cwd)
  {"exit": N}                         exit the process now with code N
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import acp
from acp.schema import (
    AgentCapabilities,
    Cost,
    InitializeResponse,
    LoadSessionResponse,
    NewSessionResponse,
    PermissionOption,
    PromptResponse,
    SessionMode,
    SessionModeState,
    SetSessionModeResponse,
    ToolCallUpdate,
    Usage,
    UsageUpdate,
)

LOG = os.environ.get("ACP_AGENT_LOG")
STATE_DIR = Path(os.environ.get("ACP_AGENT_STATE_DIR") or Path(tempfile.gettempdir()) / "acp-agent-sessions")
LOAD_SESSION = os.environ.get("ACP_AGENT_LOAD_SESSION", "1") != "0"
DEFAULT_OPTIONS = [
    {"id": "allow-once", "name": "Allow once", "kind": "allow_once"},
    {"id": "allow-always", "name": "Always allow", "kind": "allow_always"},
    {"id": "reject-once", "name": "Reject", "kind": "reject_once"},
    {"id": "reject-always", "name": "Always reject", "kind": "reject_always"},
]


def record(event: str, **data: Any) -> None:
    if LOG:
        with open(LOG, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"event": event, **data}) + "\n")


def load_steps(name: str, default: list) -> list:
    raw = os.environ.get(name)
    if not raw:
        return default
    if raw.lstrip().startswith("["):
        return json.loads(raw)
    return json.loads(Path(raw).read_text())


class _Cancelled(Exception):
    pass


class ScriptedAgent:
    def __init__(self) -> None:
        self.conn: Any = None
        self.sessions: dict[str, dict] = {}
        self.cancel_events: dict[str, asyncio.Event] = {}
        self.prompts = 0

    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    # -- lifecycle --

    async def initialize(self, protocol_version: int, client_capabilities: Any = None, client_info: Any = None,
                         **kwargs: Any) -> InitializeResponse:
        caps = client_capabilities.model_dump(mode="json", by_alias=True, exclude_none=True) if client_capabilities else {}
        record("initialize", protocol_version=protocol_version, client_capabilities=caps,
               client=client_info.name if client_info else None)
        return InitializeResponse(protocol_version=acp.PROTOCOL_VERSION,
                                  agent_capabilities=AgentCapabilities(load_session=LOAD_SESSION))

    def _modes(self, current: str) -> SessionModeState:
        return SessionModeState(current_mode_id=current, available_modes=[
            SessionMode(id="default", name="Ask"), SessionMode(id="auto", name="Auto")])

    async def new_session(self, cwd: str, mcp_servers: list | None = None, **kwargs: Any) -> NewSessionResponse:
        session_id = f"sess-{uuid.uuid4().hex[:12]}"
        self.sessions[session_id] = {"cwd": cwd, "mode": "auto", "history": []}
        self.cancel_events[session_id] = asyncio.Event()
        self._save(session_id)
        record("new_session", session_id=session_id, cwd=cwd, mcp_servers=len(mcp_servers or []))
        return NewSessionResponse(session_id=session_id, modes=self._modes("auto"))

    async def load_session(self, cwd: str, session_id: str, mcp_servers: list | None = None,
                           **kwargs: Any) -> LoadSessionResponse:
        path = STATE_DIR / f"{session_id}.json"
        if not path.exists():
            raise acp.RequestError.resource_not_found(session_id)
        state = json.loads(path.read_text())
        state["cwd"] = cwd
        self.sessions[session_id] = state
        self.cancel_events[session_id] = asyncio.Event()
        record("load_session", session_id=session_id, cwd=cwd, history=len(state["history"]))
        # Replay the conversation, as ACP asks: the client must not mistake this for new output.
        for role, text in state["history"]:
            update = acp.update_user_message_text(text) if role == "user" else acp.update_agent_message_text(text)
            await self.conn.session_update(session_id=session_id, update=update)
        return LoadSessionResponse(modes=self._modes(state.get("mode", "auto")))

    async def set_session_mode(self, session_id: str, mode_id: str, **kwargs: Any) -> SetSessionModeResponse:
        record("set_mode", session_id=session_id, mode=mode_id)
        self.sessions[session_id]["mode"] = mode_id
        self._save(session_id)
        return SetSessionModeResponse()

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        record("cancel", session_id=session_id)
        event = self.cancel_events.get(session_id)
        if event is not None:
            event.set()

    async def authenticate(self, method_id: str, **kwargs: Any) -> None:
        return None

    def _save(self, session_id: str) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        (STATE_DIR / f"{session_id}.json").write_text(json.dumps(self.sessions[session_id]))

    # -- prompts --

    async def prompt(self, session_id: str, prompt: list, **kwargs: Any) -> PromptResponse:
        text = "".join(getattr(block, "text", "") or "" for block in prompt)
        self.prompts += 1
        record("prompt", session_id=session_id, text=text, number=self.prompts)
        state = self.sessions[session_id]
        state["history"].append(["user", text])
        cancel = self.cancel_events[session_id]
        cancel.clear()
        first = self.prompts == 1 and not any(r == "agent" for r, _ in state["history"][:-1])
        steps = load_steps("ACP_AGENT_SCRIPT", [{"say": "done"}]) if first else \
            load_steps("ACP_AGENT_NEXT", [{"say": "got follow-up: {prompt}"}])
        turn = {"said": [], "usage": None}
        try:
            stop_reason = await self._run(session_id, steps, text, cancel, turn)
        except _Cancelled:
            stop_reason = "cancelled"
        if turn["said"]:
            state["history"].append(["agent", "".join(turn["said"])])
        self._save(session_id)
        record("turn_end", session_id=session_id, stop_reason=stop_reason)
        usage = None
        if turn["usage"]:
            i, o = int(turn["usage"].get("input", 0)), int(turn["usage"].get("output", 0))
            usage = Usage(input_tokens=i, output_tokens=o, total_tokens=i + o)
        return PromptResponse(stop_reason=stop_reason, usage=usage)

    async def _say(self, session_id: str, text: str, turn: dict) -> None:
        turn["said"].append(text)
        message_id = uuid.uuid4().hex
        for i in range(0, len(text), 4):     # token-sized chunks
            update = acp.update_agent_message_text(text[i:i + 4])
            update.message_id = message_id
            await self.conn.session_update(session_id=session_id, update=update)

    async def _run(self, session_id: str, steps: list, prompt_text: str, cancel: asyncio.Event, turn: dict) -> str:
        cwd = Path(self.sessions[session_id]["cwd"])
        for step in steps:
            if cancel.is_set():
                raise _Cancelled
            (key, value), = step.items()
            if key == "say":
                await self._say(session_id, value.replace("{prompt}", prompt_text), turn)
            elif key == "tool":
                await self.conn.session_update(session_id=session_id, update=acp.start_tool_call(
                    value["id"], value.get("title", value["id"]), kind=value.get("kind", "other"),
                    status="pending", raw_input=value.get("input")))
            elif key == "ask":
                await self._ask(session_id, value, cwd, turn)
            elif key == "run":
                await self.conn.session_update(session_id=session_id, update=acp.start_tool_call(
                    value["id"], value.get("title", "running"), kind=value.get("kind", "execute"),
                    status="in_progress", raw_input=value.get("input")))
                record("run_started", id=value["id"])
                try:
                    await asyncio.wait_for(cancel.wait(), float(value.get("seconds", 30)))
                except TimeoutError:
                    await self.conn.session_update(session_id=session_id, update=acp.update_tool_call(
                        value["id"], status="completed"))
                else:
                    record("run_cancelled", id=value["id"])
                    raise _Cancelled
            elif key == "read":
                path = value if os.path.isabs(value) else str(cwd) + os.sep + value
                try:
                    resp = await self.conn.read_text_file(session_id=session_id, path=path)
                except acp.RequestError as exc:
                    record("read", path=path, ok=False, error=str(exc))
                    await self._say(session_id, "read refused", turn)
                else:
                    record("read", path=path, ok=True, content=resp.content)
                    first_line = resp.content.splitlines()[0] if resp.content else ""
                    await self._say(session_id, f"read ok: {first_line}", turn)
            elif key == "write":
                path = value["path"] if os.path.isabs(value["path"]) else str(cwd) + os.sep + value["path"]
                try:
                    await self.conn.write_text_file(session_id=session_id, path=path, content=value["content"])
                except acp.RequestError as exc:
                    record("write", path=path, ok=False, error=str(exc))
                else:
                    record("write", path=path, ok=True)
            elif key == "usage":
                cost = value.get("cost")
                await self.conn.session_update(session_id=session_id, update=UsageUpdate(
                    session_update="usage_update", used=int(value.get("used", 0)), size=int(value.get("size", 1000)),
                    cost=Cost(amount=float(cost), currency="USD") if cost is not None else None))
            elif key == "turn_usage":
                turn["usage"] = value
            elif key == "stop_reason":
                return value
            elif key == "say_env":
                for name in value:
                    shown = f"env {name}={os.environ[name]}" if name in os.environ else f"env {name} unset"
                    await self._say(session_id, shown + "\n", turn)
            elif key == "sleep":
                try:
                    await asyncio.wait_for(cancel.wait(), float(value))
                except TimeoutError:
                    pass
                else:
                    raise _Cancelled
            elif key == "write_pid":
                (cwd / value).write_text(str(os.getpid()))
            elif key == "exit":
                sys.stdout.flush()
                os._exit(int(value))
            else:
                raise ValueError(f"unknown step {key!r}")
        return "end_turn"

    async def _ask(self, session_id: str, spec: dict, cwd: Path, turn: dict) -> None:
        tool_id = spec.get("id", "call-1")
        title = spec.get("title", "Write a file")
        await self.conn.session_update(session_id=session_id, update=acp.start_tool_call(
            tool_id, title, kind=spec.get("kind", "edit"), status="pending", raw_input=spec.get("input")))
        options = [PermissionOption(option_id=o["id"], name=o["name"], kind=o["kind"])
                   for o in spec.get("options", DEFAULT_OPTIONS)]
        response = await self.conn.request_permission(
            session_id=session_id, options=options,
            tool_call=ToolCallUpdate(tool_call_id=tool_id, title=title, kind=spec.get("kind", "edit"),
                                     status="pending", raw_input=spec.get("input")))
        outcome = response.outcome
        if outcome.outcome == "cancelled":
            record("permission", id=tool_id, outcome="cancelled")
            raise _Cancelled
        chosen = next(o for o in options if o.option_id == outcome.option_id)
        record("permission", id=tool_id, outcome="selected", option_id=chosen.option_id, kind=chosen.kind)
        if chosen.kind.startswith("allow"):
            write = spec.get("write")
            if write:
                target = cwd / write["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(write["content"])
            await self.conn.session_update(session_id=session_id, update=acp.update_tool_call(
                tool_id, status="completed"))
            await self._say(session_id, f"wrote {write['path']}" if write else "done", turn)
        else:
            await self.conn.session_update(session_id=session_id, update=acp.update_tool_call(
                tool_id, status="failed"))
            await self._say(session_id, "not allowed", turn)


async def main() -> None:
    await acp.run_agent(ScriptedAgent())


if __name__ == "__main__":
    asyncio.run(main())
