"""The codex harness against the real Codex CLI (`codex app-server`) and a fake Responses API."""
from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from orchestrator.config import AgentConfig
from orchestrator.harness.base import (
    Failed,
    Finished,
    InterventionRequest,
    OutputText,
    SessionIdAssigned,
    SessionSpec,
    ToolActivity,
    Usage,
)
from orchestrator.harness.codex import CodexHarness, CodexSession
from orchestrator.harness.errors import HarnessConfigError
from orchestrator.harness.process import descendants, proc_table
from orchestrator.harness.registry import build_harness
from orchestrator.models import Answer, InterventionKind
from tests.agents.clis import require_cli
from tests.fakes.openai_responses import FakeResponses
from tests.harness_helpers import cmdline, codex_options


@pytest.fixture
def codex_bin() -> str:
    return require_cli("codex", "npm install @openai/codex")


@pytest.fixture
async def api():
    async with FakeResponses() as fake:
        yield fake


@pytest.fixture
def workdir(tmp_path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def make_harness(codex_bin: str, api: FakeResponses, tmp_path: Path, **options) -> CodexHarness:
    return build_harness("codex", AgentConfig(**codex_options(codex_bin, api, tmp_path, **options)))


def spec(workdir: Path, prompt: str = "Write out.txt", **kw) -> SessionSpec:
    return SessionSpec(task_id=1, workdir=workdir, prompt=prompt, log_path=workdir.parent / "agent.log", **kw)


async def next_event(session: CodexSession, events, kinds, timeout: float = 20.0, seen: list | None = None):
    """Events until one of `kinds` (returned); the rest are appended to `seen`."""
    async def pull():
        async for event in events:
            if seen is not None:
                seen.append(event)
            if isinstance(event, kinds):
                return event
        raise AssertionError(f"the session ended before a {kinds}")
    return await asyncio.wait_for(pull(), timeout)


def leftovers(tree: set[int], sessions: set[int]) -> list[str]:
    """Live processes of the app-server's tree, or of the sessions its commands ran in."""
    table = proc_table()
    return [f"{p} {cmdline(p)}" for p, (_pp, _pg, state, sid) in table.items()
            if state != b"Z" and p != os.getpid() and (p in tree or sid in sessions)]


# ---- options -----------------------------------------------------------------------------

def test_options_are_validated(tmp_path):
    assert CodexHarness({}).command == ["codex", "app-server"]
    with pytest.raises(HarnessConfigError, match="shell string"):
        CodexHarness({"command": "codex app-server"})
    with pytest.raises(HarnessConfigError, match="approval_policy"):
        CodexHarness({"approval_policy": "on-failure"})
    with pytest.raises(HarnessConfigError, match="sandbox"):
        CodexHarness({"sandbox": "yolo"})
    with pytest.raises(HarnessConfigError, match="unknown option"):
        CodexHarness({"modle": "x"})
    with pytest.raises(HarnessConfigError, match="agent 'cx'"):
        build_harness("cx", AgentConfig(kind="codex", stop_grace_s=-1))
    harness = CodexHarness({"approval_policy": {"granular": {"sandbox_approval": True}}, "model": "m"})
    assert harness.supports_resume
    assert harness.thread_params(spec(tmp_path))["approvalPolicy"] == {"granular": {"sandbox_approval": True}}


def test_check_finds_the_executable(codex_bin, tmp_path):
    assert CodexHarness({"command": [codex_bin, "app-server"]}).check() == []
    assert "not found on PATH" in CodexHarness({"command": ["no-such-codex-xyz", "app-server"]}).check()[0]
    assert "does not exist" in CodexHarness({"command": [str(tmp_path / "nope"), "app-server"]}).check()[0]


# ---- against the real CLI ------------------------------------------------------------------

async def test_approved_command_runs_and_the_turn_finishes(codex_bin, api, tmp_path, workdir):
    api.add([{"say": "I will write it."}, {"exec": "printf hi > out.txt"}], [{"say": "Wrote out.txt"}])
    session = await make_harness(codex_bin, api, tmp_path).start(spec(workdir))
    events, seen = session.events(), []
    try:
        request = await next_event(session, events, InterventionRequest, seen=seen)
        assert request.kind is InterventionKind.PERMISSION
        assert "printf hi > out.txt" in request.detail
        assert [o.id for o in request.options] == ["accept", "acceptForSession", "decline"]
        assert [o.kind for o in request.options] == ["allow", "allow", "deny"]
        assert not (workdir / "out.txt").exists()
        await session.answer(request.request_id, Answer(option_ids=("accept",)), request)
        end = await next_event(session, events, (Finished, Failed), seen=seen)
    finally:
        await session.stop()
    assert end == Finished(summary="Wrote out.txt")
    assert (workdir / "out.txt").read_text() == "hi"

    assert isinstance(seen[0], SessionIdAssigned) and seen[0].session_id == session.thread_id
    assert any(isinstance(e, ToolActivity) and "printf hi" in e.detail for e in seen)
    # Deltas are coalesced per message: one OutputText each.
    assert [e.text for e in seen if isinstance(e, OutputText)] == ["I will write it.", "Wrote out.txt"]
    usage = [e for e in seen if isinstance(e, Usage)]
    assert sum(u.input_tokens for u in usage) == 200 and sum(u.output_tokens for u in usage) == 40
    assert len(api.requests) == 2
    assert "Process exited with code 0" in api.function_outputs()[0]
    assert session.returncode is not None


async def test_declined_command_does_not_run_and_the_reason_reaches_the_model(codex_bin, api, tmp_path, workdir):
    api.add([{"exec": "printf hi > out.txt"}], [{"say": "OK, I will not."}])
    session = await make_harness(codex_bin, api, tmp_path).start(spec(workdir))
    events = session.events()
    try:
        request = await next_event(session, events, InterventionRequest)
        await session.answer(request.request_id, Answer(option_ids=("decline",), text="name it greeting.txt"), request)
        end = await next_event(session, events, (Finished, Failed))
    finally:
        await session.stop()
    assert isinstance(end, Finished)
    assert not (workdir / "out.txt").exists()
    # The model was told the call was rejected, then got the owner's reason as a user message.
    assert "rejected by user" in api.function_outputs(api.requests[1])[0]
    assert any("name it greeting.txt" in t for body in api.requests[1:] for t in api.user_texts(body))


async def test_usage_is_reported_as_deltas(codex_bin, api, tmp_path, workdir):
    api.add([{"say": "hello", "usage": [1234, 56]}])
    session = await make_harness(codex_bin, api, tmp_path).start(spec(workdir, "say hello"))
    seen: list = []
    try:
        end = await next_event(session, session.events(), (Finished, Failed), seen=seen)
    finally:
        await session.stop()
    assert end == Finished(summary="hello")
    assert [e for e in seen if isinstance(e, Usage)] == [Usage(input_tokens=1234, output_tokens=56)]


async def test_interrupt_during_a_long_command_leaves_no_process(codex_bin, api, tmp_path, workdir):
    api.add([{"exec": "sleep 30", "yield_ms": 30000}])
    harness = make_harness(codex_bin, api, tmp_path, approval_policy="never")
    session = await harness.start(spec(workdir, "sleep"))
    events = session.events()
    tree: set[int] = set()
    sessions: set[int] = set()
    try:
        await next_event(session, events, ToolActivity)
        for _ in range(100):   # until the sleep is running
            table = proc_table()
            tree = descendants(session.pid, table) | {session.pid}
            sessions = {table[p][3] for p in tree if p in table} - {os.getsid(0)}
            if any(cmdline(p).startswith("sleep") for p in tree):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("sleep 30 never started")
        await session.interrupt()
        end = await next_event(session, events, (Finished, Failed), timeout=10)
    finally:
        await session.stop()
    assert isinstance(end, Failed) and not end.retryable and "interrupted" in end.error
    assert leftovers(tree, sessions) == []
    assert session.returncode is not None
    await session.stop()   # twice is fine


async def test_steered_follow_up_reaches_the_running_turn(codex_bin, api, tmp_path, workdir):
    api.add([{"exec": "printf a > a.txt"}], [{"say": "done with a"}], [{"say": "done with b too"}])
    session = await make_harness(codex_bin, api, tmp_path).start(spec(workdir))
    events = session.events()
    try:
        request = await next_event(session, events, InterventionRequest)
        assert session.supports_follow_up
        await session.send("please also mention b")
        await session.answer(request.request_id, Answer(option_ids=("accept",)), request)
        end = await next_event(session, events, (Finished, Failed))
    finally:
        await session.stop()
    assert isinstance(end, Finished)
    assert any("please also mention b" in t for body in api.requests[1:] for t in api.user_texts(body))
    assert len(_turn_ids(api)) == 1      # steered into the same turn
    assert (workdir / "a.txt").exists()


async def test_follow_up_after_the_turn_starts_a_new_turn(codex_bin, api, tmp_path, workdir):
    # A turn that refuses steering (here: the message arrives as the turn ends) is followed by a
    # new turn on the same thread; forcing the queue path directly keeps the test deterministic.
    api.add([{"say": "first"}], [{"say": "second"}])
    session = await make_harness(codex_bin, api, tmp_path).start(spec(workdir, "one"))
    session._queued.append("two")          # as if turn/steer had been refused
    seen: list = []
    try:
        end = await next_event(session, session.events(), (Finished, Failed), seen=seen)
    finally:
        await session.stop()
    assert end == Finished(summary="second")
    assert len(_turn_ids(api)) == 2
    assert api.user_texts(api.requests[1])[-1] == "two"
    assert [e.text for e in seen if isinstance(e, OutputText)] == ["first", "second"]


async def test_resume_continues_the_thread(codex_bin, api, tmp_path, workdir):
    api.add([{"say": "first answer"}], [{"say": "resumed answer"}])
    harness = make_harness(codex_bin, api, tmp_path)
    session = await harness.start(spec(workdir, "remember the word PELICAN"))
    try:
        assert isinstance(await next_event(session, session.events(), (Finished, Failed)), Finished)
    finally:
        await session.stop()
    thread_id = session.thread_id

    seen: list = []
    resumed = await harness.resume(spec(workdir, "what was the word?", resume_session_id=thread_id))
    try:
        end = await next_event(resumed, resumed.events(), (Finished, Failed), seen=seen)
    finally:
        await resumed.stop()
    assert end == Finished(summary="resumed answer")
    assert seen[0] == SessionIdAssigned(thread_id)
    texts = api.user_texts(api.requests[-1])
    assert any("PELICAN" in t for t in texts) and texts[-1] == "what was the word?"
    assert "first answer" in str(api.requests[-1]["input"])
    # Only this session's tokens, not the resumed history's.
    assert [e for e in seen if isinstance(e, Usage)] == [Usage(input_tokens=100, output_tokens=20)]


async def test_app_server_crash_is_a_retryable_failure(codex_bin, api, tmp_path, workdir):
    api.add([{"exec": "printf hi > out.txt"}])
    session = await make_harness(codex_bin, api, tmp_path).start(spec(workdir))
    events = session.events()
    try:
        await next_event(session, events, InterventionRequest)
        os.killpg(session.pid, signal.SIGKILL)
        end = await next_event(session, events, (Finished, Failed), timeout=10)
    finally:
        await session.stop()
    assert isinstance(end, Failed) and end.retryable
    assert "SIGKILL" in end.error


async def test_a_failed_turn_is_reported(codex_bin, api, tmp_path, workdir):
    api.add([{"error": 401}])      # the provider refuses the key: another attempt would not help
    session = await make_harness(codex_bin, api, tmp_path).start(spec(workdir))
    try:
        end = await next_event(session, session.events(), (Finished, Failed))
    finally:
        await session.stop()
    assert isinstance(end, Failed) and not end.retryable
    assert "401" in end.error


# ---- helpers -------------------------------------------------------------------------------

def _turn_ids(api: FakeResponses) -> set[str]:
    import json
    ids = set()
    for headers in api.headers:
        meta = headers.get("x-codex-turn-metadata") or headers.get("X-Codex-Turn-Metadata")
        if meta:
            ids.add(json.loads(meta)["turn_id"])
    return ids
