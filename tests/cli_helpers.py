"""Running the real `taskpin` command as a subprocess, from a folder holding its configuration."""
from __future__ import annotations

import asyncio
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def clean_env(extra: dict | None = None) -> dict[str, str]:
    """This process's environment minus every TASKPIN_* and SLACK_* variable, plus `extra`."""
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith(("TASKPIN_", "SLACK_"))}
    return {**base, "PYTHONPATH": str(ROOT), **(extra or {})}


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


async def run_taskpin(cwd: Path, *args: str, env: dict | None = None, timeout: float = 90) -> Result:
    """`taskpin ARGS` in `cwd`, without blocking the event loop (the emulator serves it meanwhile)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, cwd=cwd, env=clean_env(env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(f"taskpin {' '.join(args)} did not exit within {timeout}s:\n{out.decode()}{err.decode()}") from None
    return Result(proc.returncode, out.decode(), err.decode())


def write_config(folder: Path, repo: Path, extra: str = "") -> Path:
    """A taskpin.toml with one real repository and one agent that is installed (python)."""
    path = folder / "taskpin.toml"
    path.write_text(f'''{extra}
[repos.app]
path = "{repo}"
base_branch = "main"

[agents.script]
kind = "command"
command = ["{sys.executable}", "-c", "print(1)"]
''')
    return path


def free_port() -> int:
    """A port nobody listens on right now (taskpin refuses port 0: it must be a real port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
