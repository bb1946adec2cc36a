"""Lines an agent prints -> taskpin's events (the command protocol, docs/command-protocol.md).

A JSON object with a known `type` is an event; anything else is output, and the legacy
plain-text marker ``[INTERVENTION_REQUIRED]`` asks the human for one line of input.
"""
from __future__ import annotations

import itertools
import json
from collections import deque
from typing import Any

from ...models import InterventionKind, Option
from ..base import (
    Failed,
    Finished,
    HarnessEvent,
    InterventionRequest,
    OutputText,
    SessionIdAssigned,
    ToolActivity,
    Usage,
)
from ..options import json_text, require_cost, require_count, require_str

LEGACY_MARKER = "[INTERVENTION_REQUIRED]"
SUMMARY_LINES = 5                     # output lines kept for an implicit Finished summary

DEFAULT_PERMISSION_OPTIONS = (
    Option(id="allow", label="Approve", kind="allow"),
    Option(id="deny", label="Deny", kind="deny"),
)
_OPTION_KINDS = ("allow", "deny", "other")


class LineParser:
    """Turns stdout lines into events; remembers the last output lines (the summary of an
    agent that exits 0 without a finished line) and which requests came from the marker."""

    def __init__(self) -> None:
        self.output_tail: deque[str] = deque(maxlen=SUMMARY_LINES)
        self.marker_requests: set[str] = set()
        self.session_id: str | None = None
        self._marker_ids = itertools.count(1)

    def parse(self, line: str) -> list[HarnessEvent]:
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
            event = _event_from(obj)
        except (KeyError, TypeError, ValueError):
            event = None
        if event is None:
            return self._plain(line)
        if isinstance(event, OutputText):
            self._remember_output(event.text)
        elif isinstance(event, SessionIdAssigned):
            self.session_id = event.session_id
        return [event]

    def _remember_output(self, text: str) -> None:
        for line in text.splitlines():
            if line.strip():
                self.output_tail.append(line)

    def _plain(self, line: str) -> list[HarnessEvent]:
        marker = line.find(LEGACY_MARKER)
        if marker >= 0:
            after = line[marker + len(LEGACY_MARKER):].strip(" \t:-")
            before = line[:marker].strip()
            prompt = after or before or (self.output_tail[-1] if self.output_tail else "") \
                or "The agent is waiting for input."
            request_id = f"marker-{next(self._marker_ids)}"
            self.marker_requests.add(request_id)
            return [InterventionRequest(request_id=request_id, kind=InterventionKind.INPUT, prompt=prompt)]
        self._remember_output(line)
        return [OutputText(line)]


def _event_from(obj: dict[str, Any]) -> HarnessEvent | None:
    kind = obj.get("type")
    if kind == "output":
        return OutputText(require_str(obj["text"]))
    if kind == "activity":
        return ToolActivity(tool=require_str(obj["tool"]), detail=json_text(obj.get("detail", "")))
    if kind == "intervention":
        return _intervention(obj)
    if kind == "usage":
        return Usage(
            input_tokens=require_count(obj.get("input_tokens", 0)),
            output_tokens=require_count(obj.get("output_tokens", 0)),
            cost_usd=require_cost(obj.get("cost_usd", 0.0)),
        )
    if kind == "session":
        sid = obj["id"]
        if isinstance(sid, bool) or not isinstance(sid, (str, int)) or str(sid) == "":
            return None
        return SessionIdAssigned(str(sid))
    if kind == "finished":
        return Finished(summary=json_text(obj.get("summary", "")))
    if kind == "failed":
        retryable = obj.get("retryable", True)
        if not isinstance(retryable, bool):
            return None
        return Failed(error=json_text(obj.get("error", "")) or "the agent reported a failure", retryable=retryable)
    return None


def _intervention(obj: dict[str, Any]) -> InterventionRequest | None:
    rid = obj["id"]
    if isinstance(rid, bool) or not isinstance(rid, (str, int)) or str(rid) == "":
        return None
    prompt = require_str(obj["prompt"])
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
            label=json_text(raw.get("label")) or str(oid),
            kind=okind if okind in _OPTION_KINDS else "other",
            description=json_text(raw.get("description", "")),
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
        tool=None if tool is None else json_text(tool),
        detail=None if detail is None else json_text(detail),
        multi_select=multi,
    )
