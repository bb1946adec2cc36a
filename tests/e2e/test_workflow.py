"""How teams work, end to end through the Slack emulator with real agent processes: /task in one
line, worktrees that are ready to run, pull requests on approve (against a local fake GitHub)."""
from __future__ import annotations

import subprocess
import sys

from bot.ids import ActionId, make_action_id
from bot.listeners.commands import HELP
from orchestrator import TaskState
from tests.core.helpers import scripted, wait_state
from tests.core.test_pull_requests import CHANGING_AGENT, TOKEN, bare_remote
from tests.fakes.github_api import FakeGitHub

from .conftest import BOARD, OWNER
from .scenario import board_message, click_card, thread_of, wait_board, wait_thread
from .ui import ephemeral, every_ack_is_fast, fast, slash_task  # noqa: F401 - the fixture checks every ack

S = TaskState
PY = sys.executable


def _git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


# ---- /task in one line ---------------------------------------------------------------------------

async def test_one_line_task_picks_repo_agent_and_branch_and_refuses_what_it_cannot_use(emu, taskpin, git_repo):
    _git(git_repo, "branch", "release-2")
    agents = {"claude": scripted([{"finish": "done"}]), "codex": scripted([{"finish": "done"}])}
    repos = {"api": {"path": str(git_repo)}, "web": {"path": str(git_repo)}}
    runtime = await taskpin.start(agents, repos=repos, default_repo=None, default_agent=None)
    core = runtime.core

    ack = fast(await emu.slash_command(OWNER, "/task", "help"))
    assert ack.payload["text"] == HELP and "repo=NAME agent=NAME branch=BASE" in HELP

    fast(await emu.slash_command(OWNER, "/task", "Fix the flaky login test"))
    pick = await ephemeral(emu, OWNER, "pick one in the same line")
    assert "/task repo=api" in emu.text_of(pick) and "api, web" in emu.text_of(pick)

    fast(await emu.slash_command(OWNER, "/task", "repo=apx agent=codex Fix it"))
    assert "did you mean repo=api" in emu.text_of(await ephemeral(emu, OWNER, "no repository named"))
    fast(await emu.slash_command(OWNER, "/task", "repo=api agent=<!channel> Fix it"))
    refusal = await ephemeral(emu, OWNER, "no agent named")
    assert "claude, codex" in emu.text_of(refusal) and "<!channel>" not in str(refusal)
    fast(await emu.slash_command(OWNER, "/task", "rpo=api Fix it"))
    await ephemeral(emu, OWNER, "did you mean repo=")
    fast(await emu.slash_command(OWNER, "/task", "repo=api agent=codex Fix the API after #1 #2"))
    await ephemeral(emu, OWNER, "There is no task #1, #2 to wait for")
    assert await core.list_tasks() == [], "a refused line created a task"

    task = await slash_task(emu, core, "repo=web agent=codex branch=release-2 Fix the flaky login test")
    assert (task.repo, task.agent, task.base_branch, task.prompt) == ("web", "codex", "release-2",
                                                                      "Fix the flaky login test")
    created = await ephemeral(emu, OWNER, "Created *#1*")
    assert "web, codex, from `release-2`" in emu.text_of(created)
    await click_card(emu, OWNER, ActionId.DISPATCH, task.id)
    task = await wait_state(core, task.id, S.AWAITING_REVIEW)
    assert _git(git_repo, "merge-base", "--is-ancestor", "release-2", task.branch) == ""


# ---- worktrees that are ready to run -------------------------------------------------------------

async def test_copied_files_setup_and_ports_then_a_failing_setup_and_retry(emu, taskpin, tmp_path, git_repo):
    (git_repo / ".env").write_text("API_KEY=local-only\n")
    flag = tmp_path / "registry-up"
    setup = [[PY, "-c", "import os; open('deps.txt', 'w').write(os.environ['PORT']); print('added 3 packages')"],
             [PY, "-c", f"import os, sys; up = os.path.exists({str(flag)!r}); "
                        "print('npm ERR! network registry unreachable' if not up else 'ok'); sys.exit(0 if up else 2)"]]
    repos = {"app": {"path": str(git_repo), "copy": [".env", "config/local.yml"], "setup": setup, "ports": 10}}
    agent = scripted([{"echo_env": ["PORT", "TASKPIN_PORT_BASE"]}, {"finish": "done"}])
    runtime = await taskpin.start({"bot": agent}, repos=repos, port_base=41000)
    core = runtime.core

    task = await slash_task(emu, core, "Start the dev server")
    await click_card(emu, OWNER, ActionId.DISPATCH, task.id)
    warning = await wait_thread(emu, task.id, "not copied: config/local.yml")
    assert "⚠️" in emu.text_of(warning)
    failed = await wait_state(core, task.id, S.FAILED)
    result = await wait_thread(emu, task.id, "failed: setup command")
    assert "exited with 2" in emu.text_of(result) and "npm ERR! network registry unreachable" in emu.text_of(result)
    worktree = tmp_path / "worktrees" / str(task.id)
    assert (worktree / ".env").read_text() == "API_KEY=local-only\n"
    assert (worktree / "deps.txt").read_text() == "41000"
    assert "exited with 2" in failed.failure_reason

    flag.write_text("up")
    await click_card(emu, OWNER, ActionId.RETRY, task.id)
    await wait_state(core, task.id, S.BACKLOG)
    await click_card(emu, OWNER, ActionId.DISPATCH, task.id)
    task = await wait_state(core, task.id, S.AWAITING_REVIEW)
    log = "\n".join(core.tail_log(task.id, 300))
    assert "env PORT=41000" in log and "env TASKPIN_PORT_BASE=41000" in log
    assert ".env" not in task.diff.files and "deps.txt" in task.diff.files


# ---- pull requests on approve ------------------------------------------------------------------

async def test_approve_opens_a_pull_request_linked_from_card_and_thread(emu, taskpin, tmp_path, git_repo):
    bare = bare_remote(tmp_path, git_repo)
    async with FakeGitHub(token=TOKEN, repos={"acme/app": bare}) as github:
        repos = {"app": {"path": str(git_repo), "on_approve": "pull_request", "github_repo": "acme/app"}}
        agents = {"bot": {"kind": "command", "command": [PY, "-c", CHANGING_AGENT], "stop_grace_s": 1}}
        runtime = await taskpin.start(agents, repos=repos, github_api_url=github.url, github_token=TOKEN,
                                      github_retries=0)
        core = runtime.core
        task = await slash_task(emu, core, "Fix the flaky login test")
        await click_card(emu, OWNER, ActionId.DISPATCH, task.id)
        await wait_state(core, task.id, S.AWAITING_REVIEW)

        # GitHub refuses the token once: the approver hears why, the thread too, the card keeps Approve.
        github.fail("GET", "/pulls", 401, {"message": "Bad credentials"})
        await click_card(emu, OWNER, ActionId.APPROVE, task.id)
        told = await ephemeral(emu, OWNER, "GitHub refused the token")
        assert TOKEN not in str(told)
        await wait_thread(emu, task.id, "approval failed: could not open a pull request for")
        await wait_state(core, task.id, S.AWAITING_REVIEW)
        assert github.pulls == []

        await click_card(emu, OWNER, ActionId.APPROVE, task.id)
        await wait_state(core, task.id, S.COMPLETED)
        [pull] = github.pulls
        note = await wait_thread(emu, task.id, "pull request opened")
        assert f"<{pull['html_url']}|acme/app#1>" in str(note)
        thread_url = (await core.kv_get(f"slack.thread:{task.id}"))["url"]
        assert thread_url and thread_url in pull["body"] and "Fixed the flaky login test" in pull["body"]
        await wait_board(emu, lambda text: pull["html_url"] in str(board_message(emu)), what="the PR on the card")
        approve = make_action_id(ActionId.APPROVE, task.id)
        assert approve not in str(board_message(emu)), "a completed task still offers Approve"
        _, replies = thread_of(emu, task.id)
        assert not any(TOKEN in str(m) for m in replies + emu.messages(BOARD))
        assert BOARD
