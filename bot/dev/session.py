"""A dev session: the emulator, the real bot in Socket Mode, a throwaway store, a repository, an agent."""
from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import git

from orchestrator import Settings

from ..demo import BOARD, demo_agent, demo_repo, emulator_slack_settings
from ..emulator import SlackEmulator
from ..runtime import Runtime

log = logging.getLogger(__name__)

OWNER, OTHER, APPROVER = "U_OWNER", "U_OTHER", "U_APPROVER"   # the emulator's alice, bob and carol
DEMO_AGENT = "demo-agent"


def scene_agent(pause: float = 0.1) -> dict:
    """The agent of the pictures and browser tests (scene_agent.py): the prompt's first word picks its part."""
    return {"kind": "command", "command": [sys.executable, str(Path(__file__).with_name("scene_agent.py")), str(pause)]}


class RepoProblem(ValueError):
    """A --repo that cannot host task worktrees; the message says how to fix it."""


def describe_repo(path: Path) -> tuple[str, str]:
    """(name, base branch) of a repository given with --repo: its folder name and checked-out branch."""
    try:
        repo = git.Repo(path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise RepoProblem(f"{path} is not a git repository: give --repo the top folder of a clone, "
                          "or leave --repo out for a throwaway one") from None
    with repo:
        if not repo.head.is_valid():
            raise RepoProblem(f"{path} has no commits yet: commit something on the branch tasks should start from")
        try:
            branch = repo.active_branch.name
        except TypeError:
            raise RepoProblem(f"{path} has a detached HEAD: check out the branch tasks should start from") from None
    return Path(repo.working_dir).name or "repo", branch


@dataclass
class DevOptions:
    repo: Path | None = None              # None: a throwaway repository with one commit
    agents: dict[str, dict] | None = None  # name -> agent config; None: the demo agent
    agent_pause: float = 0.8              # the demo agent's pause between steps


class DevSession:
    """Everything `taskpin dev` runs besides the page. The store and the worktrees live in a
    temporary folder that goes away on close; a given repository keeps the task branches."""

    def __init__(self, options: DevOptions | None = None) -> None:
        self.options = options or DevOptions()
        self.emu: SlackEmulator | None = None
        self.runtime: Runtime | None = None
        self.repo_name: str | None = None
        self.repo_path: Path | None = None
        self.agent_name: str | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    board_channel = BOARD
    users = {"owner": OWNER, "other": OTHER, "approver": APPROVER}

    async def start(self) -> "DevSession":
        self._tmp = tempfile.TemporaryDirectory(prefix="taskpin-dev-")
        try:
            settings = self.core_settings(Path(self._tmp.name))
            self.emu = await SlackEmulator(rate_limits=True).start()
            self.runtime = await Runtime.start(settings, emulator_slack_settings(self.emu))
            await self.emu.wait_socket()
        except BaseException:
            await self.close()
            raise
        return self

    def core_settings(self, root: Path) -> Settings:
        opts = self.options
        if opts.repo is not None:
            self.repo_path = opts.repo.resolve()
            self.repo_name, branch = describe_repo(self.repo_path)
        else:
            self.repo_path, self.repo_name, branch = demo_repo(root), "demo", "main"
        agents = opts.agents or {DEMO_AGENT: demo_agent(opts.agent_pause)}
        self.agent_name = next(iter(agents))
        repo = {"path": str(self.repo_path), "base_branch": branch}
        # `config` points at a file that does not exist: a taskpin.toml in the current folder must not
        # add its repositories and agents to the session (--agent takes the one it names from there).
        return Settings(_env_file=None, config=root / "none.toml",
                        database_url=f"sqlite+aiosqlite:///{root / 'dev.db'}",
                        workspaces_dir=root / "worktrees", log_dir=root / "logs",
                        repos={self.repo_name: repo},
                        agents=agents,
                        default_repo=self.repo_name, default_agent=self.agent_name,
                        approvers=[APPROVER])

    @property
    def emulator(self) -> SlackEmulator:
        """The running emulator, for the page and the scenes (they use the session between start and close)."""
        if self.emu is None:
            raise RuntimeError("the dev session is not started (or already closed)")
        return self.emu

    @property
    def approvers(self) -> list[str]:
        return list(self.runtime.core.settings.approvers) if self.runtime else [APPROVER]

    async def close(self) -> None:
        if self.runtime is not None:
            await self.runtime.close()
            self.runtime = None
        if self.emu is not None:
            await self.emu.stop()
            self.emu = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        if self.options.repo is not None and self.repo_path is not None:
            # The worktrees were in the temporary folder: forget them, keep their branches.
            with contextlib.suppress(Exception), git.Repo(self.repo_path) as repo:
                repo.git.worktree("prune")

    async def __aenter__(self) -> "DevSession":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.close()
