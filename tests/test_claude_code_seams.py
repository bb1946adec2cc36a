"""What the claude-code adapter needs from claude-agent-sdk beyond its public options, pinned:
these tests fail loudly when an upgrade of the SDK (or its bundled CLI) changes them."""
from __future__ import annotations

import dataclasses
import re
import sys
import tomllib
import uuid
from pathlib import Path

import pytest

from orchestrator.config import AgentConfig
from orchestrator.harness import Finished, SessionIdAssigned, SessionSpec, build_harness
from orchestrator.harness.claude_code.sdk_seams import bundled_cli, resumed_cost_baseline
from tests.harness_helpers import claude_code_options, collect, of

sdk = pytest.importorskip("claude_agent_sdk")
ROOT = Path(__file__).resolve().parent.parent
CALL_COST = 100 * 3e-6 + 20 * 15e-6


def test_the_installed_sdk_is_the_pinned_version():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [pin] = [d for d in deps if d.startswith("claude-agent-sdk")]
    assert re.fullmatch(r"claude-agent-sdk==[\d.]+", pin.split("#")[0].strip()), "pin the version you tested"
    assert sdk.__version__ == pin.split("==")[1].strip()


def test_the_public_options_the_adapter_uses_exist():
    fields = {f.name for f in dataclasses.fields(sdk.ClaudeAgentOptions)}
    assert {"cli_path", "env", "cwd", "stderr", "can_use_tool", "resume", "permission_mode", "settings",
            "system_prompt", "allowed_tools", "disallowed_tools", "max_turns", "max_budget_usd", "model"} <= fields


def test_the_wheel_bundles_the_cli():
    cli = bundled_cli()
    assert cli is not None and cli.is_file(), "the SDK no longer bundles its CLI at _bundled/claude"


async def test_a_session_leaves_the_sdk_unpatched_and_its_cost_is_found_for_a_resume(tmp_path):
    import anyio
    from claude_agent_sdk._internal.transport import subprocess_cli

    from tests.fakes.anthropic_api import FakeAnthropic, text

    workdir = tmp_path / "wt"
    workdir.mkdir()
    async with FakeAnthropic() as api:
        api.script(text("done"))
        options = claude_code_options(api, tmp_path / "home")
        harness = build_harness("claude", AgentConfig(**options))
        session = await harness.start(SessionSpec(task_id=1, workdir=workdir, prompt="hi",
                                                  env={"TASKPIN_ATTEMPT_TOKEN": uuid.uuid4().hex}))
        try:
            events = await collect(session, timeout=60)
        finally:
            await session.stop()
    assert isinstance(events[-1], Finished)
    assert subprocess_cli.anyio is anyio and "orchestrator" not in sys.modules["anyio"].__name__
    [sid] = of(events, SessionIdAssigned)
    baseline = resumed_cost_baseline(sid.session_id, options["env"])
    assert baseline == pytest.approx(CALL_COST), "the CLI's transcript no longer records cost-state"
