"""The two things taskpin needs that claude-agent-sdk has no public API for, isolated here
and pinned by tests/test_claude_code_seams.py (which fails loudly when the pinned SDK or its
bundled CLI changes them):

- where the SDK's wheel keeps its bundled Claude Code CLI (``_bundled/claude``): the launcher
  wrapper must exec the real CLI, and `taskpin check` says when there is none;
- what a resumed session had already cost: the CLI restores its ``total_cost_usd`` from the
  session's transcript (``~/.claude/projects/*/<id>.jsonl``, ``cost-state`` records), and
  Usage must count only what is new.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
from collections.abc import Mapping
from pathlib import Path

try:
    import claude_agent_sdk as _sdk
except ImportError:  # pragma: no cover - depends on the installation
    _sdk = None  # type: ignore[assignment]


def bundled_cli() -> Path | None:
    if _sdk is None:
        return None
    path = Path(_sdk.__file__).parent / "_bundled" / ("claude.exe" if os.name == "nt" else "claude")
    return path if path.is_file() else None


def _config_dir(env: Mapping[str, str]) -> Path | None:
    if env.get("CLAUDE_CONFIG_DIR"):
        return Path(env["CLAUDE_CONFIG_DIR"]).expanduser()
    home = env.get("HOME") or os.environ.get("HOME")
    return Path(home) / ".claude" if home else None


def resumed_cost_baseline(session_id: str | None, env: Mapping[str, str]) -> float | None:
    """What a resumed session had already cost: the last cost record in its transcript.

    None when it cannot be found (then the first result's share is estimated).
    """
    base = _config_dir(env)
    if not session_id or base is None:
        return None
    best: float | None = None
    for path in glob.glob(str(base / "projects" / "*" / f"{glob.escape(session_id)}.jsonl")):
        try:
            with open(path, "rb") as fh:
                for raw in fh:
                    if b'"cost-state"' not in raw:
                        continue
                    with contextlib.suppress(ValueError):
                        record = json.loads(raw)
                        if record.get("type") == "cost-state" and isinstance(record.get("totalCostUSD"), (int, float)):
                            best = float(record["totalCostUSD"])
        except OSError:
            continue
    return best


