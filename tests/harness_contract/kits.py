"""One kit per adapter: how to script the contract's scenarios for that agent, and how to see
what reached it. Real agents throughout: the scripted command agent, the scripted ACP agent,
the real Claude Code CLI against tests/fakes/anthropic_api.py, the real Codex CLI against
tests/fakes/openai_responses.py.

Scenarios: "finish" (announce a session, report usage, finish), "ask" (ask permission to
write out.txt, then finish), "follow_up" (ask, and hear a follow-up sent while waiting),
"long" (run a long-lived process until stopped), "flood" (FLOOD outputs "flood <i>", one
per line or message, as fast as the agent can, then finish).
"""
from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

from orchestrator.config import AgentConfig
from orchestrator.harness import Harness, InterventionRequest, SessionSpec, build_harness
from orchestrator.models import Answer
from tests.agents.clis import require_cli
from tests.harness_helpers import (
    ACP_AGENT,
    acp_agent_env,
    acp_agent_log,
    alive,
    claude_code_options,
    codex_options,
    processes_running,
    processes_with_env,
)

AGENTS = Path(__file__).resolve().parent.parent / "agents"
HEARD = "CONTRACT-WORDS-7"
FLOOD = 2000      # outputs in the "flood" scenario: 4x QUEUED_LIMIT


def _option(request: InterventionRequest, kind: str) -> str:
    return next(o.id for o in request.options if o.kind == kind)


class Kit:
    name = ""
    follow_up_before_answer = True   # send the follow-up while the request waits

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.workdir = tmp_path / "wt"
        self.workdir.mkdir(exist_ok=True)
        self.token = uuid.uuid4().hex

    def harness(self) -> Harness:
        raise NotImplementedError

    def spec(self, scenario: str, prompt: str = "contract task CONTRACT-HISTORY", resume_id: str | None = None) -> SessionSpec:
        return SessionSpec(task_id=9, workdir=self.workdir, prompt=prompt, resume_session_id=resume_id,
                           env={"TASKPIN_ATTEMPT_TOKEN": self.token, **self.scenario_env(scenario)},
                           log_path=self.tmp / "agent.log")

    def scenario_env(self, scenario: str) -> dict[str, str]:
        return {}

    def allow(self, request: InterventionRequest) -> Answer:
        return Answer(option_ids=(_option(request, "allow"),))

    def deny(self, request: InterventionRequest, text: str) -> Answer:
        return Answer(option_ids=(_option(request, "deny"),), text=text)

    def wrote_file(self) -> bool:
        return (self.workdir / "out.txt").exists()

    def heard(self, text: str) -> bool:
        raise NotImplementedError

    def long_running(self) -> bool:
        return bool(processes_with_env(f"TASKPIN_ATTEMPT_TOKEN={self.token}"))

    def resumed(self, session_id: str) -> bool:
        raise NotImplementedError

    expected_usage: tuple[int, int, float] = (0, 0, 0.0)   # the "finish" scenario's totals
    expected_resume_usage: tuple[int, int, float] | None = None


class CommandKit(Kit):
    name = "command"
    expected_usage = (30, 8, 0.03)

    def harness(self) -> Harness:
        return build_harness("c", AgentConfig(kind="command", command=[sys.executable, str(AGENTS / "scripted_agent.py")],
                                              resume=True, stop_grace_s=2))

    def scenario_env(self, scenario: str) -> dict[str, str]:
        ask = {"id": "q1", "kind": "permission", "prompt": "May I write out.txt?", "tool": "Write", "detail": "out.txt"}
        if scenario == "flood":   # too long for an environment string: a file
            script = self.tmp / "flood.json"
            script.write_text(json.dumps([{"emit": {"type": "output", "text": f"flood {i}"}} for i in range(FLOOD)]
                                         + [{"finish": "done"}]))
            return {"SCRIPTED_AGENT_SCRIPT": str(script)}
        steps = {
            "finish": [{"emit": {"type": "session", "id": "cmd-session-1"}},
                       {"emit": {"type": "usage", "input_tokens": 10, "output_tokens": 3, "cost_usd": 0.01}},
                       {"emit": {"type": "usage", "input_tokens": 20, "output_tokens": 5, "cost_usd": 0.02}},
                       {"finish": "done"}],
            "ask": [{"ask": ask}, {"write_file": {"path": "out.txt", "content": "hi"}}, {"finish": "done"}],
            "deny": [{"ask": ask}, {"finish": "done"}],
            "follow_up": [{"emit": {"type": "intervention", **ask}}, {"wait_message": True}, {"read_line": True},
                          {"finish": "done"}],
            "long": [{"spawn_child_sleep": 60}, {"hang": True}],
        }[scenario if scenario != "resume" else "finish"]
        return {"SCRIPTED_AGENT_SCRIPT": json.dumps(steps), "SCRIPTED_AGENT_LOG": str(self.tmp / "stdin.log")}

    def _stdin(self) -> str:
        path = self.tmp / "stdin.log"
        return path.read_text() if path.exists() else ""

    def heard(self, text: str) -> bool:
        return text in self._stdin()

    def resumed(self, session_id: str) -> bool:
        return f'"resume_session":"{session_id}"' in self._stdin()


class AcpKit(Kit):
    name = "acp"
    expected_usage = (10, 5, 0.03)

    def harness(self) -> Harness:
        return build_harness("a", AgentConfig(kind="acp", command=[sys.executable, str(ACP_AGENT)], stop_grace_s=2))

    def scenario_env(self, scenario: str) -> dict[str, str]:
        ask = {"ask": {"id": "call-1", "title": "Write out.txt", "kind": "edit",
                       "input": {"path": "out.txt", "content": "hi"}, "write": {"path": "out.txt", "content": "hi"}}}
        if scenario == "flood":   # one tool_call notification (one ToolActivity) each
            script = self.tmp / "flood.json"
            script.write_text(json.dumps([{"tool": {"id": f"t{i}", "title": f"flood {i}"}} for i in range(FLOOD)]))
            return {**acp_agent_env(self.tmp), "ACP_AGENT_SCRIPT": str(script)}
        steps = {
            "finish": [{"say": "working"}, {"usage": {"cost": 0.01}}, {"usage": {"cost": 0.03}},
                       {"turn_usage": {"input": 10, "output": 5}}],
            "ask": [ask], "deny": [ask], "follow_up": [ask],
            "long": [{"write_pid": "agent.pid"}, {"run": {"id": "r1", "title": "a long run", "seconds": 60}}],
        }[scenario if scenario != "resume" else "finish"]
        return acp_agent_env(self.tmp, steps)

    def heard(self, text: str) -> bool:
        return any(text in json.dumps(e) for e in acp_agent_log(self.tmp, "prompt"))

    def long_running(self) -> bool:
        pid_file = self.workdir / "agent.pid"
        return pid_file.exists() and alive(int(pid_file.read_text()))

    def resumed(self, session_id: str) -> bool:
        return any(e.get("session_id") == session_id for e in acp_agent_log(self.tmp, "load_session"))


class ClaudeCodeKit(Kit):
    name = "claude-code"
    call_cost = 100 * 3e-6 + 20 * 15e-6
    expected_usage = (100, 20, call_cost)

    def __init__(self, tmp_path: Path, api):
        super().__init__(tmp_path)
        self.api = api
        self.marker = f"longcmd-{uuid.uuid4().hex[:8]}"

    def harness(self) -> Harness:
        return build_harness("claude", AgentConfig(**claude_code_options(self.api, self.tmp / "home")))

    def scenario_env(self, scenario: str) -> dict[str, str]:
        from tests.fakes.anthropic_api import Response, bash, text
        if scenario == "flood":   # one model turn of FLOOD text blocks
            self.api.script(Response([{"type": "text", "text": f"flood {i}"} for i in range(FLOOD)]))
            return {}
        script = {
            "finish": [text("done")],
            "ask": [bash("echo hi > out.txt"), text("done")],
            "deny": [bash("echo hi > out.txt"), text("done")],
            "follow_up": [bash("echo hi > out.txt"), text("done"), text("done too")],
            "long": [bash(f"python3 -c 'import time; time.sleep(60)' {self.marker}"), text("never")],
            "resume": [text("resumed")],
        }[scenario]
        self.api.script(*script)
        return {}

    def heard(self, text: str) -> bool:
        from tests.fakes.anthropic_api import all_text
        return any(text in all_text(body) for body in self.api.main_requests)

    def long_running(self) -> bool:
        return bool(processes_running(self.marker))

    def resumed(self, session_id: str) -> bool:
        from tests.fakes.anthropic_api import all_text
        last = all_text(self.api.main_requests[-1])
        return "CONTRACT-HISTORY" in last and "CONTRACT-RESUME" in last

    expected_resume_usage = (100, 20, call_cost)   # only the new turn, not the whole session


class CodexKit(Kit):
    name = "codex"
    expected_usage = (1234, 56, 0.0)

    def __init__(self, tmp_path: Path, api):
        super().__init__(tmp_path)
        self.api = api
        self.codex = require_cli("codex", "npm install @openai/codex")
        self._policy = "untrusted"
        self.sleep = f"sleep 60.{uuid.uuid4().int % 10**6:06d}"

    def harness(self) -> Harness:
        return build_harness("codex", AgentConfig(**codex_options(self.codex, self.api, self.tmp,
                                                                  approval_policy=self._policy)))

    def scenario_env(self, scenario: str) -> dict[str, str]:
        replies = {
            "flood": [[{"say": f"flood {i}"} for i in range(FLOOD)]],   # one response, FLOOD messages
            "finish": [[{"say": "done", "usage": [1234, 56]}]],
            "ask": [[{"exec": "printf hi > out.txt"}], [{"say": "done"}]],
            "deny": [[{"exec": "printf hi > out.txt"}], [{"say": "done"}]],
            "follow_up": [[{"exec": "printf hi > out.txt"}], [{"say": "done"}], [{"say": "done too"}]],
            "long": [[{"exec": self.sleep, "yield_ms": 60000}]],
            "resume": [[{"say": "resumed"}]],
        }[scenario]
        self.api.add(*replies)
        return {}

    def heard(self, text: str) -> bool:
        return any(text in t for body in self.api.requests for t in self.api.user_texts(body))

    def long_running(self) -> bool:
        return bool(processes_running(self.sleep))

    def resumed(self, session_id: str) -> bool:
        last = " ".join(self.api.user_texts(self.api.requests[-1]))
        return "CONTRACT-HISTORY" in last and "CONTRACT-RESUME" in last
