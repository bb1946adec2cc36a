"""on_approve = "pull_request" through the core: a real agent process, a real repository with a
bare repository as its remote, and a local fake of GitHub's REST API (tests/fakes/github_api.py)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import update

from orchestrator import ActionRefused, TaskNotice, TaskState
from orchestrator.github import repo_from_remote_url
from orchestrator.store.tables import TaskRow
from tests.fakes.github_api import FakeGitHub

from .helpers import Recorder, make_settings, started, wait_state, wait_until

S = TaskState
TOKEN = "ghp_faketoken0123456789abcdef"
# An agent that makes a new commit every run (a fresh file) and says what it did.
CHANGING_AGENT = ("import json, sys, uuid; sys.stdin.readline(); "
                  "open(f'change-{uuid.uuid4().hex[:8]}.txt', 'w').write('x\\n'); "
                  "print(json.dumps({'type': 'finished', 'summary': 'Fixed the flaky login test'}), flush=True)")


def _git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def bare_remote(tmp_path: Path, repo: Path) -> Path:
    bare = tmp_path / "remote.git"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    _git(repo, "remote", "add", "origin", str(bare))
    _git(repo, "push", "-q", "origin", "main")
    return bare


def pr_settings(tmp_path, repo, api_url, *, token=TOKEN, github_repo="acme/app", **overrides):
    agents = {"bot": {"kind": "command", "command": [sys.executable, "-c", CHANGING_AGENT], "stop_grace_s": 1}}
    repos = {"app": {"path": str(repo), "base_branch": "main", "on_approve": "pull_request",
                     "github_repo": github_repo}}
    return make_settings(tmp_path, repo, agents, repos=repos, github_api_url=api_url, github_token=token,
                         github_retries=0, **overrides)


@pytest.fixture
async def github(tmp_path, git_repo):
    bare = bare_remote(tmp_path, git_repo)
    async with FakeGitHub(token=TOKEN, repos={"acme/app": bare}) as fake:
        fake.bare = bare
        yield fake


async def to_review(core, title="Fix the flaky login test"):
    task = await core.create_task(prompt=title, owner="U1")
    await core.dispatch(task.id, actor="U1")
    return await wait_state(core, task.id, S.AWAITING_REVIEW)


def everything_said(core, rec, task_id) -> str:
    return "\n".join([*core.tail_log(task_id, 1000), *(repr(e) for e in rec.events)])


async def test_approve_pushes_the_branch_and_opens_one_pull_request(tmp_path, git_repo, github):
    core = await started(pr_settings(tmp_path, git_repo, github.url))
    rec = Recorder(core)

    async def link(task_id):
        return f"https://chat.example/thread/{task_id}"
    core.pull_requests.task_link = link
    try:
        task = await to_review(core)
        done = await core.approve(task.id, actor="U1")
        assert done.state is S.COMPLETED
        assert _git(github.bare, "rev-parse", task.branch) == _git(git_repo, "rev-parse", task.branch)
        [pull] = github.pulls
        assert pull["title"] == "Fix the flaky login test"
        assert pull["head"]["ref"] == task.branch and pull["base"]["ref"] == "main"
        assert "Fixed the flaky login test" in pull["body"]                      # the agent's summary
        assert "+1 −0 in 1 file" in pull["body"] and "`change-" in pull["body"]   # the diff summary
        assert f"https://chat.example/thread/{task.id}" in pull["body"]          # the link back
        assert all(r.authorized for r in github.requests)
        [lookup] = github.of("GET", "/pulls")
        assert lookup.query == {"head": f"acme:{task.branch}", "state": "open"}
        ref = await core.pull_requests.get(task.id)
        assert ref.url == "https://github.example/acme/app/pull/1" and ref.label == "acme/app#1"
        assert await core.pull_requests.urls() == {task.id: ref.url}
        await wait_until(lambda: rec.of(TaskNotice), what="the notice")
        [notice] = rec.of(TaskNotice)
        assert notice.link == ref.url and "opened" in notice.text
        assert TOKEN not in everything_said(core, rec, task.id)
    finally:
        await core.close()


async def test_approving_again_after_a_lost_answer_never_opens_a_second(tmp_path, git_repo, github):
    """GitHub opened the pull request but its answer was a 502: the task goes back to review
    with the reason; approving again finds that pull request instead of opening another."""
    github.fail("POST", "/pulls", 502, {"message": "Server Error"}, after=True)
    core = await started(pr_settings(tmp_path, git_repo, github.url))
    try:
        task = await to_review(core)
        with pytest.raises(ActionRefused, match=r"HTTP 502.*approve again in a moment"):
            await core.approve(task.id, actor="U1")
        assert (await core.get_task(task.id)).state is S.AWAITING_REVIEW
        done = await core.approve(task.id, actor="U1")
        assert done.state is S.COMPLETED
        assert len(github.pulls) == 1 and len(github.of("POST", "/pulls")) == 1
        assert (await core.pull_requests.get(task.id)).number == 1
    finally:
        await core.close()


async def test_a_422_already_exists_between_lookup_and_create_reuses_it(tmp_path, git_repo, github):
    core = await started(pr_settings(tmp_path, git_repo, github.url))
    try:
        task = await to_review(core)
        # Someone opened it by hand a moment ago; the first lookup does not see it yet.
        _git(git_repo, "push", "-q", "origin", task.branch)
        github.pulls.append({"repo": "acme/app", "number": 1, "state": "open", "title": "by hand", "body": "",
                             "head": {"ref": task.branch}, "base": {"ref": "main"},
                             "html_url": "https://github.example/acme/app/pull/1"})
        github.fail("GET", "/pulls", 200, [])
        await core.approve(task.id, actor="U1")
        assert len(github.pulls) == 1
        assert [r.method for r in github.requests] == ["GET", "POST", "GET"]
        assert (await core.pull_requests.get(task.id)).number == 1
    finally:
        await core.close()


@pytest.mark.parametrize("case", ["401", "404", "422", "500", "unreachable"])
async def test_api_errors_say_what_to_do_and_leave_the_task_in_review(tmp_path, git_repo, github, case):
    settings = {"401": dict(token="ghp_wrong"), "404": dict(github_repo="acme/elsewhere"),
                "422": {}, "500": {}, "unreachable": {}}[case]
    url = "http://127.0.0.1:9" if case == "unreachable" else github.url
    if case == "422":
        github.fail("POST", "/pulls", 422, {"message": "Validation Failed",
                                            "errors": [{"message": "No commits between main and the branch"}]})
    if case == "500":
        github.fail("GET", "/pulls", 500, {"message": "Internal"})
    expected = {"401": r"GitHub refused the token \(401: Bad credentials\); set TASKPIN_GITHUB_TOKEN",
                "404": r"no repository acme/elsewhere that the token can see \(404\); check `github_repo`",
                "422": r"refused to open a pull request on acme/app \(422: Validation Failed; No commits between",
                "500": r"HTTP 500.*GitHub's side: approve again in a moment",
                "unreachable": r"could not reach GitHub at http://127.0.0.1:9"}[case]
    core = await started(pr_settings(tmp_path, git_repo, url, **settings))
    rec = Recorder(core)
    try:
        task = await to_review(core)
        with pytest.raises(ActionRefused, match=expected) as refused:
            await core.approve(task.id, actor="U1")
        assert "ghp_" not in str(refused.value)
        task = await core.get_task(task.id)
        assert task.state is S.AWAITING_REVIEW and github.pulls == []
        last = (await core.history(task.id))[-1]
        assert last.to_state is S.AWAITING_REVIEW and "could not open a pull request for" in last.reason
        assert TOKEN not in everything_said(core, rec, task.id)
    finally:
        await core.close()


async def test_without_a_token_the_approval_is_refused_before_it_takes_the_task(tmp_path, git_repo, github,
                                                                                monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    core = await started(pr_settings(tmp_path, git_repo, github.url, token=None))
    try:
        task = await to_review(core)
        with pytest.raises(ActionRefused, match="need a GitHub token: set TASKPIN_GITHUB_TOKEN"):
            await core.approve(task.id, actor="U1")
        assert [r.to_state for r in await core.history(task.id)][-1] is S.AWAITING_REVIEW
        assert not any(r.to_state is S.APPROVING for r in await core.history(task.id))
        assert github.requests == []
    finally:
        await core.close()


async def test_a_rejected_push_is_explained_and_nothing_is_opened(tmp_path, git_repo, github):
    hook = github.bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected: pushes are closed' >&2\nexit 1\n")
    hook.chmod(0o755)
    core = await started(pr_settings(tmp_path, git_repo, github.url))
    try:
        task = await to_review(core)
        with pytest.raises(ActionRefused, match="Pushing .* failed: .*protected: pushes are closed"):
            await core.approve(task.id, actor="U1")
        assert (await core.get_task(task.id)).state is S.AWAITING_REVIEW and github.requests == []
    finally:
        await core.close()


async def test_changes_requested_after_a_pull_request_exists_go_to_the_same_one(tmp_path, git_repo, github):
    github.fail("POST", "/pulls", 502, after=True)     # the pull request exists; taskpin heard a 502
    core = await started(pr_settings(tmp_path, git_repo, github.url))
    rec = Recorder(core)
    try:
        task = await to_review(core)
        with pytest.raises(ActionRefused):
            await core.approve(task.id, actor="U1")
        first_head = _git(github.bare, "rev-parse", task.branch)
        await core.request_changes(task.id, "also cover the logout test", actor="U1")
        await wait_until(lambda: sum("finished:" in line for line in core.tail_log(task.id, 500)) >= 2,
                         what="the second run")
        task = await wait_state(core, task.id, S.AWAITING_REVIEW)
        local_head = _git(git_repo, "rev-parse", task.branch)
        assert local_head != first_head
        await wait_until(lambda: _git(github.bare, "rev-parse", task.branch) == local_head,
                         what="the new commits pushed at review")
        await wait_until(lambda: any("new commits pushed" in n.text for n in rec.of(TaskNotice)), what="notice")
        await core.approve(task.id, actor="U1")
        assert len(github.pulls) == 1 and len(github.of("POST", "/pulls")) == 1
        assert any("updated" in n.text and n.link == github.pulls[0]["html_url"] for n in rec.of(TaskNotice))
    finally:
        await core.close()


async def test_github_enterprise_by_base_url(tmp_path, git_repo):
    bare = bare_remote(tmp_path, git_repo)
    async with FakeGitHub(token=TOKEN, repos={"acme/app": bare}, prefix="/api/v3") as enterprise:
        core = await started(pr_settings(tmp_path, git_repo, enterprise.url))
        try:
            task = await to_review(core)
            await core.approve(task.id, actor="U1")
            assert {r.path for r in enterprise.requests} == {"/api/v3/repos/acme/app/pulls"}
            assert len(enterprise.pulls) == 1
        finally:
            await core.close()


@pytest.mark.parametrize("url, repo", [
    ("git@github.com:acme/api.git", "acme/api"),
    ("https://github.com/acme/api.git", "acme/api"),
    ("https://github.com/acme/api", "acme/api"),
    ("ssh://git@ghe.corp.example/acme/api.git", "acme/api"),
    ("https://x-access-token:abc@github.com/acme/api.git", "acme/api"),
    ("/srv/git/api.git", None),
    ("https://github.com/acme", None),
    ("", None),
])
def test_github_repository_from_the_remote_url(url, repo):
    assert repo_from_remote_url(url) == repo


def test_pull_request_ref_roundtrip_through_json():
    from orchestrator.github import PullRequestRef

    ref = PullRequestRef("acme/app", 7, "https://github.example/acme/app/pull/7", "taskpin/1-x")
    assert PullRequestRef.from_dict(json.loads(json.dumps(ref.to_dict()))) == ref
    assert PullRequestRef.from_dict({"number": "x"}) is None


async def test_an_approval_interrupted_by_a_crash_settles_on_what_landed(tmp_path, git_repo, github):
    """Recovery of a task left in approving: completed when its pull request was recorded and the
    branch is on the remote, back in review (approve again) when it never got that far."""
    from orchestrator.recovery import settle_approval

    core = await started(pr_settings(tmp_path, git_repo, github.url))
    try:
        landed, lost = await to_review(core, "First"), await to_review(core, "Second")
        await core.approve(landed.id, actor="U1")
        for task in (landed, lost):
            task = await core.get_task(task.id)
            if task.state is S.COMPLETED:   # as a crash right after the pull request would have left it
                async with core.store.session() as session, session.begin():
                    await session.execute(update(TaskRow).where(TaskRow.id == task.id)
                                          .values(state=S.APPROVING.value))
            else:
                await core.world.transition(task, S.APPROVING, actor="U1", reason="approving (pull_request)")
        for task_id in (landed.id, lost.id):
            await settle_approval(core.world, await core.get_task(task_id))
        assert (await core.get_task(landed.id)).state is S.COMPLETED
        assert (await core.get_task(lost.id)).state is S.AWAITING_REVIEW
        assert len(github.pulls) == 1
    finally:
        await core.close()
