"""The few GitHub REST calls taskpin makes, through githubkit (async, GitHub Enterprise by base
URL), with every failure turned into one sentence that says what to do. The token goes only
into githubkit's Authorization header: no message here ever contains it."""
from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)
TOKEN_FIX = "set TASKPIN_GITHUB_TOKEN (or GITHUB_TOKEN) to a token that can push to it and open pull requests"
_SSH_REMOTE = re.compile(r"^(?:ssh://)?[^@/\s]+@[^:/\s]+[:/](?P<path>[^\s]+?)(?:\.git)?/?$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class GitHubError(Exception):
    """A GitHub call failed; the message is for the person who approved, without secrets."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PullRequestRef:
    repo: str          # owner/name
    number: int
    url: str           # html_url, for people
    branch: str

    @property
    def label(self) -> str:
        return f"{self.repo}#{self.number}"

    def to_dict(self) -> dict[str, Any]:
        return {"repo": self.repo, "number": self.number, "url": self.url, "branch": self.branch}

    @classmethod
    def from_dict(cls, data: Any) -> "PullRequestRef | None":
        try:
            return cls(str(data["repo"]), int(data["number"]), str(data["url"]), str(data["branch"]))
        except (KeyError, TypeError, ValueError):
            return None


def repo_from_remote_url(url: str) -> str | None:
    """owner/name from a GitHub remote URL (https, ssh, git@host:owner/name.git); None otherwise."""
    url = (url or "").strip()
    match = _SSH_REMOTE.match(url)
    path = match.group("path") if match and "://" not in url.split("@")[0] else None
    if path is None:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http", "ssh", "git") or not parts.netloc:
            return None
        path = parts.path.strip("/").removesuffix(".git")
    path = path.strip("/")
    return path if _NAME.match(path) else None


class GitHub:
    """One API (api.github.com or an Enterprise server's /api/v3) with one token."""

    def __init__(self, token: str, base_url: str, *, retries: int = 2, timeout_s: float = 30.0):
        from githubkit import GitHub as Kit
        from githubkit.retry import RetryChainDecision, RetryRateLimit, RetryServerError

        self.base_url = base_url.rstrip("/")
        self._kit = Kit(token, base_url=self.base_url + "/", timeout=timeout_s, http_cache=False,
                        auto_retry=RetryChainDecision(RetryRateLimit(max_retry=1), RetryServerError(max_retry=retries)),
                        user_agent="taskpin")

    async def __aenter__(self) -> "GitHub":
        await self._kit.__aenter__()  # type: ignore[no-untyped-call]  # githubkit leaves it unannotated
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._kit.__aexit__(exc_type, exc, tb)

    async def find_open_pull(self, repo: str, branch: str) -> PullRequestRef | None:
        owner, name = repo.split("/", 1)
        response = await self._call(f"look up pull requests of {repo}", repo,
                                    self._kit.rest.pulls.async_list(owner, name, head=f"{owner}:{branch}",
                                                                    state="open"))
        pulls = response.json()
        if not isinstance(pulls, list) or not pulls:
            return None
        return _ref(repo, branch, pulls[0])

    async def create_pull(self, repo: str, *, branch: str, base: str, title: str, body: str) -> PullRequestRef | None:
        """The new pull request; None when GitHub says one for `branch` exists already (422)."""
        owner, name = repo.split("/", 1)
        try:
            response = await self._call(f"open a pull request on {repo}", repo,
                                        self._kit.rest.pulls.async_create(owner, name, title=title, head=branch,
                                                                          base=base, body=body))
        except GitHubError as exc:
            if exc.status == 422 and "already exists" in str(exc):
                return None
            raise
        return _ref(repo, branch, response.json())

    async def repo_access(self, repo: str) -> dict[str, Any]:
        """The repository as the token sees it (its `permissions`, when GitHub says)."""
        owner, name = repo.split("/", 1)
        data = (await self._call(f"read {repo}", repo, self._kit.rest.repos.async_get(owner, name))).json()
        return data if isinstance(data, dict) else {}

    async def _call(self, what: str, repo: str, call: Awaitable[Any]) -> Any:
        from githubkit.exception import RequestError, RequestFailed, RequestTimeout

        try:
            return await call
        except RequestFailed as exc:
            raise explain(what, repo, exc.response.status_code, _body(exc.response)) from None
        except RequestTimeout:
            raise GitHubError(f"GitHub at {self.base_url} did not answer in time (to {what}); approve again "
                              "in a moment") from None
        except RequestError as exc:
            cause = type(getattr(exc, "exc", exc)).__name__
            raise GitHubError(f"could not reach GitHub at {self.base_url} ({cause}) to {what}; check "
                              "TASKPIN_GITHUB_API_URL and the network, then approve again") from None


def _body(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except Exception:
        return {}
    return body if isinstance(body, dict) else {}


def _ref(repo: str, branch: str, data: Any) -> PullRequestRef:
    if not isinstance(data, dict) or "number" not in data or "html_url" not in data:
        raise GitHubError(f"GitHub's answer about the pull request on {repo} has no number or link")
    return PullRequestRef(repo, int(data["number"]), str(data["html_url"]), branch)


def _github_message(body: dict[str, Any]) -> str:
    parts = [str(body.get("message") or "").strip()]
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            parts.append(str(error.get("message") or error.get("code") or "").strip())
        elif isinstance(error, str):
            parts.append(error.strip())
    return "; ".join(p for p in parts if p)[:300]


def explain(what: str, repo: str, status: int, body: dict[str, Any]) -> GitHubError:
    """One sentence per failure a user meets: what GitHub said, and what to do."""
    said = _github_message(body)
    quoted = f": {said}" if said else ""
    if status == 401:
        message = f"GitHub refused the token (401{quoted}); {TOKEN_FIX}, then approve again"
    elif status == 403:
        message = (f"GitHub did not let the token {what} (403{quoted}); {TOKEN_FIX} (or wait for the rate "
                   "limit), then approve again")
    elif status == 404:
        message = (f"GitHub has no repository {repo} that the token can see (404); check `github_repo` for this "
                   f"repository in taskpin.toml and the token's access, then approve again")
    elif status == 422:
        message = f"GitHub refused to {what} (422{quoted}); fix that, then approve again"
    elif status >= 500:
        message = f"GitHub failed to {what} (HTTP {status}); it is GitHub's side: approve again in a moment"
    else:
        message = f"GitHub answered HTTP {status} to {what}{quoted}; approve again once that is fixed"
    return GitHubError(message, status)
