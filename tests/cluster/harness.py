"""Several real `python -m bot.cli run --role ...` processes on one PostgreSQL database, talking
to the project's Slack emulator running in the test process."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.cli_helpers import clean_env, free_port
from tests.core.helpers import AGENT

BOARD = "C0CLUSTER"
FAST = {"TASKPIN_SLACK_RETRY_BASE_S": "0.1", "TASKPIN_SLACK_RETRY_MAX_S": "0.5", "TASKPIN_SLACK_TIMEOUT_S": "2",
        "TASKPIN_SLACK_PROBE_INTERVAL_S": "1", "TASKPIN_SOCKET_PING_INTERVAL_S": "1",
        "TASKPIN_BOARD_SYNC_INTERVAL_S": "0.2", "TASKPIN_OUTPUT_SUMMARY_INTERVAL_S": "0.5",
        "TASKPIN_MAX_ATTEMPTS": "1", "TASKPIN_STOP_GRACE_S": "1", "TASKPIN_RETRY_BACKOFF_S": "0.1"}


@dataclass
class Process:
    name: str
    role: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Cluster:
    """The processes of one test: each its own name, log file and HTTP port; one database, one
    taskpin.toml, one repository (the workers share the machine, so worktrees are reachable)."""

    emu: object
    tmp: Path
    repo: Path
    db_url: str
    agents: dict[str, list[dict] | dict]     # name -> steps, or {"steps": [...], "resume": False}
    on_approve: str = "none"
    processes: list[Process] = field(default_factory=list)

    def __post_init__(self):
        self.config = self.tmp / "taskpin.toml"
        lines = ["[repos.app]", f"path = {json.dumps(str(self.repo))}", 'base_branch = "main"',
                 f"on_approve = {json.dumps(self.on_approve)}", ""]
        for name, spec in self.agents.items():
            steps, resume = (spec, True) if isinstance(spec, list) else (spec["steps"], spec.get("resume", True))
            lines += [f"[agents.{name}]", 'kind = "command"',
                      f"command = [{json.dumps(sys.executable)}, {json.dumps(AGENT)}]", "stop_grace_s = 1",
                      f"resume = {'true' if resume else 'false'}", "", f"[agents.{name}.env]",
                      f"SCRIPTED_AGENT_SCRIPT = {json.dumps(json.dumps(steps))}", ""]
        self.config.write_text("\n".join(lines))

    def start(self, role: str, name: str, **env: str) -> Process:
        values = {**FAST, "TASKPIN_CONFIG": str(self.config), "TASKPIN_DATABASE_URL": self.db_url,
                  "TASKPIN_WORKER_NAME": name, "TASKPIN_WORKSPACES_DIR": str(self.tmp / "worktrees"),
                  "TASKPIN_LOG_DIR": str(self.tmp / "logs"), "TASKPIN_DEFAULT_AGENT": next(iter(self.agents)),
                  "TASKPIN_DEFAULT_REPO": "app", "TASKPIN_HTTP_HOST": "127.0.0.1",
                  "TASKPIN_HTTP_PORT": str(free_port())}
        if role != "worker":
            values.update(SLACK_BOT_TOKEN=self.emu.bot_token, SLACK_APP_TOKEN=self.emu.app_token,
                          SLACK_API_URL=self.emu.api_url, TASKPIN_BOARD_CHANNEL=BOARD)
        values.update(env)
        log = self.tmp / f"{name}.log"
        popen = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--role", role], cwd=self.tmp,
                                 env=clean_env(values), stdout=log.open("w"), stderr=subprocess.STDOUT)
        process = Process(name, role, popen, log)
        self.processes.append(process)
        return process

    def by_name(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    def kill9(self, process: Process) -> None:
        process.popen.send_signal(signal.SIGKILL)
        process.popen.wait(10)

    def check_alive(self) -> bool:
        """True; raises with the logs when a process that should run has exited."""
        for p in self.processes:
            if p.popen.returncode is None and p.popen.poll() is not None:
                raise AssertionError(f"{p.name} exited with {p.popen.returncode}:\n{p.text()}")
        return True

    async def stop_all(self, timeout: float = 20) -> None:
        """SIGTERM to every process, then wait without blocking the loop (the emulator, here,
        must answer their Socket Mode close handshakes); SIGKILL what is left."""
        for p in self.processes:
            if p.alive():
                p.popen.send_signal(signal.SIGTERM)
        deadline = asyncio.get_running_loop().time() + timeout
        while any(p.alive() for p in self.processes) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for p in self.processes:
            if p.alive():
                p.popen.kill()
                p.popen.wait(5)

    def logs(self) -> str:
        return "\n".join(f"----- {p.name} ({p.role}) -----\n{p.text()}" for p in self.processes)


def agent_processes(task_id: int) -> list[int]:
    """Live agent processes of a task on this machine (the runner puts TASKPIN_TASK_ID in their env)."""
    found = []
    marker = f"TASKPIN_TASK_ID={task_id}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as f:
                zombie = f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
        except OSError:
            continue
        if marker in env and not zombie and any(AGENT.encode() in part for part in _cmdline(entry)):
            found.append(int(entry))
    return found


def _cmdline(pid: str) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []
