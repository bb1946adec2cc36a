"""The claude-code harness against the real Claude Code CLI (bundled with claude-agent-sdk),
offline: the CLI talks to a scripted fake of the Anthropic Messages API."""
from __future__ import annotations

import asyncio
import json
import os
import uuid

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
from orchestrator.harness.errors import HarnessConfigError
from orchestrator.harness.registry import build_harness
from orchestrator.models import Answer, InterventionKind
from tests.core.helpers import wait_until
from tests.fakes.anthropic_api import (
    FakeAnthropic,
    all_text,
    api_error,
    ask,
    bash,
    block_text,
    question,
    text,
    tool_results,
)
from tests.harness_helpers import CLAUDE_MODEL as MODEL
from tests.harness_helpers import alive, claude_code_options, collect, of, processes_running, processes_with_env

pytest.importorskip("claude_agent_sdk")

# One fake call (100 input, 20 output tokens) at claude-sonnet-4-5 list prices ($3 / $15 per Mtok).
CALL_COST = 100 * 3e-6 + 20 * 15e-6


@pytest.fixture
async def api():
    async with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def workdir(tmp_path):
    path = tmp_path / "work"
    path.mkdir()
    return path


def make_harness(api: FakeAnthropic, tmp_path, **options):
    return build_harness("claude", AgentConfig(**claude_code_options(api, tmp_path / "home", **options)))


def make_spec(workdir, prompt="Do the thing", **kw) -> SessionSpec:
    token = kw.pop("token", uuid.uuid4().hex)
    return SessionSpec(task_id=1, workdir=workdir, prompt=prompt, env={"TASKPIN_ATTEMPT_TOKEN": token}, **kw)


def unexpected(event):
    raise AssertionError(f"unexpected request {event}")


async def run(session, on_request=unexpected, timeout: float = 40.0) -> list:
    """Collect events until Finished/Failed; `on_request(event)` returns the Answer for each request."""
    return await collect(session, on_request, timeout)


def token_processes(token: str) -> list[int]:
    """Live processes whose environment carries this attempt token (the CLI and all it started)."""
    return processes_with_env(f"TASKPIN_ATTEMPT_TOKEN={token}")


# ---- permissions ---------------------------------------------------------------------------


async def test_bash_permission_approved_runs_the_command_and_finishes(api, tmp_path, workdir):
    api.script(bash("echo hi > out.txt", description="Write the greeting"), text("Wrote out.txt."))
    harness = make_harness(api, tmp_path)
    assert harness.check() == []
    session = await harness.start(make_spec(workdir, "Write hi to out.txt"))
    try:
        assert session.pid and os.getpgid(session.pid) == session.pid   # its own process group
        seen = []

        def approve(req: InterventionRequest):
            seen.append(req)
            assert not (workdir / "out.txt").exists()
            return Answer(option_ids=("allow",))

        events = await run(session, approve)
    finally:
        await session.stop()

    [req] = seen
    assert req.kind is InterventionKind.PERMISSION and req.tool == "Bash"
    assert req.detail == "echo hi > out.txt"
    assert "Write the greeting" in req.prompt or "Bash" in req.prompt
    assert [(o.id, o.kind) for o in req.options] == [("allow", "allow"), ("deny", "deny")]
    assert (workdir / "out.txt").read_text() == "hi\n"
    assert isinstance(events[-1], Finished) and events[-1].summary == "Wrote out.txt."
    [sid] = of(events, SessionIdAssigned)
    assert sid.session_id
    assert ToolActivity(tool="Bash", detail="echo hi > out.txt") in events
    assert OutputText("Wrote out.txt.") in events
    [usage] = of(events, Usage)
    assert usage.input_tokens == 200 and usage.output_tokens == 40
    assert usage.cost_usd == pytest.approx(2 * CALL_COST)
    assert api.main_requests[0]["model"] == MODEL
    assert "Write hi to out.txt" in all_text(api.main_requests[0])
    [result] = tool_results(api.main_requests[1])
    assert not result.get("is_error")


async def test_the_cli_gets_the_attempt_token_but_not_taskpins_secrets(api, tmp_path, workdir, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret-value")
    monkeypatch.setenv("TASKPIN_DATABASE_URL", "postgresql://secret")
    api.script(bash("env > env.txt"), text("ok"))
    harness = make_harness(api, tmp_path, env={"EXTRA_FOR_AGENT": "yes"})
    session = await harness.start(make_spec(workdir, token="tok-123"))
    try:
        await run(session, lambda req: Answer(option_ids=("allow",)))
    finally:
        await session.stop()
    env = dict(line.split("=", 1) for line in (workdir / "env.txt").read_text().splitlines() if "=" in line)
    assert env["TASKPIN_ATTEMPT_TOKEN"] == "tok-123"
    assert env["EXTRA_FOR_AGENT"] == "yes"
    assert "SLACK_BOT_TOKEN" not in env and "TASKPIN_DATABASE_URL" not in env     # removed, not blanked
    assert "xoxb-secret-value" not in (workdir / "env.txt").read_text()
    assert "postgresql://secret" not in (workdir / "env.txt").read_text()


async def test_deny_sends_the_owners_text_to_the_model(api, tmp_path, workdir):
    api.script(bash("rm -rf build"), text("OK, I will use make clean instead."))
    session = await make_harness(api, tmp_path).start(make_spec(workdir))
    try:
        events = await run(session, lambda req: Answer(option_ids=("deny",), text="No! Use make clean"))
    finally:
        await session.stop()
    assert isinstance(events[-1], Finished)
    [result] = tool_results(api.main_requests[-1])
    assert result.get("is_error") and "No! Use make clean" in block_text(result)


async def test_deny_without_text_says_the_user_denied(api, tmp_path, workdir):
    api.script(bash("curl example.com"), text("fine"))
    session = await make_harness(api, tmp_path).start(make_spec(workdir))
    try:
        await run(session, lambda req: Answer(option_ids=("deny",)))
    finally:
        await session.stop()
    [result] = tool_results(api.main_requests[-1])
    assert "The user denied this." in block_text(result)


# ---- AskUserQuestion -----------------------------------------------------------------------


async def test_ask_user_question_answered_with_an_option(api, tmp_path, workdir):
    api.script(ask([question("Which greeting should I use?", ["Hi", "Hello"], header="Greeting")]),
               text("Using Hello."))
    session = await make_harness(api, tmp_path).start(make_spec(workdir))
    asked = []

    def choose(req: InterventionRequest):
        asked.append(req)
        return Answer(option_ids=(next(o.id for o in req.options if o.label == "Hello"),))

    try:
        events = await run(session, choose)
    finally:
        await session.stop()
    [req] = asked
    assert req.kind is InterventionKind.QUESTION and not req.multi_select
    assert req.prompt == "Which greeting should I use?" and req.detail == "Greeting"
    assert [o.label for o in req.options] == ["Hi", "Hello"]
    assert isinstance(events[-1], Finished)
    [result] = tool_results(api.main_requests[-1])
    assert '"Which greeting should I use?"="Hello"' in block_text(result)


async def test_several_questions_are_asked_in_turn(api, tmp_path, workdir):
    api.script(ask([question("Which features?", ["Auth", "Search", "Export"], multi=True),
                    question("Which database?", ["SQLite", "PostgreSQL"])]),
               text("Noted."))
    session = await make_harness(api, tmp_path).start(make_spec(workdir))
    asked = []

    def answer(req: InterventionRequest):
        asked.append(req)
        if len(asked) == 1:
            ids = tuple(o.id for o in req.options if o.label in ("Auth", "Export"))
            return Answer(option_ids=ids)
        return Answer(text="DuckDB, please")     # a thread reply: free text

    try:
        await run(session, answer)
    finally:
        await session.stop()
    assert [r.multi_select for r in asked] == [True, False]
    assert asked[0].prompt.startswith("(1/2)") and asked[1].prompt.startswith("(2/2)")
    assert len({r.request_id for r in asked}) == 2
    [result] = tool_results(api.main_requests[-1])
    assert '"Which features?"="Auth, Export"' in block_text(result)
    assert '"Which database?"="DuckDB, please"' in block_text(result)


# ---- interrupt, stop -----------------------------------------------------------------------


async def _start_long_command(api, tmp_path, workdir):
    marker = f"longcmd-{uuid.uuid4().hex[:8]}"
    api.script(bash(f"python3 -c 'import time; time.sleep(30)' {marker}"), text("never reached"))
    token = uuid.uuid4().hex
    session = await make_harness(api, tmp_path).start(make_spec(workdir, token=token))
    events = []

    async def consume():
        async for event in session.events():
            events.append(event)
            if isinstance(event, InterventionRequest):
                await session.answer(event.request_id, Answer(option_ids=("allow",)), event)

    consumer = asyncio.create_task(consume())
    await wait_until(lambda: processes_running(marker), timeout=20, what="the long command to run")
    return session, consumer, events, marker, token


async def test_interrupt_while_a_long_command_runs(api, tmp_path, workdir):
    session, consumer, events, marker, token = await _start_long_command(api, tmp_path, workdir)
    try:
        await session.interrupt()
        await asyncio.wait_for(consumer, 15)
        assert isinstance(events[-1], Failed) and not events[-1].retryable
        assert "interrupt" in events[-1].error
        # The tool dies with the turn (the CLI reaps it a moment after reporting the interrupt).
        await wait_until(lambda: not processes_running(marker), 3, "the tool killed with the turn")
    finally:
        await session.stop()
    await wait_until(lambda: not token_processes(token), 5, "no process of the attempt")
    assert not processes_running(marker)


async def test_stop_while_a_long_command_runs_leaves_nothing_behind(api, tmp_path, workdir):
    session, consumer, events, marker, token = await _start_long_command(api, tmp_path, workdir)
    cli = session.pid
    assert token_processes(token)
    await session.stop()
    await asyncio.wait_for(consumer, 5)
    assert isinstance(events[-1], Failed) and not events[-1].retryable
    await wait_until(lambda: not token_processes(token), 5, "no process of the attempt")
    assert not processes_running(marker)
    assert not alive(cli)
    await session.stop()   # twice is fine


# ---- follow-ups and resume -----------------------------------------------------------------


async def test_a_follow_up_sent_while_running_is_answered_before_finishing(api, tmp_path, workdir):
    api.script(bash("echo one > one.txt"), text("first part done"), text("second part done"))
    session = await make_harness(api, tmp_path).start(make_spec(workdir, "Part one"))
    assert session.supports_follow_up

    async def approve_after_follow_up(req):
        await session.send("Also add a README, FOLLOWUP-42")
        return Answer(option_ids=("allow",))

    try:
        events = await run(session, approve_after_follow_up)
    finally:
        await session.stop()
    assert isinstance(events[-1], Finished)
    assert any("FOLLOWUP-42" in all_text(body) for body in api.main_requests)
    assert (workdir / "one.txt").exists()
    assert len(of(events, Finished)) == 1


async def test_send_after_finished_starts_a_new_turn(api, tmp_path, workdir):
    api.script(text("turn one"), text("turn two"))
    session = await make_harness(api, tmp_path).start(make_spec(workdir, "First"))
    try:
        first = await run(session)
        await session.send("Second, SECOND-77")
        second = await run(session)
    finally:
        await session.stop()
    assert first[-1] == Finished("turn one") and second[-1] == Finished("turn two")
    assert "SECOND-77" in all_text(api.main_requests[-1]) and "turn one" in all_text(api.main_requests[-1])
    [u1], [u2] = of(first, Usage), of(second, Usage)
    assert u1.cost_usd == pytest.approx(CALL_COST) and u2.cost_usd == pytest.approx(CALL_COST)


async def test_resume_continues_the_stored_session_with_its_history(api, tmp_path, workdir):
    api.script(text("First answer, HISTORY-1"))
    harness = make_harness(api, tmp_path)
    session = await harness.start(make_spec(workdir, "Original task ORIGINAL-9"))
    try:
        events = await run(session)
    finally:
        await session.stop()
    [sid] = of(events, SessionIdAssigned)
    assert isinstance(events[-1], Finished)
    before = len(api.main_requests)

    api.script(text("Resumed and finished."))
    assert harness.supports_resume
    resumed = await harness.resume(make_spec(workdir, "taskpin was restarted. Continue.",
                                             resume_session_id=sid.session_id))
    try:
        events2 = await run(resumed)
    finally:
        await resumed.stop()
    assert isinstance(events2[-1], Finished) and events2[-1].summary == "Resumed and finished."
    body = api.main_requests[before]
    history = all_text(body)
    assert "ORIGINAL-9" in history and "HISTORY-1" in history and "taskpin was restarted" in history
    assert body["messages"][0]["role"] == "user" and len(body["messages"]) >= 3
    [usage] = of(events2, Usage)
    assert usage.cost_usd == pytest.approx(CALL_COST)        # only the new turn, not the whole session


# ---- failures, configuration ---------------------------------------------------------------


async def test_an_invalid_request_is_a_final_failure(api, tmp_path, workdir):
    api.script(api_error(400, "invalid_request_error", "prompt is too long"))
    session = await make_harness(api, tmp_path).start(make_spec(workdir))
    try:
        events = await run(session)
    finally:
        await session.stop()
    assert isinstance(events[-1], Failed) and not events[-1].retryable
    assert "400" in events[-1].error or "prompt is too long" in events[-1].error


def test_options_are_validated(tmp_path):
    def build(**options):
        return build_harness("claude", AgentConfig(kind="claude-code", **options))

    with pytest.raises(HarnessConfigError, match="permission_mode"):
        build(permission_mode="yolo")
    with pytest.raises(HarnessConfigError, match="max_turns"):
        build(max_turns=0)
    with pytest.raises(HarnessConfigError, match="max_budget_usd"):
        build(max_budget_usd="lots")
    with pytest.raises(HarnessConfigError, match="unknown option"):
        build(modle="claude-sonnet-4-5")
    with pytest.raises(HarnessConfigError, match="env"):
        build(env=["A=1"])
    harness = build(allowed_tools="Read, Grep", disallowed_tools=["WebFetch"], max_turns=5, max_budget_usd=2)
    assert harness.allowed_tools == ["Read", "Grep"] and harness.max_budget_usd == 2.0
    assert harness.check() == []
    assert build(cli_path=str(tmp_path / "nope")).check()
    assert build(settings=str(tmp_path / "missing.json")).check()
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"permissions": {"deny": ["WebFetch"]}}))
    assert build(settings=str(settings)).check() == []
