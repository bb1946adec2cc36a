"""A scripted fake of the OpenAI Responses API, enough for the real Codex CLI to run offline.

The Codex CLI only calls ``POST {base_url}/responses`` (streaming SSE) when its model provider
points here (``wire_api = "responses"``). Each request is answered with the next scripted
reply; a reply is a list of steps:

    {"exec": "echo hi > out.txt"}          a call of the model's shell tool (exec_command...)
    {"exec": "sleep 30", "yield_ms": 30000}
    {"say": "Done: wrote out.txt"}         an assistant message (streamed as deltas)
    {"usage": [input_tokens, output_tokens]}
    {"error": 500}                          an HTTP error instead of a stream
    {"stall": 5.0}                          wait this long before answering

When the script runs out, the fake answers with a final message ``DEFAULT_FINAL``. Every
request body is logged (``.requests``) so a test can assert what the model was shown, e.g.
the output of a declined call or a follow-up message.

    async with FakeResponses([[{"exec": "touch a"}], [{"say": "done"}]]) as api:
        api.write_codex_home(tmp_path / "codex-home")
"""
from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aiohttp import web

DEFAULT_FINAL = "All done."
PROVIDER = "taskpin_fake"
ENV_KEY = "TASKPIN_FAKE_OPENAI_KEY"
MODEL = "fake-codex-model"

Reply = list[dict[str, Any]]


class FakeResponses:
    def __init__(self, script: Iterable[Reply] | Callable[[dict, int], Reply] = (), *,
                 default_usage: tuple[int, int] = (100, 20)):
        self._script: list[Reply] = [] if callable(script) else [list(r) for r in script]
        self._responder = script if callable(script) else None
        self.default_usage = default_usage
        self.requests: list[dict[str, Any]] = []      # every request body, in order
        self.headers: list[dict[str, str]] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.request_seen = asyncio.Event()

    # -- scripting --

    def add(self, *replies: Reply) -> None:
        self._script.extend(list(r) for r in replies)

    @property
    def base_url(self) -> str:
        assert self.port, "the fake API is not started"
        return f"http://127.0.0.1:{self.port}/v1"

    def config_toml(self, *, model: str = MODEL) -> str:
        return (
            f'model = "{model}"\n'
            f'model_provider = "{PROVIDER}"\n'
            "\n"
            f"[model_providers.{PROVIDER}]\n"
            'name = "taskpin fake"\n'
            f'base_url = "{self.base_url}"\n'
            f'env_key = "{ENV_KEY}"\n'
            'wire_api = "responses"\n'
            "request_max_retries = 0\n"     # a test failure should show at once, not after backoff
            "stream_max_retries = 0\n"
            "stream_idle_timeout_ms = 60000\n"
        )

    def write_codex_home(self, path: Path, *, model: str = MODEL) -> Path:
        """A throwaway CODEX_HOME whose config.toml points Codex at this fake."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.toml").write_text(self.config_toml(model=model))
        return path

    @staticmethod
    def env() -> dict[str, str]:
        """What the Codex process needs in its environment to use the fake provider."""
        return {ENV_KEY: "sk-fake", "RUST_LOG": "warn", "NO_COLOR": "1"}

    # -- inspecting what the model received --

    @staticmethod
    def inputs(body: dict) -> list[dict]:
        return [i for i in body.get("input") or [] if isinstance(i, dict)]

    def function_outputs(self, body: dict | None = None) -> list[str]:
        """The outputs of tool calls shown to the model (in the last request by default)."""
        body = body if body is not None else (self.requests[-1] if self.requests else {})
        out = []
        for item in self.inputs(body):
            if item.get("type") in ("function_call_output", "custom_tool_call_output"):
                value = item.get("output")
                out.append(value if isinstance(value, str) else json.dumps(value))
        return out

    def user_texts(self, body: dict | None = None) -> list[str]:
        body = body if body is not None else (self.requests[-1] if self.requests else {})
        texts = []
        for item in self.inputs(body):
            if item.get("type") == "message" and item.get("role") == "user":
                for part in item.get("content") or []:
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        texts.append(part["text"])
        return texts

    def all_text(self) -> str:
        """Every request body as JSON text, for 'did the model ever see X' assertions."""
        return "\n".join(json.dumps(b, ensure_ascii=False) for b in self.requests)

    # -- the server --

    async def __aenter__(self) -> "FakeResponses":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_route("*", "/{tail:.*}", self._other)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _other(self, request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": f"not faked: {request.method} {request.path}"}},
                                 status=404)

    def _next_reply(self, body: dict) -> Reply:
        index = len(self.requests) - 1
        if self._responder is not None:
            return list(self._responder(body, index))
        if self._script:
            return self._script.pop(0)
        return [{"say": DEFAULT_FINAL}]

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self.request_seen.set()
        reply = self._next_reply(body)
        tools = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}

        for step in reply:
            if "stall" in step:
                await asyncio.sleep(float(step["stall"]))
            if "error" in step:
                return web.json_response({"error": {"message": "scripted failure", "type": "server_error"}},
                                         status=int(step["error"]))

        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        rid = f"resp_{next(self._ids)}"
        await self._send(resp, {"type": "response.created", "response": {"id": rid}})
        usage = self.default_usage
        for index, step in enumerate(reply):
            if "exec" in step:
                await self._send_call(resp, index, step, tools)
            if "say" in step:
                await self._send_message(resp, index, str(step["say"]))
            if "usage" in step:
                usage = tuple(step["usage"])  # type: ignore[assignment]
        await self._send(resp, {"type": "response.completed", "response": {
            "id": rid,
            "usage": {
                "input_tokens": usage[0],
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": usage[1],
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": usage[0] + usage[1],
            },
        }})
        await resp.write_eof()
        return resp

    async def _send(self, resp: web.StreamResponse, event: dict) -> None:
        data = json.dumps(event, ensure_ascii=False)
        await resp.write(f"event: {event['type']}\ndata: {data}\n\n".encode())

    async def _send_call(self, resp: web.StreamResponse, index: int, step: dict, tools: set) -> None:
        """A call of whichever shell tool this Codex version offers the model."""
        cmd = str(step["exec"])
        n = next(self._ids)
        call_id = step.get("call_id") or f"call_{n}"
        if "exec_command" in tools or not tools & {"shell", "shell_command"}:
            name = "exec_command"
            args: dict[str, Any] = {"cmd": cmd, "yield_time_ms": int(step.get("yield_ms", 10_000))}
            if step.get("escalate"):
                args["sandbox_permissions"] = "require_escalated"
                args["justification"] = step.get("justification", "needs to run outside the sandbox")
        elif "shell_command" in tools:
            name, args = "shell_command", {"command": cmd}
        else:
            name, args = "shell", {"command": ["bash", "-lc", cmd]}
        item = {"type": "function_call", "id": f"fc_{n}", "call_id": call_id, "name": name,
                "arguments": json.dumps(args), "status": "completed"}
        await self._send(resp, {"type": "response.output_item.added", "output_index": index,
                                "item": {**item, "arguments": "", "status": "in_progress"}})
        await self._send(resp, {"type": "response.output_item.done", "output_index": index, "item": item})

    async def _send_message(self, resp: web.StreamResponse, index: int, text: str) -> None:
        mid = f"msg_{next(self._ids)}"
        await self._send(resp, {"type": "response.output_item.added", "output_index": index, "item": {
            "type": "message", "id": mid, "role": "assistant", "status": "in_progress", "content": []}})
        # Two deltas, so consumers have something to coalesce.
        half = max(1, len(text) // 2)
        for piece in (text[:half], text[half:]):
            if piece:
                await self._send(resp, {"type": "response.output_text.delta", "item_id": mid,
                                        "output_index": index, "content_index": 0, "delta": piece})
        await self._send(resp, {"type": "response.output_item.done", "output_index": index, "item": {
            "type": "message", "id": mid, "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}})
