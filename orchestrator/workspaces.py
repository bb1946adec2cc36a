"""Git worktrees for tasks: one worktree and one branch per task, merged or pushed on approval.

Everything here is synchronous (the core calls it through asyncio.to_thread) and goes through
GitPython's `repo.git.<cmd>(...)` with argument lists only. User text never becomes a path or a
ref unsanitized: worktree paths come from integer task ids under the workspaces root, and every
branch name is checked with `git check-ref-format --branch` before git sees it.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import git

from .models import DiffSummary

DEFAULT_AUTHOR = "taskpin <taskpin@localhost>"
PUSH_TIMEOUT_S = 600
# `git config branch.<name>.taskpinTask <mark>`: which task a branch belongs to. git keeps it
# with the branch (renamed with it, deleted with it), so a new task never takes an old one's.
MARK_KEY = "taskpinTask"
MAX_SUFFIX = 1000

# Letters NFKD does not decompose into ASCII.
_TRANSLIT = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss",
                           "đ": "d", "Đ": "D", "ł": "l", "Ł": "L", "þ": "th", "Þ": "Th", "ð": "d", "ı": "i"})
_AUTHOR_RE = re.compile(r"^\s*([^<>\n]+?)\s*<([^<>\n]*)>\s*$")
_REMOTE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SECRET_RES = (
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@"), r"\1***@"),            # scheme://user:token@
    (re.compile(r"\b(ghp|gho|ghu|ghs|ghr|github_pat|glpat)[-_][A-Za-z0-9_-]{8,}"), "***"),
    (re.compile(r"(?i)(authorization:\s*\w+\s+)\S+"), r"\1***"),
)


class WorkspaceError(Exception):
    """A git workspace operation failed; the message says what went wrong and how to fix it."""


class MergeConflict(WorkspaceError):
    def __init__(self, message: str, files: tuple[str, ...] = ()):
        super().__init__(message)
        self.files = tuple(files)


# ---- names ------------------------------------------------------------------------------

def slugify(title: str, max_len: int = 40) -> str:
    if max_len < 1:
        raise ValueError("max_len must be at least 1")
    text = unicodedata.normalize("NFKD", str(title).translate(_TRANSLIT))
    text = text.encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    if len(slug) > max_len:
        cut = slug[:max_len]
        dash = cut.rfind("-")
        slug = (cut[:dash] if dash >= max_len // 2 else cut).strip("-")
    return slug or "task"


def branch_name(task_id: int, title: str) -> str:
    name = f"taskpin/{_task_id(task_id)}-{slugify(title)}"
    _check_branch(name)
    return name


def _task_id(task_id: object) -> int:
    if type(task_id) is not int or task_id < 0:
        raise WorkspaceError(f"Invalid task id {task_id!r}: task ids are non-negative integers.")
    return task_id


def _check_branch(name: object, what: str = "branch") -> str:
    """Reject anything that is not a plain, valid branch name (no options, no @{-1} expansion)."""
    ok = isinstance(name, str) and name and not name.startswith("-") and not {"\n", "\0"} & set(name)
    if ok:
        status, out, _ = git.Git().execute(["git", "check-ref-format", "--branch", name],
                                           with_exceptions=False, with_extended_output=True)
        ok = status == 0 and out == name
    if not ok:
        raise WorkspaceError(f"{name!r} is not a valid git {what} name; pick a name that passes "
                             f"`git check-ref-format --branch`.")
    return str(name)


def _identity(author: str) -> dict[str, str]:
    m = _AUTHOR_RE.match(author or "")
    if not m:
        raise WorkspaceError(f"Invalid author {author!r}: use the form 'Name <email>'.")
    name, email = m.groups()
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}


def _redact(text: str) -> str:
    for pattern, repl in _SECRET_RES:
        text = pattern.sub(repl, text)
    return text


def _git_error(exc: git.GitCommandError) -> str:
    err = exc.stderr if isinstance(exc.stderr, str) else str(exc)
    err = err.strip().removeprefix("stderr:").strip()
    if len(err) > 1 and err[0] == err[-1] == "'":
        err = err[1:-1].strip()
    return _redact(err or str(exc))


def _open(repo_path: Path) -> git.Repo:
    try:
        return git.Repo(Path(repo_path).expanduser())
    except git.NoSuchPathError:
        raise WorkspaceError(f"Repository path {repo_path} does not exist; fix the repo's `path` "
                             f"in the taskpin config.") from None
    except git.InvalidGitRepositoryError:
        raise WorkspaceError(f"{repo_path} is not a git repository (it must be the top of one); run "
                             f"`git init` there or point the repo's `path` at a git checkout.") from None


def _rev(repo: git.Repo, ref: str) -> str | None:
    status, out, _ = repo.git.rev_parse("--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}",
                                        with_exceptions=False, with_extended_output=True)
    return out.strip() if status == 0 else None


def _head_of(repo: git.Repo, branch: str) -> str:
    sha = _rev(repo, f"refs/heads/{_check_branch(branch)}")
    if sha is None:
        raise WorkspaceError(f"Branch {branch!r} does not exist in {repo.working_dir}; check the "
                             f"configured base branch, or re-run the task to recreate its branch.")
    return sha


def _ls_remote_head(repo: git.Repo, remote: str, branch: str) -> str | None:
    """The commit `remote` has for `branch`, or None (no such branch there, or no answer)."""
    result: Any = repo.git.ls_remote("--", remote, f"refs/heads/{branch}", with_exceptions=False,
                                     with_extended_output=True, env={"GIT_TERMINAL_PROMPT": "0"},
                                     kill_after_timeout=PUSH_TIMEOUT_S)
    status, out = result[0], str(result[1])
    sha = out.split("\t", 1)[0].strip() if status == 0 else ""
    return sha or None


def _is_ancestor(repo: git.Repo, a: str, b: str) -> bool:
    return bool(repo.git.merge_base("--is-ancestor", a, b, with_exceptions=False, with_extended_output=True)[0] == 0)


def _worktrees(repo: git.Repo) -> dict[Path, str | None]:
    """Registered worktrees: resolved path -> checked-out branch ref (None when detached/bare)."""
    result: dict[Path, str | None] = {}
    for record in repo.git.worktree("list", "--porcelain", "-z").split("\0\0"):
        fields = dict(f.partition(" ")[::2] for f in record.split("\0") if f)
        if "worktree" in fields:
            result[Path(fields["worktree"]).resolve()] = fields.get("branch")
    return result


# ---- workspaces -------------------------------------------------------------------------

_REPO_LOCKS: dict[str, threading.Lock] = {}
_REPO_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def _repo_lock(repo_path: Path) -> Iterator[None]:
    """One worktree operation at a time per repository: among this process's threads, and among
    the taskpin processes of this machine (several workers may share a repository), through an
    flock on a file in the repository's .git folder (or the temp folder for other layouts)."""
    key = os.path.realpath(repo_path)
    with _REPO_LOCKS_GUARD:
        lock = _REPO_LOCKS.setdefault(key, threading.Lock())
    git_dir = Path(key) / ".git"
    lock_file = (git_dir / "taskpin-worktrees.lock" if git_dir.is_dir() else
                 Path(tempfile.gettempdir()) / f"taskpin-{hashlib.sha1(key.encode()).hexdigest()[:16]}.lock")
    with lock, open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)   # released when the file is closed
        yield


class Workspaces:
    def __init__(self, root: Path):
        self.root = Path(root).expanduser().resolve()

    def path_for(self, task_id: int) -> Path:
        return self.root / str(_task_id(task_id))

    def check_repo(self, repo_path: Path, base_branch: str) -> list[str]:
        try:
            repo = _open(repo_path)
            _check_branch(base_branch, "base branch")
        except WorkspaceError as exc:
            return [str(exc)]
        if not repo.git.for_each_ref("--count=1", "refs/heads/"):
            return [f"{repo_path} has no commits yet; commit something on {base_branch!r} "
                    f"(e.g. `git commit --allow-empty -m init`) before dispatching tasks."]
        if _rev(repo, f"refs/heads/{base_branch}") is None:
            branches = repo.git.for_each_ref("--format=%(refname:short)", "refs/heads/").split()
            return [f"Base branch {base_branch!r} not found in {repo_path} (branches: "
                    f"{', '.join(branches[:10])}); set `base_branch` in the taskpin config or create it."]
        return []

    def create(self, repo_path: Path, base_branch: str, task_id: int, branch: str) -> Path:
        # git's worktree bookkeeping is not safe against itself: `worktree list` fails while
        # another `worktree add` of the same repository is half done. One at a time per repo.
        with _repo_lock(repo_path):
            return self._create(repo_path, base_branch, task_id, branch)

    def create_for(self, repo_path: Path, base_branch: str, task_id: int, branch: str, mark: str, *,
                   adopt_unmarked: bool = False) -> tuple[Path, str]:
        """The task's worktree and branch -> (path, branch), never another task's.

        A branch is this task's when its mark is `mark`, or (with `adopt_unmarked`: the task ran
        before marks existed) when it has none. A branch or worktree folder left by another task
        (say the database was reset and a new #1 has the same title) is left intact, and this
        task gets the next free name beside it: `<branch>-2`, folder `<id>-2`.
        """
        with _repo_lock(repo_path):
            repo = _open(repo_path)
            _check_branch(branch)
            path = self.path_for(task_id)
            if not path.exists() and self._add_fresh(repo, path, branch, base_branch):
                self._mark(repo, branch, mark)   # the usual first dispatch: two git calls
                return path, branch
            branch = self._own_branch(repo, branch, mark, adopt_unmarked)
            repo.git.worktree("prune")
            path = self._own_path(repo, task_id, branch)
            self._create(repo_path, base_branch, task_id, branch, path=path)
            self._mark(repo, branch, mark)
            return path, branch

    @staticmethod
    def _mark(repo: git.Repo, branch: str, mark: str) -> None:
        repo.git.config("--local", f"branch.{branch}.{MARK_KEY}", mark)

    @staticmethod
    def branch_mark(repo_path: Path, branch: str) -> str | None:
        status, out, _ = _open(repo_path).git.config("--local", "--get", f"branch.{_check_branch(branch)}.{MARK_KEY}",
                                                     with_exceptions=False, with_extended_output=True)
        return out.strip() if status == 0 else None

    def _own_branch(self, repo: git.Repo, branch: str, mark: str, adopt_unmarked: bool) -> str:
        for n in range(1, MAX_SUFFIX):
            name = branch if n == 1 else _check_branch(f"{branch}-{n}")
            if _rev(repo, f"refs/heads/{name}") is None:
                return name
            found = self.branch_mark(Path(repo.working_dir), name)
            if found == mark or (found is None and adopt_unmarked and n == 1):
                return name
        raise WorkspaceError(f"Branches {branch!r} to {branch}-{MAX_SUFFIX - 1} all belong to other tasks; "
                             f"delete the ones you no longer need (`git branch -D`) and retry.")

    def _own_path(self, repo: git.Repo, task_id: int, branch: str) -> Path:
        registered = _worktrees(repo)
        for n in range(1, MAX_SUFFIX):
            path = self.path_for(task_id) if n == 1 else self.root / f"{_task_id(task_id)}-{n}"
            if path in registered:
                if registered[path] == f"refs/heads/{branch}":
                    return path
                continue   # another task's worktree (or the user's): kept as it is
            if not path.exists() or (path.is_dir() and not path.is_symlink() and not any(path.iterdir())):
                return path
        raise WorkspaceError(f"No free worktree folder for task {task_id} under {self.root}; "
                             f"remove old ones with `git worktree remove` and retry.")

    def _create(self, repo_path: Path, base_branch: str, task_id: int, branch: str, *,
                path: Path | None = None) -> Path:
        path = path or self.path_for(task_id)
        repo = _open(repo_path)
        _check_branch(branch)
        if not path.exists() and self._add_fresh(repo, path, branch, base_branch):
            return path   # the usual first dispatch: one git call
        repo.git.worktree("prune")
        registered = _worktrees(repo)
        if path in registered:
            if registered[path] == f"refs/heads/{branch}":
                return path
            raise WorkspaceError(f"Worktree {path} is checked out on {registered[path]!r}, not {branch!r}; "
                                 f"remove it with `git worktree remove --force {path}` and retry.")
        if path.exists() and (path.is_symlink() or not path.is_dir() or any(path.iterdir())):
            raise WorkspaceError(f"{path} exists but is not a worktree of {repo_path}; "
                                 f"move or delete it and retry.")
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            if _rev(repo, f"refs/heads/{branch}") is not None:
                repo.git.worktree("add", "--", str(path), branch)
            else:
                repo.git.worktree("add", "--no-track", "-b", branch, "--", str(path),
                                  f"refs/heads/{_check_branch(base_branch, 'base branch')}")
        except git.GitCommandError as exc:
            raise WorkspaceError(f"Could not create the worktree for task {task_id} at {path}: "
                                 f"{_git_error(exc)} (if the branch is checked out elsewhere, `git worktree remove` that "
                                 f"worktree first).") from None
        return path

    def _add_fresh(self, repo: git.Repo, path: Path, branch: str, base_branch: str) -> bool:
        """A new branch in a new worktree; False when that is not the situation (the slow path decides)."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            repo.git.worktree("add", "--no-track", "-b", branch, "--", str(path),
                              f"refs/heads/{_check_branch(base_branch, 'base branch')}")
            return True
        except git.GitCommandError:
            return False   # the branch exists, a stale registration...: nothing was created

    def commit_all(self, worktree: Path, message: str, author: str = DEFAULT_AUTHOR, *,
                   exclude: Sequence[str] = ()) -> str | None:
        """Commit everything in the worktree but the `exclude` paths (files taskpin copied in,
        such as .env: local configuration, never part of the task's branch)."""
        worktree = Path(worktree).resolve()
        if not worktree.is_relative_to(self.root) or worktree == self.root:
            raise WorkspaceError(f"{worktree} is not a task worktree under {self.root}.")
        env = _identity(author)
        repo = _open(worktree)
        if repo.git.symbolic_ref("-q", "HEAD", with_exceptions=False) == "":
            raise WorkspaceError(f"The worktree {worktree} is on a detached HEAD, so its work would not "
                                 f"land on the task branch; check the task branch out there and retry.")
        try:
            repo.git.add("--all", "--", ".", *(f":(exclude,literal){path}" for path in exclude))
            if repo.git.diff("--cached", "--quiet", with_exceptions=False, with_extended_output=True)[0] == 0:
                return None
            repo.git.commit("--no-verify", "--no-gpg-sign", "--quiet", "-m",
                            message or "taskpin: agent changes", env=env)
        except git.GitCommandError as exc:
            raise WorkspaceError(f"Could not commit the agent's changes in {worktree}: {_git_error(exc)}") from None
        return str(repo.git.rev_parse("HEAD"))

    def diff_summary(self, repo_path: Path, base_branch: str, branch: str) -> DiffSummary:
        repo = _open(repo_path)
        base, head = _head_of(repo, base_branch), _head_of(repo, branch)
        try:
            merge_base = repo.git.merge_base(base, head)
        except git.GitCommandError:
            raise WorkspaceError(f"{branch!r} and {base_branch!r} share no history; recreate the task "
                                 f"branch from {base_branch!r}.") from None
        out = repo.git.diff("--numstat", "-z", "-M", "--no-ext-diff", "--no-textconv", merge_base, head)
        tokens, files, ins, dels = out.split("\0"), [], 0, 0
        i = 0
        while i < len(tokens):
            if not tokens[i]:
                i += 1
                continue
            added, deleted, path = tokens[i].split("\t", 2)
            if not path:                          # rename/copy: old and new paths follow
                path, i = tokens[i + 2], i + 2
            files.append(path)
            ins += int(added) if added.isdigit() else 0
            dels += int(deleted) if deleted.isdigit() else 0
            i += 1
        return DiffSummary(len(files), ins, dels, tuple(sorted(files)), head)

    def merge(self, repo_path: Path, base_branch: str, branch: str, message: str,
              author: str = DEFAULT_AUTHOR) -> str:
        repo = _open(repo_path)
        old, head = _head_of(repo, base_branch), _head_of(repo, branch)
        if _is_ancestor(repo, head, old):
            return old                            # already merged
        if _is_ancestor(repo, old, head):
            new = head                            # fast-forward
        else:
            status, out, err = repo.git.merge_tree("--write-tree", "-z", "--name-only", old, head,
                                                   with_exceptions=False, with_extended_output=True)
            if status == 1:
                files = tuple(dict.fromkeys(out.split("\0\0", 1)[0].split("\0")[1:]))
                raise MergeConflict(f"{branch!r} conflicts with {base_branch!r} in {', '.join(files)}; "
                                    f"rebase or fix the task branch, then approve again.", files)
            if status != 0:
                raise WorkspaceError(f"git merge-tree failed (git >= 2.38 is required): {_redact(err.strip())}")
            new = repo.git.commit_tree(out.split("\0", 1)[0], "-p", old, "-p", head, "--no-gpg-sign",
                                       "-m", message or f"Merge {branch}", env=_identity(author))
        try:
            repo.git.update_ref("-m", f"taskpin: merge {branch}", f"refs/heads/{base_branch}", new, old)
        except git.GitCommandError:
            raise WorkspaceError(f"{base_branch!r} moved while merging {branch!r}; approve again to "
                                 f"retry the merge.") from None
        return new

    def is_merged(self, repo_path: Path, base_branch: str, branch: str) -> bool:
        """Whether `branch`'s head is already in `base_branch` (a merge landed)."""
        repo = _open(repo_path)
        return _is_ancestor(repo, _head_of(repo, branch), _head_of(repo, base_branch))

    def is_pushed(self, repo_path: Path, branch: str, remote: str) -> bool:
        """Whether `remote` has `branch` at its local head (a push landed)."""
        repo = _open(repo_path)
        head = _head_of(repo, branch)
        if not (isinstance(remote, str) and _REMOTE_RE.match(remote)):
            return False
        return _ls_remote_head(repo, remote, branch) == head

    def remote_head(self, repo_path: Path, branch: str, remote: str) -> str | None:
        """The commit `remote` has for `branch`, or None (no such branch there, or no answer)."""
        repo = _open(repo_path)
        if not (isinstance(remote, str) and _REMOTE_RE.match(remote)):
            return None
        return _ls_remote_head(repo, remote, _check_branch(branch))

    def push(self, repo_path: Path, branch: str, remote: str) -> None:
        repo = _open(repo_path)
        _head_of(repo, branch)
        if not (isinstance(remote, str) and _REMOTE_RE.match(remote)) or remote not in repo.git.remote().split():
            raise WorkspaceError(f"Remote {remote!r} is not configured in {repo_path}; add it with "
                                 f"`git remote add` or fix the repo's `remote` in the taskpin config.")
        try:
            repo.git.push("--porcelain", "--", remote, f"refs/heads/{branch}:refs/heads/{branch}",
                          env={"GIT_TERMINAL_PROMPT": "0"}, kill_after_timeout=PUSH_TIMEOUT_S)
        except git.GitCommandError as exc:
            raise WorkspaceError(f"Pushing {branch!r} to {remote!r} failed: {_git_error(exc)}") from None

    def checked_out_at(self, repo_path: Path, branch: str) -> list[Path]:
        """Worktrees (the main checkout included) that have `branch` checked out. After merge() moves
        such a branch, that checkout's index still matches the old commit until the user syncs it."""
        ref = f"refs/heads/{_check_branch(branch)}"
        return [path for path, head in _worktrees(_open(repo_path)).items() if head == ref]

    def remove(self, task_id: int, repo_path: Path, path: Path | None = None) -> None:
        """Remove the task's worktree: `path` (what create_for gave) or its default folder."""
        with _repo_lock(repo_path):
            self._remove(task_id, repo_path, path)

    def _remove(self, task_id: int, repo_path: Path, path: Path | None = None) -> None:
        path = self.path_for(task_id) if path is None else Path(path).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise WorkspaceError(f"{path} is not a task worktree under {self.root}.")
        try:
            repo = _open(repo_path)
        except WorkspaceError:
            repo = None
        if repo is not None and path.is_dir() and path.resolve() in _worktrees(repo):
            repo.git.worktree("remove", "--force", "--force", str(path), with_exceptions=False)
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)
        if repo is not None:
            repo.git.worktree("prune")
