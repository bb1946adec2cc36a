"""Claude Code's messages -> taskpin's events: results (Usage, Finished/Failed), and the
summaries of tool calls a human sees (permission prompts and details, activity lines,
AskUserQuestion questions)."""
from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from ...models import Answer, InterventionKind, Option
from ..base import Failed, InterventionRequest
from ..options import count_or_zero

PERMISSION_OPTIONS = (
    Option(id="allow", label="Approve", kind="allow"),
    Option(id="deny", label="Deny", kind="deny"),
)
DETAIL_MAX = 2500           # characters of an intervention's detail
PREVIEW_LINES = 12          # lines of a Write/Edit preview
ACTIVITY_MAX = 300          # characters of a ToolActivity detail

# HTTP statuses of API errors that another attempt may get past (rate limits, overload, 5xx).
_RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504, 529}
_FINAL_ASSISTANT_ERRORS = {"authentication_failed", "billing_error", "invalid_request"}


def result_tokens(result: Any) -> tuple[int, int]:
    """(input, output) tokens of one result (cache reads and writes count as input)."""
    usage = result.usage or {}
    input_tokens = sum(count_or_zero(usage.get(k)) for k in
                       ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
    return input_tokens, count_or_zero(usage.get("output_tokens"))


# ---- AskUserQuestion ---------------------------------------------------------------------

class Questions:
    """One AskUserQuestion call: its questions are asked one at a time."""

    def __init__(self, key: str, tool_input: dict[str, Any]):
        self.key = key
        self.input = tool_input
        self.questions = [q for q in (tool_input.get("questions") or []) if isinstance(q, dict)]
        self.index = 0
        self.answers: dict[str, str] = {}

    def request(self) -> InterventionRequest:
        q = self.questions[self.index]
        options = tuple(
            Option(id=str(i + 1), label=str(o.get("label", "")) or str(i + 1),
                   description=str(o.get("description", "") or ""))
            for i, o in enumerate(q.get("options") or []) if isinstance(o, dict))
        total = len(self.questions)
        header = str(q.get("header") or "").strip()
        prompt = str(q.get("question") or "Claude has a question.")
        if total > 1:
            prompt = f"({self.index + 1}/{total}) {prompt}"
        return InterventionRequest(request_id=f"{self.key}#q{self.index + 1}", kind=InterventionKind.QUESTION,
                                   prompt=prompt, options=options, tool="AskUserQuestion",
                                   detail=header or None, multi_select=bool(q.get("multiSelect")))

    def record(self, answer: Answer) -> bool:
        """Record the answer to the current question; True when all are answered."""
        q = self.questions[self.index]
        raw_options = [o for o in (q.get("options") or []) if isinstance(o, dict)]
        labels = []
        for oid in answer.option_ids:
            with contextlib.suppress(ValueError, IndexError):
                labels.append(str(raw_options[int(oid) - 1].get("label", "")))
        text = answer.text.strip()
        value = ", ".join(labels)
        if text:
            value = f"{value} ({text})" if value else text
        self.answers[str(q.get("question") or f"question {self.index + 1}")] = value
        self.index += 1
        return self.index >= len(self.questions)

    def updated_input(self) -> dict[str, Any]:
        return {**self.input, "answers": self.answers}


# ---- results -----------------------------------------------------------------------------

def result_failure(result: Any, *, interrupted: bool = False,
                   assistant_error: str | None = None) -> Failed | None:
    """None for a successful turn, else the Failed it means (and whether a new attempt may help)."""
    subtype = result.subtype or ""
    text = (result.result or "").strip() or "; ".join(str(e) for e in (result.errors or []))
    if not result.is_error and subtype == "success":
        if (result.stop_reason or "") == "refusal":
            return Failed(f"Claude declined the task{': ' + text if text else ''}", retryable=False)
        return None
    if interrupted or (result.terminal_reason or "").startswith("aborted"):
        return Failed("interrupted by taskpin", retryable=False)
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


# Relative prices of the token kinds (the same ratios for every Claude model).
_WEIGHTS = {"input": 1.0, "output": 5.0, "cache_read": 0.1, "cache_write": 1.25}


def estimate_baseline(result: Any) -> float:
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
        edits = data.get("edits")
        return _cut(f"{s('file_path')} ({len(edits) if isinstance(edits, list) else 0} edits)", DETAIL_MAX)
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
        raw = data.get("questions")
        questions = raw if isinstance(raw, list) else []
        return _cut(" / ".join(str(q.get("question", "")) for q in questions if isinstance(q, dict)), ACTIVITY_MAX)
    if tool in ("Write", "Edit", "MultiEdit"):
        value = data.get("file_path")
        return _cut(value, ACTIVITY_MAX) if isinstance(value, str) else ""
    detail = permission_detail(tool, data)
    first = detail.splitlines()[0] if detail else ""
    return _cut(first + (" …" if "\n" in detail else ""), ACTIVITY_MAX)
