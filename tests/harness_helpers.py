"""Shared by the harness tests (tests/test_*_harness.py) and their e2e tests: reading a
session's events, what /proc says about the agents' processes, and agent configurations.

The /proc checks here are the tests' own on purpose (not orchestrator.harness.process), so a
bug there cannot hide itself.
"""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from orchestrator.harness import InterventionRequest

# ---- events -------------------------------------------------------------------------------


async def collect(session, on_request=None, timeout: float = 15.0) -> list:
    """Every event until Finished/Failed. `on_request(event)` is called for each intervention
    request (none: they are only collected); an Answer it returns (or awaits to) is sent."""
    events = []

    async def run():
        async for event in session.events():
            events.append(event)
            if isinstance(event, InterventionRequest) and on_request is not None:
                answer = on_request(event)
                if asyncio.iscoroutine(answer):
                    answer = await answer
                if answer is not None:
                    await session.answer(event.request_id, answer, event)

    await asyncio.wait_for(run(), timeout)
    return events


def of(events: list, kind) -> list:
    return [e for e in events if isinstance(e, kind)]


# ---- /proc --------------------------------------------------------------------------------

def _stat(pid: int | str) -> tuple[str, list[str]] | None:
    """(command name, the fields after it) of /proc/<pid>/stat; None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            head, rest = fh.read().decode(errors="replace").rsplit(")", 1)
    except (OSError, ValueError):
        return None
    return head.split("(", 1)[1], rest.split()


def alive(pid: int) -> bool:
    """Is `pid` a process that is not a zombie?"""
    stat = _stat(pid)
    return stat is not None and stat[1][0] != "Z"


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _live_pids() -> list[int]:
    """Every live (non-zombie) process but this one."""
    me = os.getpid()
    return [int(name) for name in os.listdir("/proc") if name.isdigit() and int(name) != me and alive(int(name))]


def processes_running(needle: str) -> list[int]:
    """Live processes whose command line contains `needle`."""
    return [pid for pid in _live_pids() if needle in cmdline(pid)]


def processes_with_env(line: str) -> list[int]:
    """Live processes whose environment holds `line` (NAME=value)."""
    found = []
    for pid in _live_pids():
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if line.encode() in fh.read().split(b"\0"):
                    found.append(pid)
        except OSError:
            continue
    return found


def group_members(pgid: int) -> dict[int, str]:
    """pid -> command name of the live (non-zombie) processes of a process group (zombies may
    wait for a lazy init to reap them)."""
    found = {}
    for name in os.listdir("/proc"):
        stat = _stat(name) if name.isdigit() else None
        if stat is not None and int(stat[1][2]) == pgid and stat[1][0] != "Z":
            found[int(name)] = stat[0]
    return found


# ---- agents -------------------------------------------------------------------------------

ACP_AGENT = Path(__file__).resolve().parent / "agents" / "acp_agent.py"

# An ACP agent script step: ask to write greeting.txt, then write it if allowed.
WRITE_ASK = {"ask": {"id": "call-1", "title": "Write greeting.txt", "kind": "edit",
                     "input": {"path": "greeting.txt", "content": "hello\n"},
                     "write": {"path": "greeting.txt", "content": "hello\n"}}}


def acp_agent_env(tmp_path: Path, steps: list | None = None, next_steps: list | None = None, *,
                  prefix: str = "") -> dict[str, str]:
    """The environment of tests/agents/acp_agent.py: its script (and the next session's), its
    log ({prefix}agent.jsonl) and state directory ({prefix}state) under tmp_path."""
    env = {"ACP_AGENT_LOG": str(tmp_path / f"{prefix}agent.jsonl"),
           "ACP_AGENT_STATE_DIR": str(tmp_path / f"{prefix}state")}
    if steps is not None:
        env["ACP_AGENT_SCRIPT"] = json.dumps(steps)
    if next_steps is not None:
        env["ACP_AGENT_NEXT"] = json.dumps(next_steps)
    return env


def acp_agent_log(tmp_path: Path, event: str | None = None, *, prefix: str = "") -> list[dict]:
    """What the scripted ACP agent logged (of one kind of event, or all)."""
    path = tmp_path / f"{prefix}agent.jsonl"
    entries = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [e for e in entries if event is None or e["event"] == event]


# Codex's own sandbox (bubblewrap + seccomp) works in this container; where it does not, run
# the tests with TASKPIN_TEST_CODEX_SANDBOX=danger-full-access (approvals are unaffected).
CODEX_SANDBOX = os.environ.get("TASKPIN_TEST_CODEX_SANDBOX", "workspace-write")


def codex_options(codex_bin: str, api, tmp_path: Path, **options) -> dict:
    """A codex agent against the fake Responses API `api`, with its CODEX_HOME under tmp_path.
    approval_policy untrusted: Codex asks before every command not known to be read-only."""
    home = api.write_codex_home(tmp_path / "codex-home")
    return {"kind": "codex", "command": [codex_bin, "app-server"], "codex_home": str(home),
            "approval_policy": "untrusted", "sandbox": CODEX_SANDBOX, "env": api.env(), "stop_grace_s": 2,
            **options}


CLAUDE_MODEL = "claude-sonnet-4-5"


def claude_code_options(api, home: Path, **options) -> dict:
    """A claude-code agent against the fake Anthropic API `api`, with its HOME at `home`."""
    env = {**api.cli_env(home=home), **options.pop("env", {})}
    return {"kind": "claude-code", "model": CLAUDE_MODEL, "env": env, **options}
