"""The `acp` harness against a real ACP agent process (tests/agents/acp_agent.py)."""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from orchestrator.config import AgentConfig
from orchestrator.harness import (
    AgentSession,
    Failed,
    Finished,
    Harness,
    HarnessConfigError,
    HarnessError,
    InterventionRequest,
    OutputText,
    SessionIdAssigned,
    SessionSpec,
    ToolActivity,
    Usage,
    build_harness,
)
from orchestrator.harness.acp import AcpHarness, AcpSession
from orchestrator.models import Answer, InterventionKind, Option
from tests.harness_helpers import ACP_AGENT, WRITE_ASK, acp_agent_env, alive, collect, of
from tests.harness_helpers import acp_agent_log as agent_log

pytestmark = pytest.mark.timeout(30)


def make_harness(**options) -> AcpHarness:
    options.setdefault("stop_grace_s", 1.0)
    return AcpHarness(AgentConfig(kind="acp", command=[sys.executable, str(ACP_AGENT)], **options))


def make_spec(tmp_path: Path, steps: list | None = None, *, next_steps: list | None = None,
              prompt: str = "write a greeting", env: dict | None = None, **kw) -> SessionSpec:
    full_env = {**acp_agent_env(tmp_path, steps, next_steps), **(env or {})}
    workdir = tmp_path / "wt"
    workdir.mkdir(exist_ok=True)
    return SessionSpec(task_id=3, workdir=workdir, prompt=prompt, env=full_env, **kw)


def answering(answer: Answer):
    """An on_request for collect(): every request gets `answer`."""
    return lambda event: answer


# ---- configuration ------------------------------------------------------------------------

def test_registry_builds_the_acp_harness():
    harness = build_harness("claude", AgentConfig(kind="acp", command=["claude-agent-acp"], mode="default"))
    assert isinstance(harness, AcpHarness) and isinstance(harness, Harness)
    assert harness.kind == "acp" and harness.mode == "default" and harness.supports_resume


@pytest.mark.parametrize("options, message", [
    ({"command": "npx claude-agent-acp"}, "list of arguments"),
    ({"command": [1, 2]}, "list of strings"),
    ({"command": ["x"], "mode": 3}, "mode"),
    ({"command": ["x"], "env": ["A=1"]}, "env"),
    ({"command": ["x"], "follow_up": "yes"}, "follow_up"),
    ({"command": ["x"], "stop_grace_s": -1}, "stop_grace_s"),
])
def test_bad_options_are_config_errors(options, message):
    with pytest.raises(HarnessConfigError, match=message):
        build_harness("a", AgentConfig(kind="acp", **options))


def test_check_reports_a_missing_command_or_executable(tmp_path):
    def problems(options):
        return " ".join(AcpHarness(options).check())
    assert "command is not set" in problems({})
    assert "was not found on PATH" in problems({"command": ["no-such-acp-agent-xyz"]})
    assert "does not exist" in problems({"command": [str(tmp_path / "nope")]})
    assert make_harness().check() == []


# ---- a turn -------------------------------------------------------------------------------

async def test_allowed_permission_writes_the_file_and_maps_everything(tmp_path):
    steps = [
        {"say": "Let me look around.\nI will write the greeting file now, with care and attention."},
        {"usage": {"used": 10, "cost": 0.01}},
        WRITE_ASK,
        {"usage": {"used": 20, "cost": 0.035}},
        {"turn_usage": {"input": 1200, "output": 300}},
        {"say": "Wrote greeting.txt with a friendly hello."},
    ]
    harness = make_harness(mode="default")
    spec = make_spec(tmp_path, steps)
    session = await harness.start(spec)
    assert isinstance(session, AcpSession) and isinstance(session, AgentSession)
    assert session.pid and session.supports_follow_up
    try:
        events = await collect(session, answering(Answer(option_ids=("allow-once",))))
    finally:
        await session.stop()

    assert (spec.workdir / "greeting.txt").read_text() == "hello\n"
    assert isinstance(events[0], SessionIdAssigned) and events[0].session_id.startswith("sess-")
    assert events[-1] == Finished(summary="Wrote greeting.txt with a friendly hello.")

    # Output is coalesced into lines, not one event per 4-character chunk.
    texts = [e.text for e in of(events, OutputText)]
    assert texts[0] == "Let me look around."
    assert "I will write the greeting file now, with care and attention." in texts
    assert len(texts) <= 5, texts

    [request] = of(events, InterventionRequest)
    assert request.kind is InterventionKind.PERMISSION
    assert request.options == (
        Option(id="allow-once", label="Allow once", kind="allow"),
        Option(id="allow-always", label="Always allow", kind="allow"),
        Option(id="reject-once", label="Reject", kind="deny"),
        Option(id="reject-always", label="Always reject", kind="deny"),
    )
    assert request.tool == "edit" and request.detail == "greeting.txt"
    assert "Write greeting.txt" in request.prompt

    activity = of(events, ToolActivity)
    assert ToolActivity(tool="edit", detail="Write greeting.txt") in activity
    assert ToolActivity(tool="edit", detail="Write greeting.txt (completed)") in activity
    # Order: the text before the request, the request before the completion.
    assert events.index(request) < events.index(ToolActivity(tool="edit", detail="Write greeting.txt (completed)"))

    usage = of(events, Usage)
    assert sum(u.cost_usd for u in usage) == pytest.approx(0.035)   # cumulative cost -> deltas
    assert sum(u.input_tokens for u in usage) == 1200 and sum(u.output_tokens for u in usage) == 300

    [init] = agent_log(tmp_path, "initialize")
    assert init["client_capabilities"]["fs"] == {"readTextFile": True, "writeTextFile": True}
    assert init["client_capabilities"]["terminal"] is False
    [new] = agent_log(tmp_path, "new_session")
    assert new["cwd"] == str(spec.workdir) and new["mcp_servers"] == 0
    assert [e["mode"] for e in agent_log(tmp_path, "set_mode")] == ["default"]
    assert [e["text"] for e in agent_log(tmp_path, "prompt")] == ["write a greeting"]
    assert [(e["option_id"], e["kind"]) for e in agent_log(tmp_path, "permission")] == [("allow-once", "allow_once")]
    assert not alive(session.pid)


async def test_rejected_permission_writes_nothing(tmp_path):
    harness = make_harness()
    spec = make_spec(tmp_path, [WRITE_ASK])
    session = await harness.start(spec)
    try:
        events = await collect(session, answering(Answer(option_ids=("reject-once",))))
    finally:
        await session.stop()
    assert not (spec.workdir / "greeting.txt").exists()
    assert ToolActivity(tool="edit", detail="Write greeting.txt (failed)") in events
    assert events[-1] == Finished(summary="not allowed")
    assert [e["kind"] for e in agent_log(tmp_path, "permission")] == ["reject_once"]
    assert agent_log(tmp_path, "set_mode") == []       # no mode configured: none set
    assert len(agent_log(tmp_path, "prompt")) == 1     # a plain deny sends nothing more


async def test_a_thread_reply_deny_rejects_and_sends_the_text_as_the_next_prompt(tmp_path):
    harness = make_harness()
    spec = make_spec(tmp_path, [WRITE_ASK])
    session = await harness.start(spec)
    # What the core sends for a thread reply to a permission: the deny option plus the text.
    reply = Answer(option_ids=("reject-once",), text="use hello.txt instead")
    try:
        events = await collect(session, answering(reply))
    finally:
        await session.stop()
    assert not (spec.workdir / "greeting.txt").exists()
    assert [e["kind"] for e in agent_log(tmp_path, "permission")] == ["reject_once"]
    prompts = [e["text"] for e in agent_log(tmp_path, "prompt")]
    assert len(prompts) == 2 and "use hello.txt instead" in prompts[1] and "greeting.txt" in prompts[1]
    assert isinstance(events[-1], Finished) and "use hello.txt instead" in events[-1].summary


async def test_text_alone_also_picks_the_reject_option(tmp_path):
    session = await make_harness().start(make_spec(tmp_path, [WRITE_ASK]))
    try:
        events = await collect(session, answering(Answer(text="no, not now")))
    finally:
        await session.stop()
    assert [e["option_id"] for e in agent_log(tmp_path, "permission")] == ["reject-once"]
    assert isinstance(events[-1], Finished)


async def test_an_unknown_answer_is_refused(tmp_path):
    session = await make_harness().start(make_spec(tmp_path, [WRITE_ASK]))
    try:
        async for event in session.events():
            if isinstance(event, InterventionRequest):
                with pytest.raises(HarnessError):
                    await session.answer(event.request_id, Answer(option_ids=("nope",)), event)
                with pytest.raises(HarnessError):
                    await session.answer("perm-999", Answer(option_ids=("allow-once",)), event)
                await session.answer(event.request_id, Answer(option_ids=("allow-always",)), event)
            if isinstance(event, (Finished, Failed)):
                break
    finally:
        await session.stop()
    assert [e["kind"] for e in agent_log(tmp_path, "permission")] == ["allow_always"]


# ---- cancel, interrupt, stop --------------------------------------------------------------

async def test_stop_while_a_permission_is_pending_answers_it_cancelled_and_ends_the_process(tmp_path):
    session = await make_harness().start(make_spec(tmp_path, [WRITE_ASK]))
    pid = session.pid
    async for event in session.events():
        if isinstance(event, InterventionRequest):
            break
    await asyncio.wait_for(session.stop(), 10)
    assert [e["outcome"] for e in agent_log(tmp_path, "permission")] == ["cancelled"]
    assert agent_log(tmp_path, "cancel"), "session/cancel was not sent"
    assert not alive(pid)
    await session.stop()   # twice is fine


async def test_stop_while_a_tool_runs_cancels_the_turn_and_leaves_no_process(tmp_path):
    steps = [{"write_pid": "agent.pid"}, {"run": {"id": "sleepy", "title": "sleep 30", "seconds": 30}}]
    spec = make_spec(tmp_path, steps)
    session = await make_harness().start(spec)
    async for event in session.events():
        if isinstance(event, ToolActivity) and "sleep 30" in event.detail:
            break
    assert os.getpgid(session.pid) == session.pid      # its own process group
    await asyncio.wait_for(session.stop(), 10)
    assert agent_log(tmp_path, "run_cancelled"), "the agent never saw session/cancel"
    assert [e["stop_reason"] for e in agent_log(tmp_path, "turn_end")] == ["cancelled"]
    pid = int((spec.workdir / "agent.pid").read_text())
    assert pid == session.pid and not alive(pid)


async def test_interrupt_ends_the_turn_and_the_session(tmp_path):
    steps = [{"run": {"id": "sleepy", "title": "sleep 30", "seconds": 30}}]
    session = await make_harness().start(make_spec(tmp_path, steps))
    try:
        events = []
        async for event in session.events():
            events.append(event)
            if isinstance(event, ToolActivity):
                await session.interrupt()
        assert events[-1] == Failed("interrupted by taskpin", retryable=False)
    finally:
        await session.stop()
    assert not alive(session.pid)


async def test_interrupt_then_a_follow_up_continues_the_session(tmp_path):
    steps = [{"run": {"id": "sleepy", "title": "sleep 30", "seconds": 30}}]
    session = await make_harness().start(make_spec(tmp_path, steps))
    try:
        events = []
        async for event in session.events():
            events.append(event)
            if isinstance(event, ToolActivity):
                await session.send("stop sleeping, do something else")
                await session.interrupt()
        assert events[-1] == Finished(summary="got follow-up: stop sleeping, do something else")
    finally:
        await session.stop()


# ---- follow-ups and resume ----------------------------------------------------------------

async def test_a_follow_up_during_a_turn_is_the_next_prompt(tmp_path):
    steps = [{"say": "working"}, {"sleep": 0.6}, {"say": "first turn done"}]
    session = await make_harness().start(make_spec(tmp_path, steps))
    try:
        events = []
        async for event in session.events():
            events.append(event)
            if isinstance(event, OutputText) and event.text == "working":
                await session.send("also add a README")
                await session.send("and a LICENSE")
            if isinstance(event, (Finished, Failed)):
                break
    finally:
        await session.stop()
    prompts = [e["text"] for e in agent_log(tmp_path, "prompt")]
    assert prompts == ["write a greeting", "also add a README", "and a LICENSE"]
    assert events[-1] == Finished(summary="got follow-up: and a LICENSE")
    with pytest.raises(HarnessError):
        await session.send("too late")


async def test_follow_up_off(tmp_path):
    session = await make_harness(follow_up=False).start(make_spec(tmp_path, [{"sleep": 0.3}]))
    try:
        assert not session.supports_follow_up
        with pytest.raises(HarnessError):
            await session.send("hello")
        await collect(session)
    finally:
        await session.stop()


async def test_resume_loads_the_session_and_prompts_without_replaying_history(tmp_path):
    harness = make_harness()
    first = await harness.start(make_spec(tmp_path, [{"say": "first answer from before"}]))
    try:
        events = await collect(first)
    finally:
        await first.stop()
    session_id = events[0].session_id
    assert events[-1] == Finished(summary="first answer from before")

    spec = make_spec(tmp_path, prompt="please also add tests", resume_session_id=session_id)
    second = await harness.resume(spec)
    try:
        resumed = await collect(second)
    finally:
        await second.stop()
    assert second.pid != first.pid
    [loaded] = agent_log(tmp_path, "load_session")
    assert loaded["session_id"] == session_id and loaded["history"] == 2
    assert agent_log(tmp_path, "new_session")[-1]["session_id"] == session_id   # no second new_session
    assert resumed[0] == SessionIdAssigned(session_id)
    texts = [e.text for e in of(resumed, OutputText)]
    assert "first answer from before" not in " ".join(texts), "the replayed history was shown as output"
    assert resumed[-1] == Finished(summary="got follow-up: please also add tests")


async def test_resume_without_load_session_starts_a_new_session(tmp_path):
    harness = make_harness()
    spec = make_spec(tmp_path, prompt="continue", resume_session_id="sess-old",
                     env={"ACP_AGENT_LOAD_SESSION": "0"})
    session = await harness.resume(spec)
    try:
        events = await collect(session)
    finally:
        await session.stop()
    assert agent_log(tmp_path, "load_session") == []
    assert any("no loadSession" in e.text for e in of(events, OutputText))
    assert isinstance(events[-1], Finished)
    with pytest.raises(HarnessError):
        await make_harness(resume=False).resume(spec)


# ---- the file system ----------------------------------------------------------------------

async def test_fs_is_confined_to_the_worktree(tmp_path):
    outside = tmp_path / "outside.txt"
    steps = [
        {"read": "../../etc/passwd"},
        {"read": "/etc/passwd"},
        {"write": {"path": "notes/inside.txt", "content": "line1\nline2\n"}},
        {"read": "notes/inside.txt"},
        {"write": {"path": str(outside), "content": "x"}},
        {"write": {"path": "../outside2.txt", "content": "x"}},
    ]
    spec = make_spec(tmp_path, steps)
    (spec.workdir / "escape").symlink_to("/etc")
    steps.append({"read": "escape/passwd"})
    spec = make_spec(tmp_path, steps)
    session = await make_harness().start(spec)
    try:
        events = await collect(session)
    finally:
        await session.stop()
    reads = agent_log(tmp_path, "read")
    assert [r["ok"] for r in reads] == [False, False, True, False]
    assert "outside the task's worktree" in reads[0]["error"]
    assert reads[2]["content"] == "line1\nline2\n"
    writes = agent_log(tmp_path, "write")
    assert [w["ok"] for w in writes] == [True, False, False]
    assert (spec.workdir / "notes" / "inside.txt").exists()
    assert not outside.exists() and not (tmp_path / "outside2.txt").exists()
    refused = [e for e in of(events, ToolActivity) if e.tool == "fs"]
    assert len(refused) == 5 and all("outside the task's worktree" in e.detail for e in refused)
    assert isinstance(events[-1], Finished)


# ---- failures -----------------------------------------------------------------------------

async def test_the_agent_process_exiting_is_a_retryable_failure(tmp_path):
    session = await make_harness().start(make_spec(tmp_path, [{"say": "about to crash"}, {"exit": 3}]))
    try:
        events = await collect(session)
    finally:
        await session.stop()
    assert isinstance(events[-1], Failed) and events[-1].retryable
    assert "exited with code 3" in events[-1].error


@pytest.mark.parametrize("reason", ["refusal", "max_tokens", "max_turn_requests"])
async def test_refusal_and_limits_are_not_retryable(tmp_path, reason):
    session = await make_harness().start(make_spec(tmp_path, [{"stop_reason": reason}]))
    try:
        events = await collect(session)
    finally:
        await session.stop()
    assert isinstance(events[-1], Failed) and not events[-1].retryable and reason in events[-1].error


async def test_an_unknown_mode_fails_without_retry(tmp_path):
    session = await make_harness(mode="yolo").start(make_spec(tmp_path, []))
    try:
        events = await collect(session)
    finally:
        await session.stop()
    assert isinstance(events[-1], Failed) and not events[-1].retryable
    assert "yolo" in events[-1].error and "default" in events[-1].error


async def test_a_command_that_is_not_an_acp_agent_fails(tmp_path):
    harness = AcpHarness({"command": [sys.executable, "-c", "import sys; print('hello'); sys.exit(2)"],
                          "stop_grace_s": 1})
    session = await harness.start(make_spec(tmp_path))
    try:
        events = await collect(session)
    finally:
        await session.stop()
    assert isinstance(events[-1], Failed) and events[-1].retryable and "code 2" in events[-1].error


async def test_a_missing_executable_cannot_start(tmp_path):
    with pytest.raises(HarnessError, match="not found"):
        await AcpHarness({"command": ["no-such-acp-agent-xyz"]}).start(make_spec(tmp_path))


# ---- environment ---------------------------------------------------------------------------

async def test_environment_is_inherited_minus_secrets_plus_options(tmp_path, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret")
    monkeypatch.setenv("HOME_LIKE_VAR", "kept")
    steps = [{"say_env": ["SLACK_BOT_TOKEN", "HOME_LIKE_VAR", "FROM_OPTION", "FROM_SPEC"]}]
    harness = make_harness(env={"FROM_OPTION": "opt", "FROM_SPEC": "overridden"})
    session = await harness.start(make_spec(tmp_path, steps, env={"FROM_SPEC": "spec"}))
    try:
        events = await collect(session)
    finally:
        await session.stop()
    text = "\n".join(e.text for e in of(events, OutputText))
    assert "env SLACK_BOT_TOKEN unset" in text
    assert "env HOME_LIKE_VAR=kept" in text
    assert "env FROM_OPTION=opt" in text and "env FROM_SPEC=spec" in text
