"""How taskpin starts Claude Code through claude-agent-sdk, with the SDK's public seams only.

The SDK starts ``cli_path`` with its own environment merged in, and has no option for a
process group. So ``cli_path`` is a per-session sh shim that runs launcher.py, which strips
taskpin's secrets, makes the CLI a process-group leader (with PR_SET_PDEATHSIG), writes the
CLI's pid to a file, and execs the real CLI. Everything else goes through
ClaudeAgentOptions (env, cwd, can_use_tool, stderr, resume...).
"""
from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import HarnessError
from .options import ClaudeCodeOptions
from .sdk_seams import bundled_cli

try:  # the SDK is an optional dependency: only agents of this kind need it
    from claude_agent_sdk import ClaudeAgentOptions
    SDK_IMPORT_ERROR: str | None = None
except ImportError as _exc:  # pragma: no cover - depends on the installation
    ClaudeAgentOptions = None  # type: ignore[assignment,misc]
    SDK_IMPORT_ERROR = str(_exc)

LAUNCHER = Path(__file__).with_name("launcher.py")
PID_WAIT_S = 5.0
NO_CLI = ("the Claude Code CLI was not found: this claude-agent-sdk wheel has no bundled CLI and "
          "`claude` is not on PATH; install @anthropic-ai/claude-code or set cli_path")


def real_cli(cli_path: str | None) -> str | None:
    """The Claude Code CLI to run: cli_path, else the SDK's bundled one, else `claude` on PATH."""
    if cli_path:
        return str(Path(cli_path).expanduser()) if os.sep in cli_path else (shutil.which(cli_path) or cli_path)
    bundled = bundled_cli()
    return str(bundled) if bundled is not None else shutil.which("claude")


class CliLauncher:
    """The shim the SDK runs as its CLI, in a private temp directory with the pid file."""

    def __init__(self, cli: str, keep: Mapping[str, str]):
        self.dir = Path(tempfile.mkdtemp(prefix="taskpin-claude-"))
        self.shim = self.dir / "claude"
        self.pidfile = self.dir / "cli.pid"
        self.shim.write_text("#!/bin/sh\nexec " + shlex.join([sys.executable, "-I", str(LAUNCHER)]) + ' "$@"\n')
        self.shim.chmod(0o700)
        self.env = {
            "TASKPIN_CLAUDE_CLI": cli,
            "TASKPIN_CLAUDE_KEEP": ",".join(k for k in keep if k.startswith(("SLACK_", "TASKPIN_"))),
            "TASKPIN_CLAUDE_PIDFILE": str(self.pidfile),
        }

    async def pid(self) -> int | None:
        """The CLI's pid (it leads its own process group), once the launcher wrote it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PID_WAIT_S
        while True:
            try:
                return int(self.pidfile.read_text())
            except (OSError, ValueError):
                if loop.time() >= deadline:
                    return None
            await asyncio.sleep(0.02)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def sdk_options(opts: ClaudeCodeOptions, *, workdir: str, env: Mapping[str, str], launcher: CliLauncher,
                can_use_tool: Callable[..., Any], stderr: Callable[[str], None],
                resume_id: str | None) -> Any:
    if ClaudeAgentOptions is None:
        raise HarnessError(f"the claude-code agent needs the claude-agent-sdk package: {SDK_IMPORT_ERROR}")
    kwargs: dict[str, Any] = dict(
        cwd=workdir,
        env={**env, **launcher.env},
        cli_path=str(launcher.shim),
        permission_mode=opts.permission_mode,
        can_use_tool=can_use_tool,
        stderr=stderr,
        # Claude Code's own system prompt (the SDK's default is an empty one).
        system_prompt={"type": "preset", "preset": "claude_code"},
    )
    if opts.model:
        kwargs["model"] = opts.model
    if opts.allowed_tools:
        kwargs["allowed_tools"] = list(opts.allowed_tools)
    if opts.disallowed_tools:
        kwargs["disallowed_tools"] = list(opts.disallowed_tools)
    if opts.max_turns:
        kwargs["max_turns"] = opts.max_turns
    if opts.max_budget_usd is not None:
        kwargs["max_budget_usd"] = opts.max_budget_usd
    if opts.settings:
        kwargs["settings"] = (opts.settings if opts.settings.lstrip().startswith("{")
                              else str(Path(opts.settings).expanduser()))
    if resume_id:
        kwargs["resume"] = resume_id
    return ClaudeAgentOptions(**kwargs)
