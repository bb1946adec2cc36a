"""Approve runs the repository's on-approve action; hostile titles never become paths or refs."""
from __future__ import annotations

import subprocess

import pytest

from orchestrator import ActionRefused, TaskState

from .helpers import make_settings, scripted, started, wait_state

S = TaskState


def _git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def _edit_app(content: str) -> list[dict]:
    return [{"write_file": {"path": "app.py", "content": content}}, {"finish": "edited app.py"}]


@pytest.fixture
def repo_off_main(git_repo):
    """The user's checkout sits on another branch, so main can be merged into."""
    _git(git_repo, "checkout", "-q", "-b", "dev")
    return git_repo


async def test_approve_merges_into_base_without_touching_the_checkout(tmp_path, repo_off_main):
    repo = repo_off_main
    (repo / "scratch.txt").write_text("uncommitted user work\n")
    core = await started(make_settings(tmp_path, repo, {"bot": scripted(_edit_app("print('merged')\n"))},
                                       on_approve="merge"))
    try:
        task = await core.create_task(prompt="edit", owner="U1")
        await core.dispatch(task.id, actor="U1")
        task = await wait_state(core, task.id, S.AWAITING_REVIEW)
        assert (task.diff.files_changed, task.diff.insertions, task.diff.deletions) == (1, 1, 1)
        await core.approve(task.id, actor="U1")
        assert (await core.get_task(task.id)).state is S.COMPLETED
        assert _git(repo, "show", "main:app.py") == "print('merged')"
        assert _git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "dev"
        assert (repo / "app.py").read_text() == "print('hi')\n"
        assert _git(repo, "status", "--porcelain") == "?? scratch.txt"
    finally:
        await core.close()


async def test_merge_conflict_refuses_and_leaves_both_branches(tmp_path, repo_off_main):
    repo = repo_off_main
    core = await started(make_settings(tmp_path, repo, {"bot": scripted(_edit_app("print('agent')\n"))},
                                       on_approve="merge"))
    try:
        task = await core.create_task(prompt="edit", owner="U1")
        await core.dispatch(task.id, actor="U1")
        task = await wait_state(core, task.id, S.AWAITING_REVIEW)
        # Meanwhile someone changes the same line on main.
        _git(repo, "checkout", "-q", "main")
        (repo / "app.py").write_text("print('human')\n")
        _git(repo, "commit", "-qam", "human edit")
        _git(repo, "checkout", "-q", "dev")
        main_before, branch_before = _git(repo, "rev-parse", "main"), _git(repo, "rev-parse", task.branch)
        with pytest.raises(ActionRefused, match="app.py"):
            await core.approve(task.id, actor="U1")
        assert (await core.get_task(task.id)).state is S.AWAITING_REVIEW
        assert _git(repo, "rev-parse", "main") == main_before
        assert _git(repo, "rev-parse", task.branch) == branch_before
    finally:
        await core.close()


async def test_merge_into_a_checked_out_base_is_refused_clearly(tmp_path, git_repo):
    core = await started(make_settings(tmp_path, git_repo, {"bot": scripted(_edit_app("x = 1\n"))},
                                       on_approve="merge"))
    try:
        task = await core.create_task(prompt="edit", owner="U1")
        await core.dispatch(task.id, actor="U1")
        await wait_state(core, task.id, S.AWAITING_REVIEW)
        with pytest.raises(ActionRefused, match="main is checked out in .*dedicated clone"):
            await core.approve(task.id, actor="U1")
        assert (git_repo / "app.py").read_text() == "print('hi')\n"
    finally:
        await core.close()


async def test_approve_push_sends_the_branch_to_the_remote(tmp_path, git_repo):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    _git(git_repo, "remote", "add", "origin", str(remote))
    core = await started(make_settings(tmp_path, git_repo, {"bot": scripted(_edit_app("y = 2\n"))},
                                       on_approve="push"))
    try:
        task = await core.create_task(prompt="edit", owner="U1")
        await core.dispatch(task.id, actor="U1")
        task = await wait_state(core, task.id, S.AWAITING_REVIEW)
        await core.approve(task.id, actor="U1")
        assert _git(remote, "rev-parse", task.branch) == _git(git_repo, "rev-parse", task.branch)
    finally:
        await core.close()


HOSTILE = ["../../etc/passwd", "; rm -rf / #", "$(touch pwned) `id`", "Ünïcødé 修复 🚀", "x" * 500,
           "refs/heads/main", "-rf --force", "a..b@{1}~^:?*[\\"]


@pytest.mark.parametrize("title", HOSTILE)
async def test_hostile_titles_never_become_paths_refs_or_shell_words(tmp_path, git_repo, title):
    steps = [{"write_file": {"path": "out.txt", "content": "ok\n"}}, {"finish": "ok"}]
    core = await started(make_settings(tmp_path, git_repo, {"bot": scripted(steps)}))
    try:
        task = await core.create_task(prompt=title, title=title[:200], owner="U1")
        assert task.branch.startswith(f"taskpin/{task.id}-")
        subprocess.run(["git", "check-ref-format", "--branch", task.branch], check=True, capture_output=True)
        assert ".." not in task.branch and " " not in task.branch and len(task.branch) < 60
        await core.dispatch(task.id, actor="U1")
        await wait_state(core, task.id, S.AWAITING_REVIEW)
        assert (tmp_path / "worktrees" / str(task.id) / "out.txt").exists()
        assert not any(tmp_path.rglob("pwned")) and not (git_repo / "pwned").exists()
        assert not (tmp_path / "etc").exists()
        assert (await core.get_task(task.id)).title == title[:200]
    finally:
        await core.close()
