"""Codex app-server notifications and server requests -> taskpin's events, and taskpin's
answers -> Codex's JSON-RPC results.

Server requests that need a human: ``item/commandExecution/requestApproval`` and
``item/fileChange/requestApproval`` (and ``item/permissions/requestApproval``) become
permission interventions, ``item/tool/requestUserInput`` a question. Codex's ``decline``
carries no message, so a reason the human typed comes back as a follow-up text that the
session delivers as a user message.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...models import Answer, InterventionKind, Option
from ..base import (
    Failed,
    HarnessEvent,
    InterventionRequest,
    OutputText,
    ToolActivity,
    Usage,
)
from ..options import count_or_zero, json_text
from ..session import Cumulative

OUTPUT_FLUSH_CHARS = 4000            # agent message deltas are coalesced up to this size

APPROVE = Option(id="accept", label="Approve", kind="allow")
APPROVE_SESSION = Option(id="acceptForSession", label="Approve for this session", kind="allow",
                         description="Approve this and similar requests until the task ends")
DENY = Option(id="decline", label="Deny", kind="deny")
APPROVAL_OPTIONS = (APPROVE, APPROVE_SESSION, DENY)

COMMAND_APPROVAL = "item/commandExecution/requestApproval"
FILE_APPROVAL = "item/fileChange/requestApproval"
PERMISSIONS_APPROVAL = "item/permissions/requestApproval"
USER_INPUT = "item/tool/requestUserInput"
HUMAN_REQUESTS = (COMMAND_APPROVAL, FILE_APPROVAL, PERMISSIONS_APPROVAL, USER_INPUT)

# Turn failures that another attempt would only repeat.
_FATAL_ERRORS = {"contextWindowExceeded", "sessionBudgetExceeded", "usageLimitExceeded", "modelNotFound",
                 "unauthorized", "badRequest", "cyberPolicy", "misalignmentPolicyViolation", "tooManyDenials",
                 "inferenceHookDenied"}
_FATAL_HTTP = {400, 401, 403, 404}   # the model provider refused the request itself


class ItemTranslator:
    """item/* notifications and token usage -> OutputText, ToolActivity, Usage (via `emit`)."""

    def __init__(self, emit: Callable[[HarnessEvent], None], *, on_command_started: Callable[[], None]):
        self._emit = emit
        self._on_command_started = on_command_started
        self.items: dict[str, dict[str, Any]] = {}         # item id -> last seen item (for file change paths)
        self._deltas: dict[str, list[str]] = {}  # agent message id -> unflushed deltas
        self._streamed: set[str] = set()         # agent message ids with at least one delta shown
        self.last_message = ""
        self._tokens_in = Cumulative(None)
        self._tokens_out = Cumulative(None)

    def delta(self, item_id: str, text: str) -> None:
        buf = self._deltas.setdefault(item_id, [])
        buf.append(text)
        if sum(len(s) for s in buf) >= OUTPUT_FLUSH_CHARS:
            self.flush(item_id)

    def flush(self, item_id: str) -> None:
        text = "".join(self._deltas.pop(item_id, []))
        if text:
            self._streamed.add(item_id)
            self._emit(OutputText(text))

    def flush_all(self) -> None:
        for item_id in list(self._deltas):
            self.flush(item_id)

    def item(self, item: dict[str, Any], *, started: bool) -> None:
        kind = item.get("type")
        item_id = str(item.get("id"))
        self.items[item_id] = item
        if kind == "agentMessage":
            if started:
                return
            text = item.get("text") or ""
            if item_id in self._streamed or self._deltas.get(item_id):
                self.flush(item_id)
            elif text:
                self._emit(OutputText(text))
            if text.strip():
                self.last_message = text
            self._streamed.discard(item_id)
        elif kind == "commandExecution":
            command = item.get("command") or ""
            if started:
                self._emit(ToolActivity("command", command))
                self._on_command_started()
            elif item.get("status") in ("failed", "declined"):
                exit_code = item.get("exitCode")
                status = item["status"] + (f" (exit {exit_code})" if exit_code not in (None, 0) else "")
                self._emit(ToolActivity("command", f"{status}: {command}"))
        elif kind == "fileChange":
            if started:
                self._emit(ToolActivity("edit", change_paths(item)))
            elif item.get("status") in ("failed", "declined"):
                self._emit(ToolActivity("edit", f"{item['status']}: {change_paths(item)}"))
        elif started and kind == "mcpToolCall":
            self._emit(ToolActivity(f"mcp:{item.get('server')}/{item.get('tool')}", json_text(item.get("arguments"))))
        elif started and kind == "dynamicToolCall":
            self._emit(ToolActivity(str(item.get("tool") or "tool"), json_text(item.get("arguments"))))
        elif started and kind == "webSearch":
            self._emit(ToolActivity("web_search", str(item.get("query") or "")))

    def usage(self, usage: dict[str, Any], *, ours: bool) -> None:
        """thread/tokenUsage/updated: cumulative totals -> a Usage delta. A turn that is not
        this session's (thread/resume replays the history) only moves the baseline."""
        total = usage.get("total") or {}
        last = usage.get("last") or {}
        now_in, now_out = count_or_zero(total.get("inputTokens")), count_or_zero(total.get("outputTokens"))
        if not ours:
            self._tokens_in.seen, self._tokens_out.seen = now_in, now_out
            return
        if self._tokens_in.seen is None:
            # A resumed thread reports its whole history: only the last request is this session's.
            self._tokens_in.seen = max(0, now_in - count_or_zero(last.get("inputTokens")))
            self._tokens_out.seen = max(0, now_out - count_or_zero(last.get("outputTokens")))
        d_in, d_out = int(self._tokens_in.advance(now_in)), int(self._tokens_out.advance(now_out))
        if d_in > 0 or d_out > 0:
            self._emit(Usage(input_tokens=d_in, output_tokens=d_out))


# ---- server requests ---------------------------------------------------------------------

def intervention(key: str, method: str, p: dict[str, Any], items: dict[str, dict[str, Any]]) -> InterventionRequest:
    """The intervention a human-facing server request (HUMAN_REQUESTS) becomes."""
    if method == COMMAND_APPROVAL:
        command = p.get("command") or json_text(p.get("commandActions")) or "(a command)"
        if (p.get("kind") or "command") == "writeStdin":
            prompt = "Codex wants to send input to a running command"
        else:
            prompt = "Codex wants to run a command"
        if p.get("cwd"):
            prompt += f" in {p['cwd']}"
        if p.get("reason"):
            prompt += f": {p['reason']}"
        # The detail is the command alone: approval-policy rules match it (orchestrator/policy.py).
        return InterventionRequest(request_id=key, kind=InterventionKind.PERMISSION, prompt=prompt,
                                   options=APPROVAL_OPTIONS, tool="command", detail=command)
    if method == FILE_APPROVAL:
        item = items.get(str(p.get("itemId"))) or {}
        paths = change_paths(item) if item else ""
        prompt = "Codex wants to change files"
        if p.get("reason"):
            prompt += f": {p['reason']}"
        if p.get("grantRoot"):
            prompt += f" (and write access under {p['grantRoot']} for the rest of the session)"
        return InterventionRequest(request_id=key, kind=InterventionKind.PERMISSION, prompt=prompt,
                                   options=APPROVAL_OPTIONS, tool="edit",
                                   detail=paths or p.get("grantRoot") or "(files)")
    if method == PERMISSIONS_APPROVAL:
        prompt = "Codex asks for extra permissions" + (f": {p['reason']}" if p.get("reason") else "")
        return InterventionRequest(request_id=key, kind=InterventionKind.PERMISSION, prompt=prompt,
                                   options=APPROVAL_OPTIONS, tool="permissions",
                                   detail=json_text(p.get("permissions")))
    return _user_input_request(key, p)


def answer_result(method: str, params: dict[str, Any], answer: Answer,
                  request: InterventionRequest) -> tuple[dict[str, Any], str | None]:
    """(the JSON-RPC result for Codex, a follow-up message to send after it or None)."""
    text = answer.text.strip()
    follow_up: str | None = None
    if method in (COMMAND_APPROVAL, FILE_APPROVAL):
        decision = answer.option_id or ""
        if decision not in {o.id for o in APPROVAL_OPTIONS}:
            decision = "decline"   # a reply without a button: deny, and tell the agent why
        if decision == "decline" and text:
            what = params.get("command") or request.detail or "that"
            follow_up = f"I denied {what}. {text}"
        elif text:
            follow_up = text
        return {"decision": decision}, follow_up
    if method == PERMISSIONS_APPROVAL:
        decision = answer.option_id or "decline"
        if decision == "decline":
            return {"permissions": {}, "scope": "turn"}, (f"I denied the extra permissions. {text}" if text else None)
        granted = {k: v for k, v in (params.get("permissions") or {}).items() if v is not None}
        return {"permissions": granted, "scope": "session" if decision == "acceptForSession" else "turn"}, None
    if method == USER_INPUT:
        return {"answers": _user_input_answers(params, answer, request)}, None
    return {}, None  # pragma: no cover - only the methods above become interventions


def _user_input_answers(params: dict[str, Any], answer: Answer, request: InterventionRequest) -> dict[str, Any]:
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


# ---- turns -------------------------------------------------------------------------------

def turn_failure(turn: dict[str, Any], last_error: str | None) -> Failed:
    """A turn that ended neither completed nor interrupted: the Failed it means."""
    err = turn.get("error") or {}
    message = error_text(err) if err else (last_error or f"the codex turn ended as {turn.get('status')}")
    info = err.get("codexErrorInfo") if isinstance(err, dict) else None
    fatal = (isinstance(info, str) and info in _FATAL_ERRORS) or (
        isinstance(info, dict) and bool(set(info) & _FATAL_ERRORS)) or _http_status(info) in _FATAL_HTTP
    return Failed(message, retryable=not fatal)


def text_input(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text, "text_elements": []}


def change_paths(item: dict[str, Any]) -> str:
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
                return int(value["httpStatusCode"])
    return None


def error_text(err: Any) -> str:
    if not isinstance(err, dict):
        return str(err)
    message = str(err.get("message") or "codex reported an error")
    details = err.get("additionalDetails")
    return f"{message} ({details})" if details else message
