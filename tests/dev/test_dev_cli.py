"""`taskpin dev` as a newcomer runs it: a real subprocess that serves the page on 127.0.0.1 and stops
cleanly on Ctrl-C or SIGTERM; --repo and --agent use a real repository and a configured agent."""
from __future__ import annotations

import json
import queue
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, git

STARTUP_S = 60


class DevProcess:
    def __init__(self, cwd: Path, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "dev", "--port", "0", "--fast", *args], cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(cwd)})
        self.lines: queue.Queue[str] = queue.Queue()
        self.out: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_line(self, pattern: str) -> re.Match:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.out.append(line)
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no line matching {pattern!r}; stdout so far: {''.join(self.out)}; "
                             f"stderr: {self.proc.stderr.read() if self.proc.poll() is not None else '(running)'}")

    def stop(self, sig: int) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, "".join(self.out) + "".join(self._drain()) + out, err

    def _drain(self):
        while not self.lines.empty():
            yield self.lines.get()


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def act(base: str, headers: dict | None = None, **payload) -> dict:
    request = urllib.request.Request(base + "api/act", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read())


def wait_state(base: str, predicate, user: str = "U_OWNER", timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        state = json.loads(get(f"{base}api/state?user={user}"))
        if value := predicate(state):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"the workspace never got there: {json.dumps(state)[:3000]}")
        time.sleep(0.1)


def elements(message: dict):
    for block in message.get("blocks") or []:
        yield from block.get("elements") or []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_taskpin_dev_serves_the_page_on_loopback_and_stops_cleanly(tmp_path, sig):
    dev = DevProcess(tmp_path)
    try:
        base = dev.wait_line(r"open (http://127\.0\.0\.1:\d+/)")[1]
        listens = dev.wait_line(r"listens on (\S+) only")
        assert listens[1] == "127.0.0.1"
        workdir = Path(dev.wait_line(r"repository: demo \((\S+)\)")[1]).parent
        page = get(base)
        assert "taskpin dev" in page and '/static/app.js' in page
        assert "renderMrkdwn" in get(base + "static/mrkdwn.js")
        board = wait_state(base, lambda s: s["pins"] and s["messages"][0])   # the bot pinned its board
        assert board["blocks"][0]["text"]["text"] == "Agent tasks"
        for header in ({"Origin": "http://evil.example"}, {"Host": "evil.example"}):   # other sites, DNS rebinding
            with pytest.raises(urllib.error.HTTPError) as refused:
                act(base, headers=header, type="command", user="U_OWNER", text="/task from elsewhere")
            assert refused.value.code == 403
        assert "from elsewhere" not in get(base + "api/state")
    except BaseException:
        dev.proc.kill()
        raise
    code, out, err = dev.stop(sig)
    assert code == 0, err[-3000:]
    assert "taskpin dev: stopped" in out
    assert "Traceback" not in err, err[-3000:]
    assert not workdir.exists(), "the throwaway store and repository are removed"
    port = int(base.rsplit(":", 1)[1].strip("/"))
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_taskpin_dev_with_a_given_repository_and_a_configured_agent(tmp_path, git_repo):
    (tmp_path / "taskpin.toml").write_text(textwrap.dedent(f"""
        [agents.mine]
        kind = "command"
        command = [{json.dumps(sys.executable)}, {json.dumps(str(ROOT / "bot" / "dev" / "scene_agent.py"))}, "0.05"]
    """))
    dev = DevProcess(tmp_path, "--repo", str(git_repo), "--agent", "mine")
    try:
        base = dev.wait_line(r"open (http://127\.0\.0\.1:\d+/)")[1]
        facts = dev.wait_line(r"repository: (\S+) \((\S+)\) · agent: (\S+)")
        assert facts.groups() == (git_repo.name, str(git_repo), "mine")
        assert act(base, type="command", user="U_OWNER", text="/task permission to migrate the dev database") == {"ok": True}
        board = wait_state(base, lambda s: s["pins"] and next(
            (m for m in s["messages"] if any(e.get("action_id", "").startswith("task_dispatch") for e in elements(m))), None))
        dispatch = next(e for e in elements(board) if e.get("action_id", "").startswith("task_dispatch"))
        assert act(base, type="click", user="U_OWNER", ts=board["ts"], action_id=dispatch["action_id"],
                   value=dispatch["value"]) == {"ok": True}
        question = wait_state(base, lambda s: next((r for replies in s["threads"].values() for r in replies
                                                    if "wants to use" in json.dumps(r)), None))
        assert "alembic upgrade head" in json.dumps(question)
        assert "taskpin/1-" in git(git_repo, "branch", "--list", "taskpin/*")   # the task's branch, in the given repo
    except BaseException:
        dev.proc.kill()
        raise
    code, out, err = dev.stop(signal.SIGTERM)
    assert code == 0, err[-3000:]
    assert len(git(git_repo, "worktree", "list").splitlines()) == 1, "the session's worktrees are forgotten"
    assert "taskpin/1-" in git(git_repo, "branch", "--list", "taskpin/*"), "the task branch stays"


@pytest.mark.parametrize("args, message", [
    (["--repo", "no-such-folder"], "no-such-folder is not a git repository: give --repo the top folder of a clone"),
    (["--agent", "claud"], "unknown agent 'claud' (did you mean 'claude'?) in taskpin.toml"),
])
def test_taskpin_dev_explains_a_bad_repo_or_agent_in_one_line(tmp_path, args, message):
    (tmp_path / "taskpin.toml").write_text('[agents.claude]\nkind = "claude-code"\n')
    result = subprocess.run([sys.executable, "-m", "bot.cli", "dev", "--port", "0", *args], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
