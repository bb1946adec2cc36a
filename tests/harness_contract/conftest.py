"""`kit`: one adapter at a time (command, acp, claude-code, codex), each with its fake model API."""
from __future__ import annotations

import pytest

from .kits import AcpKit, ClaudeCodeKit, CodexKit, CommandKit

KINDS = ["command", "acp", "claude-code", "codex"]


@pytest.fixture(params=KINDS)
async def kit(request, tmp_path):
    if request.param == "command":
        yield CommandKit(tmp_path)
    elif request.param == "acp":
        yield AcpKit(tmp_path)
    elif request.param == "claude-code":
        pytest.importorskip("claude_agent_sdk")
        from tests.fakes.anthropic_api import FakeAnthropic
        async with FakeAnthropic() as api:
            yield ClaudeCodeKit(tmp_path, api)
    else:
        from tests.fakes.openai_responses import FakeResponses
        async with FakeResponses() as api:
            yield CodexKit(tmp_path, api)
