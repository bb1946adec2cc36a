"""Worktree lifecycle against real temporary git repositories."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.workspaces import MergeConflict, WorkspaceError, Workspaces, branch_name, slugify


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(autouse=True)
def hermetic_git(monkeypatch, tmp_path):
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)
    for kind in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{kind}_NAME", "Tester")
        monkeypatch.setenv(f"GIT_{kind}_EMAIL", "tester@example.com")


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def repo(tmp_path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    write(path / "README.md", "hello\n")
    write(path / "keep.txt", "one\ntwo\nthree\n")
    write(path / "gone.txt", "bye\n")
    write(path / ".gitignore", "*.log\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "init")
    return path


@pytest.fixture
def ws(tmp_path) -> Workspaces:
    return Workspaces(tmp_path / "worktrees")


def snapshot(repo: Path) -> dict:
    """Main checkout state: index bytes (read before status can refresh it), HEAD, files, status."""
    index = (repo / ".git" / "index").read_bytes()
    files = {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(repo.rglob("*")) if p.is_file() and ".git" not in p.relative_to(repo).parts}
    return {"index": index, "head": git(repo, "symbolic-ref", "HEAD"), "files": files,
            "status": git(repo, "status", "--porcelain", "-uall")}


def make_task(ws: Workspaces, repo: Path, task_id: int = 1, title: str = "Fix bug") -> tuple[str, Path]:
    branch = branch_name(task_id, title)
    return branch, ws.create(repo, "main", task_id, branch)


# ---- names --------------------------------------------------------------------------------

HOSTILE = ["../../etc/passwd", "; rm -rf /", "$(whoami)", "`id`", "Ünïcødé 修复 🚀", "x" * 500,
           "a " * 250, ".lock", "foo.lock", "a..b", "@{", "@{-1}", "trailing.", "trailing/", "", "   ",
           "-leading", "HEAD", "refs/heads/main", "a\nb\tc", "ø\x00\x7f~^:?*[\\"]


@pytest.mark.parametrize("title", HOSTILE)
def test_hostile_titles_give_valid_short_branch_names(title, tmp_path, ws):
    name = branch_name(7, title)
    assert name.startswith("taskpin/7-")
    assert len(name) <= len("taskpin/7-") + 40
    for bad in ("/..", "..", " ", "$", ";", "`", "@{", "\\", "\n"):
        assert bad not in name
    assert not name.endswith((".", "/", ".lock"))
    assert subprocess.run(["git", "check-ref-format", "--branch", name], cwd=tmp_path,
                          capture_output=True, text=True).stdout.strip() == name
    assert ws.path_for(7).parent == ws.root


def test_slugify_examples():
    assert slugify("Fix the LOGIN bug!") == "fix-the-login-bug"
    assert slugify("Ünïcødé 修复 🚀") == "unicode"
    assert slugify("") == slugify("   ") == slugify("@{") == slugify("修复") == "task"
    assert slugify("a..b") == "a-b"
    assert slugify(".lock") == "lock"
    assert len(slugify("word " * 100)) <= 40
    assert slugify("alpha beta gamma", max_len=12) == "alpha-beta"


@pytest.mark.parametrize("bad", ["1", 1.0, True, None, -1, "../x"])
def test_path_for_rejects_non_int(ws, bad):
    with pytest.raises(WorkspaceError):
        ws.path_for(bad)


def test_root_is_absolute_and_created_on_demand(tmp_path, repo, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ws = Workspaces(Path("rel/wt"))
    assert ws.root.is_absolute() and not ws.root.exists()
    assert ws.path_for(3) == tmp_path / "rel" / "wt" / "3"
    make_task(ws, repo, 3)
    assert (ws.root / "3" / "README.md").exists()


# ---- check_repo --------------------------------------------------------------------------

def test_check_repo(tmp_path, repo, ws):
    assert ws.check_repo(repo, "main") == []
    plain = tmp_path / "plain"
    plain.mkdir()
    [msg] = ws.check_repo(plain, "main")
    assert "not a git repository" in msg and "git init" in msg
    [msg] = ws.check_repo(tmp_path / "missing", "main")
    assert "does not exist" in msg
    [msg] = ws.check_repo(repo, "develop")
    assert "'develop' not found" in msg and "main" in msg and "base_branch" in msg
    [msg] = ws.check_repo(repo, "bad..name")
    assert "not a valid" in msg
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    [msg] = ws.check_repo(empty, "main")
    assert "no commits" in msg


# ---- create ------------------------------------------------------------------------------

def test_create_leaves_main_checkout_untouched(repo, ws):
    write(repo / "README.md", "dirty edit\n")            # uncommitted, unstaged
    write(repo / "staged.txt", "staged\n")
    git(repo, "add", "staged.txt")                       # staged
    write(repo / "untracked.txt", "u\n")                 # untracked
    main_head = git(repo, "rev-parse", "HEAD")
    git(repo, "status")                                  # let git refresh the index once
    before = snapshot(repo)
    branch, path = make_task(ws, repo)
    assert snapshot(repo) == before
    assert git(repo, "rev-parse", "HEAD") == main_head
    assert path == ws.root / "1" and path.is_dir()
    assert git(path, "symbolic-ref", "--short", "HEAD") == branch
    assert git(path, "rev-parse", "HEAD") == main_head
    assert (path / "README.md").read_text() == "hello\n"
    assert not (path / "staged.txt").exists() and not (path / "untracked.txt").exists()


def test_create_is_idempotent_and_recovers(repo, ws):
    branch, path = make_task(ws, repo)
    write(path / "work.txt", "in progress\n")
    assert ws.create(repo, "main", 1, branch) == path
    assert (path / "work.txt").read_text() == "in progress\n"
    ws.commit_all(path, "wip")
    sha = git(path, "rev-parse", "HEAD")
    shutil.rmtree(path)                                   # dir gone, stale worktree record left
    assert ws.create(repo, "main", 1, branch) == path
    assert git(path, "rev-parse", "HEAD") == sha          # re-added on the existing branch
    assert (path / "work.txt").exists()


def test_create_refuses_foreign_dir_and_other_branch(repo, ws):
    branch, path = make_task(ws, repo)
    with pytest.raises(WorkspaceError, match="not 'taskpin/1-other'"):
        ws.create(repo, "main", 1, "taskpin/1-other")
    write(ws.path_for(2) / "junk", "x")
    with pytest.raises(WorkspaceError, match="not a worktree"):
        ws.create(repo, "main", 2, "taskpin/2-x")
    for bad in ("../escape", "-b", "a..b", "@{-1}", "x.lock", "a\0b", "", "HEAD"):
        with pytest.raises(WorkspaceError):
            ws.create(repo, "main", 3, bad)


# ---- commit_all / diff_summary ------------------------------------------------------------

def test_commit_all_and_diff_summary(repo, ws):
    branch, path = make_task(ws, repo)
    assert ws.commit_all(path, "nothing") is None
    write(path / "keep.txt", "one\nTWO\nthree\nfour\n")  # +2 -1
    (path / "gone.txt").unlink()                          # -1
    write(path / "new" / "file.py", "a\nb\nc\n")          # +3 (untracked, in a new dir)
    write(path / "debug.log", "ignored\n")                # .gitignore'd
    (path / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)
    sha = ws.commit_all(path, "agent work", author="Agent Smith <agent@example.com>")
    assert sha == git(path, "rev-parse", "HEAD") == git(repo, "rev-parse", branch)
    assert git(path, "log", "-1", "--format=%an <%ae>|%s") == "Agent Smith <agent@example.com>|agent work"
    assert git(path, "status", "--porcelain", "-uall") == ""
    assert "debug.log" not in git(path, "ls-files")
    assert ws.commit_all(path, "again") is None

    summary = ws.diff_summary(repo, "main", branch)
    assert summary.files == ("blob.bin", "gone.txt", "keep.txt", "new/file.py")
    assert (summary.files_changed, summary.insertions, summary.deletions) == (4, 5, 2)
    assert summary.commit == sha

    # base moving on does not leak into the task's diff (merge-base, not base tip)
    write(repo / "README.md", "hello\nmore\n")
    git(repo, "commit", "-qam", "base moves")
    assert ws.diff_summary(repo, "main", branch) == summary


def test_diff_summary_counts_rename_once(repo, ws):
    branch, path = make_task(ws, repo)
    (path / "keep.txt").rename(path / "moved.txt")
    ws.commit_all(path, "rename")
    summary = ws.diff_summary(repo, "main", branch)
    assert (summary.files_changed, summary.insertions, summary.deletions, summary.files) == (1, 0, 0, ("moved.txt",))


def test_commit_all_rejects_paths_outside_root(repo, ws):
    with pytest.raises(WorkspaceError, match="not a task worktree"):
        ws.commit_all(repo, "x")
    _, path = make_task(ws, repo)
    write(path / "x.txt", "x\n")
    with pytest.raises(WorkspaceError, match="Name <email>"):
        ws.commit_all(path, "x", author="no email")
    git(path, "checkout", "-q", "--detach")
    with pytest.raises(WorkspaceError, match="detached HEAD"):
        ws.commit_all(path, "x")


# ---- merge ---------------------------------------------------------------------------------

def test_merge_fast_forward(repo, ws):
    branch, path = make_task(ws, repo)
    write(path / "feature.txt", "f\n")
    sha = ws.commit_all(path, "feature")
    git(repo, "status")
    before = snapshot(repo)
    assert ws.merge(repo, "main", branch, "Merge task 1") == sha
    assert git(repo, "rev-parse", "refs/heads/main") == sha
    after = snapshot(repo)
    assert (after["index"], after["files"], after["head"]) == (before["index"], before["files"], before["head"])
    assert not (repo / "feature.txt").exists()
    assert ws.merge(repo, "main", branch, "again") == sha   # already merged: no-op


def test_merge_true_merge_when_base_moved(repo, ws):
    branch, path = make_task(ws, repo)
    write(path / "feature.txt", "f\n")
    task_sha = ws.commit_all(path, "feature")
    write(repo / "README.md", "hello\nbase\n")
    git(repo, "commit", "-qam", "base moves")
    old = git(repo, "rev-parse", "main")
    git(repo, "status")
    before = snapshot(repo)
    new = ws.merge(repo, "main", branch, "Merge task 1")
    assert git(repo, "rev-parse", "main") == new
    assert git(repo, "rev-list", "--parents", "-n1", new).split() == [new, old, task_sha]
    assert git(repo, "log", "-1", "--format=%s|%an", new) == "Merge task 1|taskpin"
    assert git(repo, "show", f"{new}:feature.txt") == "f"
    assert git(repo, "show", f"{new}:README.md") == "hello\nbase"
    after = snapshot(repo)
    assert (after["index"], after["files"], after["head"]) == (before["index"], before["files"], before["head"])
    assert git(repo, "rev-parse", branch) == task_sha
    assert git(path, "status", "--porcelain") == ""
    assert ws.checked_out_at(repo, "main") == [repo.resolve()]
    assert ws.checked_out_at(repo, branch) == [path]


def test_merge_conflict_leaves_refs(repo, ws):
    branch, path = make_task(ws, repo)
    write(path / "keep.txt", "task version\n")
    write(path / "other.txt", "fine\n")
    task_sha = ws.commit_all(path, "task edit")
    write(repo / "keep.txt", "base version\n")
    git(repo, "commit", "-qam", "base edit")
    base_sha = git(repo, "rev-parse", "main")
    with pytest.raises(MergeConflict) as info:
        ws.merge(repo, "main", branch, "Merge")
    assert info.value.files == ("keep.txt",)
    assert "keep.txt" in str(info.value)
    assert isinstance(info.value, WorkspaceError)
    assert git(repo, "rev-parse", "main") == base_sha
    assert git(repo, "rev-parse", branch) == task_sha
    assert git(repo, "status", "--porcelain") == ""


# ---- push / remove -------------------------------------------------------------------------

def test_push_to_local_bare_remote(tmp_path, repo, ws):
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    branch, path = make_task(ws, repo)
    write(path / "feature.txt", "f\n")
    sha = ws.commit_all(path, "feature")
    ws.push(repo, branch, "origin")
    assert git(remote, "rev-parse", f"refs/heads/{branch}") == sha
    with pytest.raises(WorkspaceError, match="not configured"):
        ws.push(repo, branch, "upstream")
    with pytest.raises(WorkspaceError, match="not configured"):
        ws.push(repo, branch, "--upload-pack=touch pwned")
    with pytest.raises(WorkspaceError, match="does not exist"):
        ws.push(repo, "taskpin/404-nope", "origin")


def test_push_failure_strips_tokens(repo, ws):
    git(repo, "remote", "add", "origin", "https://x-access-token:SECRETTOKEN123@127.0.0.1:9/r.git")
    branch, _ = make_task(ws, repo)
    with pytest.raises(WorkspaceError) as info:
        ws.push(repo, branch, "origin")
    assert "SECRETTOKEN123" not in str(info.value)
    assert "failed" in str(info.value)


def test_remove_keeps_branch(repo, ws):
    branch, path = make_task(ws, repo)
    write(path / "scratch.txt", "untracked\n")
    ws.remove(1, repo)
    assert not path.exists()
    assert str(path) not in git(repo, "worktree", "list")
    assert git(repo, "rev-parse", "--verify", branch)
    ws.remove(1, repo)                                    # idempotent
    assert ws.create(repo, "main", 1, branch) == path     # re-added from the kept branch


def test_redact_strips_credentials():
    from orchestrator.workspaces import _redact
    msg = _redact("fatal: unable to access 'https://x-access-token:ghs_abcdefgh12345678@github.com/o/r.git/' "
                  "token ghp_ABCDEFGHijklmnop1234 Authorization: Bearer sekret")
    for secret in ("ghs_abcdefgh12345678", "ghp_ABCDEFGHijklmnop1234", "sekret", "x-access-token"):
        assert secret not in msg
    assert "github.com/o/r.git" in msg


def test_create_reports_branch_checked_out_elsewhere(repo, ws):
    branch, _ = make_task(ws, repo)
    with pytest.raises(WorkspaceError, match="already checked out at '.*1'.*git worktree remove"):
        ws.create(repo, "main", 2, branch)


def test_many_worktrees_created_at_once_all_succeed(tmp_path):
    """git's worktree bookkeeping races with itself; taskpin serializes it per repository."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "a@b"], ["config", "user.name", "a"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    (repo / "f").write_text("x\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "i"], cwd=repo, check=True)
    ws = Workspaces(tmp_path / "wt")
    with ThreadPoolExecutor(max_workers=16) as pool:
        paths = list(pool.map(lambda i: ws.create(repo, "main", i, f"taskpin/{i}-t"), range(1, 41)))
    assert all((p / "f").exists() for p in paths)
