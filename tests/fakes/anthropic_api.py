"""A scripted fake of the Anthropic Messages API, for running the real Claude Code CLI offline.

    async with FakeAnthropic() as api:
        api.script(bash("echo hi > out.txt"), text("Done."))
        env = api.cli_env(home=tmp_path / "home")      # ANTHROPIC_BASE_URL etc. for the CLI
        ...
        api.main_requests[-1]                             # every request body the model received

`POST /v1/messages` answers with a streamed (SSE) message: message_start, one
content_block_start/delta/stop per block, message_delta (stop_reason, usage), message_stop.
The requested model is echoed back.

The CLI also sends side requests (a title for the session, a quota probe...). Only requests
that offer tools (the agent loop) take the next scripted response; side requests get a
short text and never consume the script. When the script is empty the agent loop gets
`default_text`, so a run always ends. Every request (path, query, body) is recorded in
`requests`; `main_requests` holds just the agent loop's bodies.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

# ---- scripted responses ------------------------------------------------------------------


@dataclass
class Response:
    """One model turn: content blocks (Messages API dicts), a stop reason and usage."""

    blocks: list[dict[str, Any]]
    stop_reason: str = "end_turn"
    input_tokens: int = 100
    output_tokens: int = 20
    delay_s: float = 0.0          # wait before answering (to keep a turn "running")
    status: int = 200             # non-200: answer with an API error of this status instead
    error_type: str = "api_error"
    error_message: str = "fake error"


_ids = itertools.count(1)


def _tool_id() -> str:
    return f"toolu_fake{next(_ids):04d}{uuid.uuid4().hex[:8]}"


def text(content: str, **kw: Any) -> Response:
    return Response([{"type": "text", "text": content}], **kw)


def tool_use(name: str, input: dict[str, Any], *, preface: str | None = None, id: str | None = None,
             **kw: Any) -> Response:
    blocks: list[dict[str, Any]] = []
    if preface:
        blocks.append({"type": "text", "text": preface})
    blocks.append({"type": "tool_use", "id": id or _tool_id(), "name": name, "input": input})
    kw.setdefault("stop_reason", "tool_use")
    return Response(blocks, **kw)


def bash(command: str, description: str = "Run a command", **kw: Any) -> Response:
    return tool_use("Bash", {"command": command, "description": description}, **kw)


def ask(questions: list[dict[str, Any]], **kw: Any) -> Response:
    """AskUserQuestion; each question: {question, header, options: [{label, description}], multiSelect}."""
    return tool_use("AskUserQuestion", {"questions": questions}, **kw)


def question(text_: str, labels: list[str], *, header: str = "Choice", multi: bool = False) -> dict[str, Any]:
    return {"question": text_, "header": header, "multiSelect": multi,
            "options": [{"label": label, "description": f"Use {label}"} for label in labels]}


def api_error(status: int = 500, error_type: str = "api_error", message: str = "fake error") -> Response:
    return Response([], status=status, error_type=error_type, error_message=message)


# ---- reading what the model received -----------------------------------------------------


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every tool_result block in a request's messages."""
    found = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            found.extend(b for b in content if isinstance(b, dict) and b.get("type") == "tool_result")
    return found


def block_text(block: dict[str, Any]) -> str:
    """The text of a tool_result (string or list of text blocks)."""
    content = block.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def all_text(body: dict[str, Any]) -> str:
    """Everything the model was shown in the messages (texts, tool inputs and results), as one string."""
    return json.dumps(body.get("messages", []), ensure_ascii=False)


# ---- the server --------------------------------------------------------------------------


@dataclass
class Recorded:
    path: str
    query: dict[str, str]
    body: dict[str, Any]
    main: bool
    at: float = field(default_factory=time.monotonic)


class FakeAnthropic:
    def __init__(self, *, default_text: str = "All done.", host: str = "127.0.0.1"):
        self.default_text = default_text
        self.host = host
        self.port = 0
        self.requests: list[Recorded] = []
        self._script: deque[Response | Callable[[dict[str, Any]], Response]] = deque()
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()

    # -- lifecycle --

    async def start(self) -> "FakeAnthropic":
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_route("*", "/{tail:.*}", self._other)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeAnthropic":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def cli_env(self, home: Path | str | None = None) -> dict[str, str]:
        """The environment that points the Claude Code CLI at this fake, offline."""
        env = {
            "ANTHROPIC_BASE_URL": self.url,
            "ANTHROPIC_API_KEY": "sk-ant-fake-key",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }
        if home is not None:
            Path(home).mkdir(parents=True, exist_ok=True)
            env["HOME"] = str(home)
        return env

    # -- scripting --

    def script(self, *responses: Response | Callable[[dict[str, Any]], Response]) -> None:
        """Queue responses for the agent loop's next requests (a callable gets the request body)."""
        self._script.extend(responses)

    @property
    def pending(self) -> int:
        return len(self._script)

    @property
    def main_requests(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.main]

    async def wait_requests(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait until the agent loop has sent at least `count` requests."""
        await self.wait_for(lambda: len(self.main_requests) >= count, timeout, f"{count} model requests")
        return self.main_requests

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"fake Anthropic API: timed out waiting for {what}; "
                                     f"{len(self.main_requests)} agent-loop requests so far")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))
            except TimeoutError:
                pass

    # -- handlers --

    async def _other(self, request: web.Request) -> web.Response:
        self._record(request, {}, main=False)
        return web.json_response({"type": "error", "error": {"type": "not_found_error", "message": "not faked"}},
                                 status=404)

    async def _count_tokens(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        self._record(request, body, main=False)
        return web.json_response({"input_tokens": max(1, len(json.dumps(body)) // 4)})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await self._json(request)
        main = bool(body.get("tools"))
        self._record(request, body, main=main)
        if main and self._script:
            item = self._script.popleft()
            response = item(body) if callable(item) else item
        elif main:
            response = text(self.default_text)
        else:
            response = text("Fake title", input_tokens=10, output_tokens=3)
        if response.delay_s:
            await asyncio.sleep(response.delay_s)
        if response.status != 200:
            return web.json_response(
                {"type": "error", "error": {"type": response.error_type, "message": response.error_message}},
                status=response.status)
        model = str(body.get("model") or "claude-sonnet-4-5")
        if body.get("stream"):
            return await self._stream(request, response, model)
        return web.json_response(self._message(response, model, full=True))

    # -- helpers --

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except Exception:  # noqa: BLE001 - record whatever came
            body = {"_raw": (await request.text())[:10_000]}
        return body if isinstance(body, dict) else {"_raw": body}

    def _record(self, request: web.Request, body: dict[str, Any], *, main: bool) -> None:
        self.requests.append(Recorded(request.path, dict(request.query), body, main))
        self._changed.set()

    @staticmethod
    def _message(response: Response, model: str, *, full: bool) -> dict[str, Any]:
        return {
            "id": f"msg_fake{uuid.uuid4().hex[:16]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": response.blocks if full else [],
            "stop_reason": response.stop_reason if full else None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": response.input_tokens,
                "output_tokens": response.output_tokens if full else 1,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }

    async def _stream(self, request: web.Request, response: Response, model: str) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
            "request-id": f"req_fake{uuid.uuid4().hex[:12]}",
        })
        await resp.prepare(request)

        async def send(event: str, data: dict[str, Any]) -> None:
            await resp.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())

        await send("message_start", {"type": "message_start", "message": self._message(response, model, full=False)})
        for index, block in enumerate(response.blocks):
            if block["type"] == "text":
                await send("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": {"type": "text", "text": ""}})
                await send("content_block_delta", {"type": "content_block_delta", "index": index,
                                                   "delta": {"type": "text_delta", "text": block["text"]}})
            elif block["type"] == "tool_use":
                await send("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": {"type": "tool_use", "id": block["id"],
                                                                     "name": block["name"], "input": {}}})
                await send("content_block_delta", {"type": "content_block_delta", "index": index,
                                                   "delta": {"type": "input_json_delta",
                                                             "partial_json": json.dumps(block["input"])}})
            else:
                raise ValueError(f"the fake cannot stream a {block['type']!r} block")
            await send("content_block_stop", {"type": "content_block_stop", "index": index})
        await send("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": response.stop_reason, "stop_sequence": None},
                                     "usage": {"output_tokens": response.output_tokens}})
        await send("message_stop", {"type": "message_stop"})
        await resp.write_eof()
        return resp
