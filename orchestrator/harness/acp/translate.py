"""ACP session updates -> taskpin's events.

- agent_message_chunk -> OutputText, coalesced: complete lines go out when a chunk ends a line,
  the rest when the message changes, another event comes, the turn ends, or after a short
  quiet period (never one event per token).
- tool_call / tool_call_update -> ToolActivity (tool = the agent's tool name if it says one in
  _meta, else the ACP kind; detail = the title, plus the status once it completes or fails).
- usage_update.cost (cumulative) -> Usage with the cost delta; PromptResponse.usage (per turn)
  -> Usage with the turn's tokens.
- plan -> OutputText "Plan: ..."; thoughts and UI state are not shown.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...models import Option
from ..base import HarnessEvent, OutputText, ToolActivity, Usage
from ..session import Cumulative

OUTPUT_IDLE_FLUSH_S = 0.4           # a partial line is shown after this long without new text
OUTPUT_MAX_BUFFER = 4000            # ...or once this many characters are waiting
SUMMARY_MAX_CHARS = 4000

KIND_VERBS = {
    "execute": "run a command", "edit": "edit a file", "delete": "delete a file", "move": "move a file",
    "read": "read a file", "fetch": "fetch a URL", "search": "search", "switch_mode": "switch mode",
}


@dataclass
class ToolState:
    title: str = ""
    kind: str | None = None
    status: str | None = None
    raw_input: Any = None
    name: str | None = None          # the agent's own tool name (e.g. claudeCode.toolName in _meta)
    reported: tuple[str, str | None] | tuple[()] = ()             # (title, status) last shown as activity

    @property
    def tool(self) -> str:
        return self.name or self.kind or "tool"


class UpdateTranslator:
    def __init__(self, emit: Callable[[HarnessEvent], None]):
        self._sink = emit
        self.replaying = False           # session/load replays history as updates: not news
        self.current_mode: str | None = None
        self.last_message = ""           # the last complete agent message (the summary)
        self._tools: dict[str, ToolState] = {}
        self._cost = Cumulative(0.0, restart_on_drop=True)
        self._out_buf = ""
        self._out_message_id: str | None = None
        self._flush_handle: asyncio.TimerHandle | None = None
        self._message_text = ""          # the agent message being written

    def emit(self, event: HarnessEvent) -> None:
        """Emit an event after the text before it (keeps text and events in order)."""
        if self._out_buf and not isinstance(event, OutputText):
            self.flush_output()
        self._sink(event)

    def update(self, update: Any) -> None:
        kind = getattr(update, "session_update", None)
        if self.replaying:
            if kind == "usage_update" and update.cost is not None:
                self._cost.seen = float(update.cost.amount)
            return
        if kind == "agent_message_chunk":
            self._on_text(update)
        elif kind in ("tool_call", "tool_call_update"):
            self.end_message()
            self._on_tool(update)
        elif kind == "usage_update":
            cost = getattr(update, "cost", None)
            delta = self._cost.advance(float(cost.amount)) if cost is not None else 0.0
            if delta > 0:
                self.emit(Usage(cost_usd=delta))
        elif kind == "plan":
            self.end_message()
            lines = [f"- [{e.status}] {e.content}" for e in getattr(update, "entries", None) or []]
            if lines:
                self.emit(OutputText("Plan:\n" + "\n".join(lines)))
        elif kind == "current_mode_update":
            self.current_mode = getattr(update, "current_mode_id", self.current_mode)

    def turn_usage(self, response: Any) -> None:
        usage = getattr(response, "usage", None)
        if usage is not None and (usage.input_tokens or usage.output_tokens):
            self.emit(Usage(input_tokens=int(usage.input_tokens), output_tokens=int(usage.output_tokens)))

    # -- text --

    def _on_text(self, update: Any) -> None:
        content = update.content
        text = getattr(content, "text", None)
        if getattr(content, "type", None) != "text" or not text:
            return
        message_id = getattr(update, "message_id", None)
        if message_id is not None and message_id != self._out_message_id:
            if self._out_message_id is not None:
                self.end_message()
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
            if self._flush_handle is not None:
                self._flush_handle.cancel()
            self._flush_handle = asyncio.get_running_loop().call_later(OUTPUT_IDLE_FLUSH_S, self.flush_output)

    def _emit_text(self, text: str) -> None:
        text = text.strip("\n")
        if text.strip():
            self._sink(OutputText(text))

    def flush_output(self) -> None:
        self._cancel_timer()
        buf, self._out_buf = self._out_buf, ""
        self._emit_text(buf)

    def end_message(self) -> None:
        """The agent message being written is complete (another kind of update came)."""
        self.flush_output()
        if self._message_text.strip():
            summary = self._message_text.strip()
            if len(summary) > SUMMARY_MAX_CHARS:
                summary = summary[:SUMMARY_MAX_CHARS] + " …"
            self.last_message = summary
        self._message_text = ""
        self._out_message_id = None

    def reset_output(self) -> None:
        self._cancel_timer()
        self._out_buf = self._message_text = ""
        self._out_message_id = None

    def _cancel_timer(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None

    close = _cancel_timer

    # -- tools --

    def tool_state(self, tool_call: Any) -> ToolState:
        state = self._tools.setdefault(tool_call.tool_call_id, ToolState())
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

    def _on_tool(self, update: Any) -> None:
        state = self.tool_state(update)
        shown_status = state.status if state.status in ("completed", "failed") else None
        key = (state.title, shown_status)
        if key == state.reported:
            return
        state.reported = key
        detail = state.title or input_detail(state.raw_input) or ""
        if shown_status:
            detail = f"{detail} ({shown_status})" if detail else shown_status
        self.emit(ToolActivity(tool=state.tool, detail=detail))


def permission_option(option: Any) -> Option:
    kind = option.kind or ""
    mapped = "allow" if kind.startswith("allow") else "deny" if kind.startswith("reject") else "other"
    return Option(id=option.option_id, label=option.name or option.option_id, kind=mapped)


def input_detail(raw: Any) -> str | None:
    """The exact command, path or URL a tool call is about, from its raw input."""
    if isinstance(raw, str):
        return raw or None
    if not isinstance(raw, dict):
        return None
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
