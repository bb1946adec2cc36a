"""A local fake of the GitHub REST endpoints taskpin uses, on 127.0.0.1, recording every request.

    GET  {prefix}/repos/{owner}/{repo}                       the repository, with `permissions`
    GET  {prefix}/repos/{owner}/{repo}/pulls?head=o:b&state=  pull requests, filtered like GitHub
    POST {prefix}/repos/{owner}/{repo}/pulls                  201, or 422 when head/base are not
                                                              branches of the remote or a pull
                                                              request for head is open already

`prefix` is "" (api.github.com) or "/api/v3" (GitHub Enterprise). Branches are read from a
real bare repository (the remote taskpin pushes to), so a pull request for a branch that was
never pushed is refused as GitHub refuses it. `fail()` queues faults: a status with a body,
optionally after doing the work (a response lost on the way back).
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web


@dataclass
class Fault:
    method: str
    path_end: str
    status: int
    body: object = None
    after: bool = False      # do the work, then answer the error
    times: int = 1


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    body: object
    authorized: bool


@dataclass
class FakeGitHub:
    token: str
    repos: dict[str, Path]                    # "owner/name" -> bare repository
    prefix: str = ""
    can_push: bool = True
    requests: list[Recorded] = field(default_factory=list)
    pulls: list[dict] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    url: str = ""

    async def __aenter__(self) -> "FakeGitHub":
        app = web.Application()
        app.router.add_get(self.prefix + "/repos/{owner}/{repo}", self._repo)
        app.router.add_get(self.prefix + "/repos/{owner}/{repo}/pulls", self._list)
        app.router.add_post(self.prefix + "/repos/{owner}/{repo}/pulls", self._create)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}{self.prefix}"
        return self

    async def __aexit__(self, *exc) -> None:
        await self._runner.cleanup()

    def fail(self, method: str, path_end: str, status: int, body: object = None, *, after: bool = False,
             times: int = 1) -> None:
        self.faults.append(Fault(method, path_end, status, body, after, times))

    def of(self, method: str, path_end: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.endswith(path_end)]

    # ---- plumbing ----------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() in ("bearer", "token") and value == self.token

    async def _record(self, request: web.Request):
        body = await request.json() if request.can_read_body else None
        self.requests.append(Recorded(request.method, request.path, dict(request.query), body,
                                      self._authorized(request)))
        return body

    def _fault(self, request: web.Request) -> Fault | None:
        for fault in self.faults:
            if fault.method == request.method and request.path.endswith(fault.path_end) and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    def _gate(self, request: web.Request) -> web.Response | None:
        if not self._authorized(request):
            return web.json_response({"message": "Bad credentials", "status": "401"}, status=401)
        name = f"{request.match_info['owner']}/{request.match_info['repo']}"
        if name not in self.repos:
            return web.json_response({"message": "Not Found", "status": "404"}, status=404)
        return None

    def _branches(self, name: str) -> set[str]:
        out = subprocess.run(["git", "for-each-ref", "--format=%(refname:short)", "refs/heads/"],
                             cwd=self.repos[name], capture_output=True, text=True, check=True).stdout
        return set(out.split())

    async def _serve(self, request: web.Request, work) -> web.Response:
        body = await self._record(request)
        fault = self._fault(request)
        if fault and not fault.after:
            return web.json_response(fault.body if fault.body is not None else {"message": "fault"},
                                     status=fault.status)
        refused = self._gate(request)
        if refused is not None:
            return refused
        response = work(f"{request.match_info['owner']}/{request.match_info['repo']}", body, request)
        if fault:
            return web.json_response(fault.body if fault.body is not None else {"message": "fault"},
                                     status=fault.status)
        return response

    # ---- endpoints ---------------------------------------------------------------------------

    async def _repo(self, request: web.Request) -> web.Response:
        def work(name, _body, _request):
            return web.json_response({"full_name": name, "private": True,
                                      "permissions": {"pull": True, "push": self.can_push, "admin": False}})
        return await self._serve(request, work)

    async def _list(self, request: web.Request) -> web.Response:
        def work(name, _body, req):
            head, state = req.query.get("head"), req.query.get("state", "open")
            found = [p for p in self.pulls if p["repo"] == name
                     and (head is None or f"{name.split('/')[0]}:{p['head']['ref']}" == head)
                     and (state == "all" or p["state"] == state)]
            return web.json_response([_public(p) for p in found])
        return await self._serve(request, work)

    async def _create(self, request: web.Request) -> web.Response:
        def work(name, body, _request):
            body = body or {}
            branches = self._branches(name)
            errors = [{"resource": "PullRequest", "field": f, "code": "invalid"}
                      for f in ("head", "base") if body.get(f) not in branches]
            if errors:
                return web.json_response({"message": "Validation Failed", "errors": errors}, status=422)
            if any(p["repo"] == name and p["head"]["ref"] == body["head"] and p["state"] == "open" for p in self.pulls):
                return web.json_response({"message": "Validation Failed", "errors": [
                    {"resource": "PullRequest", "code": "custom",
                     "message": f"A pull request already exists for {name.split('/')[0]}:{body['head']}."}]},
                    status=422)
            number = len(self.pulls) + 1
            pull = {"repo": name, "number": number, "state": "open", "title": body.get("title"),
                    "body": body.get("body"), "head": {"ref": body["head"]}, "base": {"ref": body["base"]},
                    "html_url": f"https://github.example/{name}/pull/{number}"}
            self.pulls.append(pull)
            return web.json_response(_public(pull), status=201)
        return await self._serve(request, work)


def _public(pull: dict) -> dict:
    return {k: v for k, v in pull.items() if k != "repo"}
