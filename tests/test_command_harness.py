"""The `command` harness against real subprocesses (tests/agents/*.py)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
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
from orchestrator.harness.command import CommandHarness, CommandSession
from orchestrator.models import Answer, InterventionKind, Option
from tests.harness_helpers import alive, collect, group_members

AGENTS = Path(__file__).resolve().parent / "agents"
SCRIPTED = AGENTS / "scripted_agent.py"
MARKER = AGENTS / "marker_agent.py"

pytestmark = pytest.mark.timeout(30)


def make_harness(*, agent: Path = SCRIPTED, args: tuple[str, ...] = (), **options) -> CommandHarness:
    options.setdefault("stop_grace_s", 1.0)
    return CommandHarness(AgentConfig(kind="command", command=[sys.executable, str(agent), *args], **options))


def make_spec(tmp_path: Path, steps: list | None = None, *, prompt: str = "do the thing",
              env: dict | None = None, **kw) -> SessionSpec:
    full_env = {"SCRIPTED_AGENT_LOG": str(tmp_path / "stdin.log")}
    if steps is not None:
        full_env["SCRIPTED_AGENT_SCRIPT"] = json.dumps(steps)
    full_env.update(env or {})
    workdir = tmp_path / "wt"
    workdir.mkdir(exist_ok=True)
    return SessionSpec(task_id=7, workdir=workdir, prompt=prompt, env=full_env, **kw)


def stdin_lines(tmp_path: Path) -> list[str]:
    path = tmp_path / "stdin.log"
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
async def sessions():
    started: list[CommandSession] = []
    yield started
    for session in started:
        await session.stop()


async def start(sessions, harness: CommandHarness, spec: SessionSpec) -> CommandSession:
    session = await harness.start(spec)
    sessions.append(session)
    return session


async def next_event(it, timeout: float = 10.0):
    return await asyncio.wait_for(it.__anext__(), timeout)


async def until(it, predicate, timeout: float = 10.0):
    """Events up to and including the first matching one."""
    seen = []
    while True:
        event = await next_event(it, timeout)
        seen.append(event)
        if predicate(event):
            return seen


def outputs(events) -> list[str]:
    return [e.text for e in events if isinstance(e, OutputText)]


# ---- events ---------------------------------------------------------------------------

async def test_jsonl_events_are_normalized(tmp_path, sessions):
    steps = [
        {"emit": {"type": "session", "id": "sess-42"}},
        {"emit": {"type": "output", "text": "hello\nworld"}},
        {"emit": {"type": "activity", "tool": "Bash", "detail": "ls -la"}},
        {"emit": {"type": "activity", "tool": "Read"}},
        {"emit": {"type": "usage", "input_tokens": 100, "output_tokens": 20, "cost_usd": 0.5}},
        {"emit": {"type": "usage", "output_tokens": 3}},
        {"ask": {"id": "p1", "kind": "permission", "prompt": "Run rm?", "tool": "Bash", "detail": "rm x"}},
        {"ask": {"id": 2, "kind": "question", "prompt": "Which?", "multi_select": True,
                 "options": [{"id": "a", "label": "A", "kind": "allow", "description": "first"},
                             {"id": "b"}, "c"]}},
        {"ask": {"id": "in1", "kind": "input", "prompt": "Name?"}},
        {"emit": {"type": "finished", "summary": "all done"}},
    ]
    session = await start(sessions, make_harness(), make_spec(tmp_path, steps))
    assert isinstance(session, AgentSession)
    assert session.pid and session.supports_follow_up
    events = []
    async for event in session.events():
        events.append(event)
        if isinstance(event, InterventionRequest):
            await session.answer(event.request_id, Answer(option_ids=(event.options[0].id,) if event.options else (),
                                                          text="ok"), event)
    assert events[:6] == [
        SessionIdAssigned("sess-42"),
        OutputText("hello\nworld"),
        ToolActivity("Bash", "ls -la"),
        ToolActivity("Read", ""),
        Usage(100, 20, 0.5),
        Usage(0, 3, 0.0),
    ]
    requests = [e for e in events if isinstance(e, InterventionRequest)]
    assert requests == [
        InterventionRequest("p1", InterventionKind.PERMISSION, "Run rm?",
                            (Option("allow", "Approve", "allow"), Option("deny", "Deny", "deny")),
                            tool="Bash", detail="rm x"),
        InterventionRequest("2", InterventionKind.QUESTION, "Which?",
                            (Option("a", "A", "allow", "first"), Option("b", "b"), Option("c", "c")),
                            multi_select=True),
        InterventionRequest("in1", InterventionKind.INPUT, "Name?"),
    ]
    assert events[-1] == Finished("all done")
    assert session.session_id == "sess-42"


async def test_failed_line_ends_session(tmp_path, sessions):
    steps = [{"emit": {"type": "failed", "error": "refusing", "retryable": False}},
             {"emit": {"type": "output", "text": "after the end"}}]
    events = await collect(await start(sessions, make_harness(), make_spec(tmp_path, steps)))
    assert events == [Failed("refusing", retryable=False)]
    steps = [{"emit": {"type": "failed", "error": "flaky"}}]
    events = await collect(await start(sessions, make_harness(), make_spec(tmp_path, steps)))
    assert events == [Failed("flaky", retryable=True)]


async def test_non_json_and_malformed_lines_are_output(tmp_path, sessions):
    bad = [
        '{"type": "bogus", "x": 1}',
        '{"type": "output"}',
        '{"type": "output", "text": 5}',
        '{"type": "intervention", "prompt": "no id"}',
        '{"type": "intervention", "id": "x", "kind": "weird", "prompt": "p"}',
        '{"type": "usage", "input_tokens": "many"}',
        '{"no_type": true}',
        '[1, 2]',
        '{not json',
    ]
    steps = [{"print": "plain text line"}, *[{"print": line} for line in bad], {"print": ""}, {"exit": 0}]
    events = await collect(await start(sessions, make_harness(), make_spec(tmp_path, steps)))
    assert outputs(events) == ["plain text line", *bad, ""]
    assert isinstance(events[-1], Finished)


async def test_exit_zero_without_finished_summarizes_last_output(tmp_path, sessions):
    steps = [{"print": f"line {i}"} for i in range(10)] + [{"emit": {"type": "output", "text": "last one"}}]
    events = await collect(await start(sessions, make_harness(), make_spec(tmp_path, steps)))
    assert events[-1] == Finished("line 6\nline 7\nline 8\nline 9\nlast one")


async def test_nonzero_exit_fails_with_stderr_tail(tmp_path, sessions):
    steps = [{"stderr": f"err {i}"} for i in range(8)] + [{"print": "partial"}, {"exit": 4}]
    log_path = tmp_path / "logs" / "agent.log"
    events = await collect(await start(sessions, make_harness(), make_spec(tmp_path, steps, log_path=log_path)))
    assert events[-1] == Failed("exited with code 4: err 3\nerr 4\nerr 5\nerr 6\nerr 7", retryable=True)
    assert log_path.read_text().splitlines() == [f"err {i}" for i in range(8)]


async def test_finished_line_then_agent_lingers_is_stopped(tmp_path, sessions):
    steps = [{"emit": {"type": "finished", "summary": "done"}}, {"hang": True}]
    session = await start(sessions, make_harness(stop_grace_s=0.3), make_spec(tmp_path, steps))
    assert await collect(session) == [Finished("done")]   # the events end: the lingering agent was stopped
    assert session.returncode is not None


async def test_exit_while_grandchild_holds_stdout_still_ends(tmp_path, sessions):
    # The grandchild inherits stdout; the session must end when the agent itself exits.
    steps = [{"spawn_child_sleep": 30}, {"print": "bye"}, {"exit": 0}]
    session = await start(sessions, make_harness(), make_spec(tmp_path, steps))
    events = await collect(session)
    assert events[-1] == Finished("bye")
    pid = int((tmp_path / "wt" / "grandchild.pid").read_text())
    await session.stop()
    assert not alive(pid)


# ---- prompt modes, env, no shell -------------------------------------------------------

async def test_prompt_via_stdin_is_a_json_line(tmp_path, sessions):
    spec = make_spec(tmp_path, [{"echo_prompt": True}], prompt="fix\nthe bug")
    events = await collect(await start(sessions, make_harness(), spec))
    assert outputs(events) == ["prompt: fix\nthe bug"]
    assert json.loads(stdin_lines(tmp_path)[0]) == {"type": "prompt", "text": "fix\nthe bug", "task_id": 7, "attempt": 1}


async def test_prompt_via_arg(tmp_path, sessions):
    harness = make_harness(args=("--prompt-arg",), prompt_via="arg")
    spec = make_spec(tmp_path, [{"echo_argv": True}], prompt="fix\nthe bug")
    events = await collect(await start(sessions, harness, spec))
    assert outputs(events) == ['argv: ["--prompt-arg", "fix\\nthe bug"]']
    assert stdin_lines(tmp_path) == []


async def test_prompt_via_stdin_text_folds_newlines(tmp_path, sessions):
    harness = make_harness(prompt_via="stdin-text")
    assert harness.follow_up is False
    events = await collect(await start(sessions, harness, make_spec(tmp_path, [{"echo_prompt": True}],
                                                                    prompt="fix\nthe\r\nbug")))
    assert outputs(events) == ["prompt: fix the bug"]
    session = await start(sessions, harness, make_spec(tmp_path, [{"hang": True}]))
    assert not session.supports_follow_up
    with pytest.raises(HarnessError, match="follow-up"):
        await session.send("hi")


async def test_env_reaches_the_agent(tmp_path, sessions):
    harness = make_harness(env={"FROM_CONFIG": "c", "BOTH": "config"})
    names = ["TASKPIN_TASK_ID", "TASKPIN_ATTEMPT", "TASKPIN_PROMPT", "TASKPIN_WORKDIR", "FROM_CONFIG",
             "FROM_SPEC", "BOTH", "PATH", "TASKPIN_RESUME_SESSION"]
    spec = make_spec(tmp_path, [{"echo_env": names}], prompt="p r o m p t", attempt=3,
                     env={"FROM_SPEC": "s", "BOTH": "spec"})
    events = await collect(await start(sessions, harness, spec))
    assert outputs(events) == [
        "env TASKPIN_TASK_ID=7", "env TASKPIN_ATTEMPT=3", "env TASKPIN_PROMPT=p r o m p t",
        f"env TASKPIN_WORKDIR={tmp_path / 'wt'}", "env FROM_CONFIG=c", "env FROM_SPEC=s", "env BOTH=spec",
        f"env PATH={os.environ['PATH']}", "env TASKPIN_RESUME_SESSION unset",
    ]


async def test_huge_prompt_is_cut_in_env_but_whole_on_stdin(tmp_path, sessions):
    prompt = "word " * 100_000   # 500 kB: more than one environment string may hold
    steps = [{"echo_prompt": True}, {"echo_env": ["TASKPIN_PROMPT"]}]
    events = await collect(await start(sessions, make_harness(), make_spec(tmp_path, steps, prompt=prompt)))
    texts = outputs(events)
    assert texts[0] == f"prompt: {prompt}"
    assert len(texts[1].encode()) < 100_100 and prompt.startswith(texts[1].removeprefix("env TASKPIN_PROMPT="))


async def test_agent_runs_in_workdir(tmp_path, sessions):
    steps = [{"write_file": {"path": "sub/x.txt", "content": "hi"}}]
    await collect(await start(sessions, make_harness(), make_spec(tmp_path, steps)))
    assert (tmp_path / "wt" / "sub" / "x.txt").read_text() == "hi"


@pytest.mark.parametrize("prompt_via", ["arg", "stdin", "stdin-text"])
async def test_nothing_goes_through_a_shell(tmp_path, sessions, prompt_via):
    evil = '$(touch pwned); rm -rf "$HOME/nope" `touch pwned2` && touch pwned3 | cat > pwned4'
    args = ("--prompt-arg",) if prompt_via == "arg" else ()
    harness = CommandHarness(AgentConfig(command=[sys.executable, str(SCRIPTED), *args, "$(touch pwned5)"],
                                         prompt_via=prompt_via))
    steps = [{"echo_prompt": True}, {"echo_env": ["TASKPIN_PROMPT"]}, {"echo_argv": True}]
    events = await collect(await start(sessions, harness, make_spec(tmp_path, steps, prompt=evil)))
    texts = outputs(events)
    assert texts[0] == f"prompt: {evil}"
    assert texts[1] == f"env TASKPIN_PROMPT={evil}"
    assert "$(touch pwned5)" in json.loads(texts[2].removeprefix("argv: "))
    for root in (tmp_path, tmp_path / "wt", Path.cwd()):
        assert not list(root.glob("pwned*"))


# ---- interventions and messages ----------------------------------------------------------

async def test_json_intervention_answer_round_trip(tmp_path, sessions):
    steps = [
        {"echo_answers_to": "answers.jsonl"},
        {"ask": {"id": "q1", "kind": "question", "prompt": "Pick", "options": [{"id": "yes", "label": "Yes"},
                                                                                {"id": "no", "label": "No"}]}},
        {"ask": {"id": "q2", "kind": "input", "prompt": "Why?"}},
        {"finish": "ok"},
    ]
    session = await start(sessions, make_harness(), make_spec(tmp_path, steps))
    it = session.events().__aiter__()
    (q1,) = await until(it, lambda e: isinstance(e, InterventionRequest))
    await session.answer("q1", Answer(option_ids=("yes",), text="go\nahead"), q1)
    seen = await until(it, lambda e: isinstance(e, InterventionRequest))
    q1_line = '{"type":"answer","id":"q1","option":"yes","options":["yes"],"text":"go\\nahead"}'
    assert outputs(seen) == [f"got answer: {q1_line}"]
    await session.answer("q2", Answer(text="because ✓"), seen[-1])
    rest = await until(it, lambda e: isinstance(e, (Finished, Failed)))
    q2_line = '{"type":"answer","id":"q2","option":null,"options":[],"text":"because ✓"}'
    assert outputs(rest) == [f"got answer: {q2_line}"]
    assert rest[-1] == Finished("ok")
    assert stdin_lines(tmp_path)[1:] == [q1_line, q2_line]
    assert (tmp_path / "wt" / "answers.jsonl").read_text().splitlines() == [q1_line, q2_line]


async def test_permission_reply_without_option_is_a_deny(tmp_path, sessions):
    steps = [{"ask": {"id": "p", "kind": "permission", "prompt": "Push?"}}]
    session = await start(sessions, make_harness(), make_spec(tmp_path, steps))
    it = session.events().__aiter__()
    (req,) = await until(it, lambda e: isinstance(e, InterventionRequest))
    await session.answer("p", Answer(text="not today"), req)
    await until(it, lambda e: isinstance(e, Finished))
    assert json.loads(stdin_lines(tmp_path)[1]) == {
        "type": "answer", "id": "p", "option": "deny", "options": ["deny"], "text": "not today"}


async def test_multi_select_answer(tmp_path, sessions):
    steps = [{"ask": {"id": "m", "prompt": "Which?", "multi_select": True, "options": ["a", "b", "c"]}}]
    session = await start(sessions, make_harness(), make_spec(tmp_path, steps))
    it = session.events().__aiter__()
    (req,) = await until(it, lambda e: isinstance(e, InterventionRequest))
    assert req.kind == InterventionKind.QUESTION and req.multi_select
    await session.answer("m", Answer(option_ids=("a", "c")), req)
    await until(it, lambda e: isinstance(e, Finished))
    assert json.loads(stdin_lines(tmp_path)[1]) == {
        "type": "answer", "id": "m", "option": "a", "options": ["a", "c"], "text": ""}


async def test_follow_up_message(tmp_path, sessions):
    steps = [{"emit": {"type": "output", "text": "ready"}}, {"wait_message": True}, {"finish": "ok"}]
    session = await start(sessions, make_harness(), make_spec(tmp_path, steps))
    it = session.events().__aiter__()
    assert await next_event(it) == OutputText("ready")
    await session.send("also add tests\nplease")
    assert await next_event(it) == OutputText("got message: also add tests\nplease")
    assert await next_event(it) == Finished("ok")
    assert stdin_lines(tmp_path)[1] == '{"type":"message","text":"also add tests\\nplease"}'


async def test_legacy_marker_agent(tmp_path, sessions):
    harness = make_harness(agent=MARKER, prompt_via="stdin-text")
    session = await start(sessions, harness, make_spec(tmp_path, prompt="add a\ndatabase"))
    it = session.events().__aiter__()
    seen = await until(it, lambda e: isinstance(e, InterventionRequest))
    assert outputs(seen) == ["Working on: add a database", "Looking at the repository..."]
    request = seen[-1]
    assert request.kind == InterventionKind.INPUT
    assert request.prompt == "Which database should I use?"
    assert request.options == ()
    await session.answer(request.request_id, Answer(text="Postgres,\nversion 16"), request)
    rest = await until(it, lambda e: isinstance(e, (Finished, Failed)))
    assert rest[-1] == Finished("Working on: add a database\nLooking at the repository...\nUsing: Postgres, version 16")
    assert (tmp_path / "wt" / "marker_answer.txt").read_text() == "Postgres, version 16"


async def test_marker_in_jsonl_agent_and_bare_marker(tmp_path, sessions):
    steps = [{"print": "I need a token"}, {"print": "[INTERVENTION_REQUIRED]"}, {"read_line": True},
             {"ask_marker": "Second question?"}, {"finish": "ok"}]
    session = await start(sessions, make_harness(), make_spec(tmp_path, steps))
    it = session.events().__aiter__()
    seen = await until(it, lambda e: isinstance(e, InterventionRequest))
    assert seen[-1].prompt == "I need a token"        # bare marker: the last output line
    await session.answer(seen[-1].request_id, Answer(text="abc"), seen[-1])
    seen = await until(it, lambda e: isinstance(e, InterventionRequest))
    assert outputs(seen) == ["got line: abc"]
    assert seen[-1].prompt == "Second question?"
    assert seen[-1].request_id != "marker-1"
    await session.answer(seen[-1].request_id, Answer(text="x\ny"), seen[-1])
    rest = await until(it, lambda e: isinstance(e, Finished))
    assert outputs(rest) == ["got answer: x y"]


# ---- process lifecycle --------------------------------------------------------------------

async def test_stop_kills_the_whole_group_even_if_sigterm_ignored(tmp_path, sessions):
    steps = [{"ignore_sigterm": True}, {"spawn_child_sleep": 60}, {"emit": {"type": "output", "text": "spawned"}},
             {"hang": True}]
    session = await start(sessions, make_harness(stop_grace_s=0.5), make_spec(tmp_path, steps))
    it = session.events().__aiter__()
    assert await next_event(it) == OutputText("spawned")
    grandchild = int((tmp_path / "wt" / "grandchild.pid").read_text())
    assert os.getpgid(grandchild) == session.pid == os.getpgid(session.pid)
    await session.stop()
    assert session.returncode == -signal.SIGKILL   # SIGTERM was ignored: the grace ran out, then SIGKILL
    assert not alive(grandchild)
    assert group_members(session.pid) == {}
    end = await next_event(it)
    assert isinstance(end, Failed) and end.error.startswith("stopped by taskpin")
    await session.stop()  # idempotent
    assert [e async for e in session.events()] == []


async def test_stop_is_quick_when_agent_obeys_sigterm(tmp_path, sessions):
    steps = [{"spawn_child_sleep": 60}, {"hang": True}]
    session = await start(sessions, make_harness(stop_grace_s=5), make_spec(tmp_path, steps))
    for _ in range(200):
        if (tmp_path / "wt" / "grandchild.pid").exists():
            break
        await asyncio.sleep(0.02)
    grandchild = int((tmp_path / "wt" / "grandchild.pid").read_text())
    await asyncio.gather(session.stop(), session.stop())
    assert session.returncode == -signal.SIGTERM   # it obeyed SIGTERM: no SIGKILL after the 5 s grace
    assert not alive(grandchild)


async def test_interrupt_sends_interrupt_line_then_ends(tmp_path, sessions):
    steps = [{"ignore_sigint": True}, {"emit": {"type": "output", "text": "busy"}}, {"read_line": True}, {"hang": True}]
    session = await start(sessions, make_harness(stop_grace_s=0.3), make_spec(tmp_path, steps))
    it = session.events().__aiter__()
    assert await next_event(it) == OutputText("busy")
    await session.interrupt()
    rest = await until(it, lambda e: isinstance(e, (Finished, Failed)))
    assert rest[0] == OutputText('got line: {"type":"interrupt"}')
    assert rest[-1] == Failed("interrupted by taskpin", retryable=False)
    assert session.returncode is not None


async def test_answer_to_dead_process_raises_harness_error(tmp_path, sessions):
    steps = [{"emit": {"type": "intervention", "id": "q", "kind": "input", "prompt": "?"}}, {"exit": 1}]
    session = await start(sessions, make_harness(), make_spec(tmp_path, steps))
    events = await collect(session)
    request = events[0]
    assert isinstance(events[-1], Failed)
    with pytest.raises(HarnessError, match="exited"):
        await session.answer("q", Answer(text="too late"), request)
    with pytest.raises(HarnessError):
        await session.send("hello?")
    await session.stop()
    with pytest.raises(HarnessError):
        await session.answer("q", Answer(text="too late"), request)


async def test_answer_when_agent_closed_stdin_but_runs(tmp_path, sessions):
    # The agent closes stdin and keeps running: writing must raise HarnessError, not crash.
    agent = tmp_path / "closer.py"
    agent.write_text(textwrap.dedent("""
        import os, sys, time
        sys.stdin.readline()
        os.close(0)
        print('{"type":"intervention","id":"q","kind":"input","prompt":"?"}', flush=True)
        time.sleep(30)
    """))
    harness = CommandHarness(AgentConfig(command=[sys.executable, str(agent)], stop_grace_s=0.5))
    session = await start(sessions, harness, make_spec(tmp_path))
    it = session.events().__aiter__()
    request = await next_event(it)
    with pytest.raises(HarnessError):
        for _ in range(50):  # the pipe buffer may take a few writes to notice
            await session.answer("q", Answer(text="x" * 70000), request)


async def test_huge_line_does_not_crash(tmp_path, sessions):
    steps = [{"print_bytes": 3 * 1024 * 1024}, {"print_bytes": 5000},
             {"emit": {"type": "output", "text": "y" * 900_000}}, {"finish": "ok"}]
    script = tmp_path / "script.json"   # too big for an environment variable
    script.write_text(json.dumps(steps))
    session = await start(sessions, make_harness(), make_spec(tmp_path, env={"SCRIPTED_AGENT_SCRIPT": str(script)}))
    events = await collect(session)
    texts = outputs(events)
    assert len(texts) == 3
    assert texts[0].startswith("x" * 1000) and "line truncated" in texts[0]
    assert len(texts[0]) < 1024 * 1024 + 100
    assert texts[1] == "x" * 5000
    assert texts[2] == "y" * 900_000
    assert events[-1] == Finished("ok")


async def test_agent_killed_by_signal_is_retryable_failure(tmp_path, sessions):
    steps = [{"write_pid": "agent.pid"}, {"emit": {"type": "output", "text": "up"}}, {"hang": True}]
    session = await start(sessions, make_harness(), make_spec(tmp_path, steps))
    it = session.events().__aiter__()
    await next_event(it)
    os.kill(session.pid, signal.SIGKILL)  # e.g. the OOM killer
    rest = await until(it, lambda e: isinstance(e, (Finished, Failed)))
    assert rest[-1] == Failed("killed by signal SIGKILL", retryable=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_agent_dies_with_a_sigkilled_taskpin(tmp_path):
    """The direct child gets SIGKILL when the process that started it is SIGKILLed."""
    pid_file = tmp_path / "wt" / "agent.pid"
    runner = textwrap.dedent(f"""
        import asyncio, json, sys, time
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
        from orchestrator.config import AgentConfig
        from orchestrator.harness.command import CommandHarness
        from orchestrator.harness.base import SessionSpec
        async def main():
            h = CommandHarness(AgentConfig(command=[sys.executable, {str(SCRIPTED)!r}]))
            spec = SessionSpec(task_id=1, workdir=Path({str(tmp_path / 'wt')!r}), prompt="p",
                               env={{"SCRIPTED_AGENT_SCRIPT": json.dumps([{{"write_pid": "agent.pid"}}, {{"hang": True}}])}})
            await h.start(spec)
            print("started", flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
    """)
    (tmp_path / "wt").mkdir()
    proc = subprocess.Popen([sys.executable, "-c", runner], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"started"
        deadline = time.monotonic() + 5
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        agent_pid = int(pid_file.read_text())
        assert alive(agent_pid)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 5
        while alive(agent_pid):
            assert time.monotonic() < deadline, "agent outlived a SIGKILLed taskpin"
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        if pid_file.exists() and pid_file.read_text():
            try:
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


# ---- resume ----------------------------------------------------------------------------

async def test_resume(tmp_path, sessions):
    steps = [{"echo_env": ["TASKPIN_RESUME_SESSION"]}, {"echo_prompt": True}]
    harness = make_harness(resume=True)
    assert harness.supports_resume
    spec = make_spec(tmp_path, steps, prompt="continue please", resume_session_id="sess-42")
    session = await harness.resume(spec)
    sessions.append(session)
    events = await collect(session)
    assert outputs(events) == ["env TASKPIN_RESUME_SESSION=sess-42", "prompt: continue please"]
    assert json.loads(stdin_lines(tmp_path)[0])["resume_session"] == "sess-42"

    no_resume = make_harness()
    assert not no_resume.supports_resume
    with pytest.raises(HarnessError, match="resume"):
        await no_resume.resume(spec)
    with pytest.raises(HarnessError, match="session id"):
        await harness.resume(make_spec(tmp_path, steps))


# ---- check, config, registry ---------------------------------------------------------------

def test_check(tmp_path):
    assert make_harness().check() == []
    assert CommandHarness(AgentConfig(command=["sh"])).check() == []
    os.chmod(SCRIPTED, 0o755)
    assert CommandHarness(AgentConfig(command=[str(SCRIPTED)])).check() == []

    (problem,) = CommandHarness(AgentConfig(command=["definitely-not-an-agent-xyz", "--x"])).check()
    assert "definitely-not-an-agent-xyz" in problem and "PATH" in problem
    (problem,) = CommandHarness(AgentConfig()).check()
    assert "command is not set" in problem
    (problem,) = CommandHarness(AgentConfig(command=[])).check()
    assert "command is not set" in problem
    (problem,) = CommandHarness(AgentConfig(command=[str(tmp_path / "nope")])).check()
    assert "does not exist" in problem
    not_exec = tmp_path / "agent.sh"
    not_exec.write_text("#!/bin/sh\n")
    (problem,) = CommandHarness(AgentConfig(command=[str(not_exec)])).check()
    assert "chmod +x" in problem
    # PATH from the agent's own env is honoured
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "my-agent"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert CommandHarness(AgentConfig(command=["my-agent"], env={"PATH": str(bindir)})).check() == []


async def test_start_errors_are_harness_errors(tmp_path):
    with pytest.raises(HarnessError, match="not found"):
        await CommandHarness(AgentConfig(command=["definitely-not-an-agent-xyz"])).start(make_spec(tmp_path))
    with pytest.raises(HarnessError, match="command is not set"):
        await CommandHarness(AgentConfig()).start(make_spec(tmp_path))
    spec = SessionSpec(task_id=1, workdir=tmp_path / "missing", prompt="p")
    with pytest.raises(HarnessError, match="workdir"):
        await make_harness().start(spec)


def test_registry():
    harness = build_harness("mine", AgentConfig(kind="command", command=["python", "agent.py"]))
    assert isinstance(harness, CommandHarness) and isinstance(harness, Harness)
    assert harness.kind == "command"
    with pytest.raises(HarnessConfigError, match=r"agent 'x'.*unknown agent kind 'nope'.*command"):
        build_harness("x", AgentConfig(kind="nope"))
    with pytest.raises(HarnessConfigError, match=r"agent 'y'.*shell string.*\[\"python\", \"agent.py\"\]"):
        build_harness("y", AgentConfig(command="python agent.py"))
    with pytest.raises(ValueError, match="prompt_via"):
        build_harness("z", AgentConfig(command=["a"], prompt_via="file"))
    with pytest.raises(HarnessConfigError, match="list of strings"):
        build_harness("z", AgentConfig(command=["a", 1]))
    with pytest.raises(HarnessConfigError, match="env"):
        build_harness("z", AgentConfig(command=["a"], env=["A=1"]))
    with pytest.raises(HarnessConfigError, match="resume"):
        build_harness("z", AgentConfig(command=["a"], resume="yes"))
    assert build_harness("t", AgentConfig(command=["a"], prompt_via="stdin-text", follow_up=True)).follow_up


async def test_taskpin_secrets_never_reach_the_agent(tmp_path, monkeypatch):
    from orchestrator.config import AgentConfig
    from orchestrator.harness.base import SessionSpec
    from orchestrator.harness.command import CommandHarness

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret-value")
    monkeypatch.setenv("TASKPIN_DATABASE_URL", "postgresql://user:pw@db/x")
    monkeypatch.setenv("HOME_LIKE_VAR", "kept")
    harness = CommandHarness(AgentConfig(kind="command", command=["true"], env={"TASKPIN_MODE": "explicit"}))
    env = harness.build_env(SessionSpec(task_id=1, workdir=tmp_path, prompt="p"))
    assert "SLACK_BOT_TOKEN" not in env and "TASKPIN_DATABASE_URL" not in env
    assert env["HOME_LIKE_VAR"] == "kept" and env["TASKPIN_MODE"] == "explicit" and env["TASKPIN_TASK_ID"] == "1"
