"""8. Several processes on one PostgreSQL database (real `taskpin run --role ...` processes).

ask -> thread, reply -> agent across processes: one `slack` process and two workers, 10 `asker`
agents (5 per worker). The agents ask in turn, one question every 1.2 s, so that Slack's post pace
in one channel (about 1/s) is not what is measured (bench `intervention` shows that bound); each
question is answered in its thread the moment it appears. ask -> thread: the agent's write of its
question (worker process) -> the question in the emulator's thread (posted by the slack process).
reply -> agent: the reply in the thread (received by the slack process) -> the agent (in a worker)
has read the answer.

claim: 1, 2 and 4 workers, 40 tasks dispatched at once (each worker may run all of them), the
`starter` agent (records its start, stays alive). Claim latency: the task entering the queue ->
its agent process started; throughput: agents started per second from the first dispatch.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bot.emulator import SlackEmulator
from bot.threads import thread_marker
from orchestrator import Orchestrator, Settings
from orchestrator.coordination import JournaledBus
from orchestrator.coordination.postgres import PostgresCoordinator

from .harness import AGENTS, OWNER, Figure, make_repo, ms, pct, progress, wait_until

NAME = "cluster"
ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("TASKPIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BOARD = "C0BENCHCLUSTER"   # `taskpin run` checks that the board channel looks like an id


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fleet:
    """The processes of one measurement, on one fresh database."""

    def __init__(self, root: Path, emu: SlackEmulator | None, agents: dict[str, dict]):
        self.root, self.emu = root, emu
        self.repo = make_repo(root / "repo")
        self.db_name = f"taskpin_bench_{uuid.uuid4().hex[:10]}"
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        self.url = f"{base}/{self.db_name}"
        self.config = root / "taskpin.toml"
        lines = ["[repos.app]", f"path = {json.dumps(str(self.repo))}", 'base_branch = "main"', ""]
        for name, spec in agents.items():
            lines += [f"[agents.{name}]", 'kind = "command"', f"command = {json.dumps(spec['command'])}",
                      "stop_grace_s = 1", "", f"[agents.{name}.env]"]
            lines += [f"{k} = {json.dumps(str(v))}" for k, v in spec["env"].items()] + [""]
        self.config.write_text("\n".join(lines))
        self.procs: list[tuple[str, subprocess.Popen, Path, int]] = []

    async def __aenter__(self) -> "Fleet":
        import asyncpg

        admin = await asyncpg.connect(PG_ADMIN, timeout=5)
        await admin.execute(f'CREATE DATABASE "{self.db_name}"')
        await admin.close()
        return self

    async def __aexit__(self, *exc) -> None:
        for _, p, _, _ in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        while any(p.poll() is None for _, p, _, _ in self.procs) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for _, p, _, _ in self.procs:
            if p.poll() is None:
                p.kill()
        import asyncpg

        admin = await asyncpg.connect(PG_ADMIN, timeout=5)
        await admin.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        await admin.close()

    def start(self, role: str, name: str, **env) -> None:
        values = {k: v for k, v in os.environ.items() if not k.startswith(("TASKPIN_", "SLACK_"))}
        port = _port()
        values.update(PYTHONPATH=str(ROOT), TASKPIN_CONFIG=str(self.config), TASKPIN_DATABASE_URL=self.url,
                      TASKPIN_WORKER_NAME=name, TASKPIN_WORKSPACES_DIR=str(self.root / "worktrees"),
                      TASKPIN_LOG_DIR=str(self.root / "logs"), TASKPIN_HTTP_HOST="127.0.0.1",
                      TASKPIN_HTTP_PORT=str(port), TASKPIN_MAX_ATTEMPTS="1", TASKPIN_DEFAULT_REPO="app",
                      TASKPIN_BOARD_SYNC_INTERVAL_S="1.0", TASKPIN_MAX_CONCURRENT_SESSIONS="100")
        if role != "worker":
            values.update(SLACK_BOT_TOKEN=self.emu.bot_token, SLACK_APP_TOKEN=self.emu.app_token,
                          SLACK_API_URL=self.emu.api_url, TASKPIN_BOARD_CHANNEL=BOARD)
        values.update({k: str(v) for k, v in env.items()})
        log = self.root / f"{name}.log"
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--role", role, "--log-level", os.environ.get("BENCH_LOG_LEVEL", "WARNING")],
                                cwd=self.root, env=values, stdout=log.open("w"), stderr=subprocess.STDOUT)
        self.procs.append((name, proc, log, port))

    async def wait_running(self) -> None:
        """Each process is up: its /healthz answers (a slack process: also connected to Slack)."""
        import aiohttp

        async def up(name: str, proc: subprocess.Popen, log: Path, port: int) -> bool:
            _alive(name, proc, log)
            try:
                async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/healthz") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False
        for name, proc, log, port in self.procs:
            await wait_until(lambda name=name, proc=proc, log=log, port=port: up(name, proc, log, port), timeout=60,
                             interval=0.1)

    async def dispatcher(self) -> tuple[Orchestrator, PostgresCoordinator]:
        """A core here on the same database that runs no agents: it creates and dispatches."""
        settings = Settings(_env_file=None, database_url=self.url, config=self.config, worker_name="bench",
                            workspaces_dir=self.root / "worktrees", log_dir=self.root / "logs-bench")
        core = await Orchestrator.open(settings)
        coordinator = PostgresCoordinator("bench", core.store, self.url)
        await coordinator.start()
        core.use_coordination(coordinator, runs_agents=False, bus=JournaledBus(coordinator))
        await core.start()
        return core, coordinator


def _alive(name: str, proc: subprocess.Popen, log: Path) -> bool:
    if proc.poll() is not None:
        raise RuntimeError(f"{name} exited with {proc.returncode}: {log.read_text()[-3000:]}")
    return True


def _agent(name: str, **env) -> dict:
    return {"command": [sys.executable, "-S", str(AGENTS / f"{name}.py")], "env": env}


async def round_trips(agents: int, rounds: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory(prefix="taskpin-bench-cluster-") as tmp:
        root = Path(tmp)
        log = root / "asks.jsonl"
        # One round more than measured: no agent finishes meanwhile (its review message would take
        # a post from the channel's budget, and the questions would wait for Slack's pace).
        specs = {f"asker{k}": _agent("asker", BENCH_ROUNDS=rounds + 1, BENCH_GO_DIR=root / f"go{k}", BENCH_LOG=log)
                 for k in range(agents)}
        for k in range(agents):
            (root / f"go{k}").mkdir()
        async with SlackEmulator(rate_limits=True) as emu, Fleet(root, emu, specs) as fleet:
            emu.add_channel(BOARD, "taskpin-bench")
            emu.dispatcher.socket.spread = True
            fleet.start("slack", "slack-1")
            fleet.start("worker", "w1", TASKPIN_MAX_CONCURRENT_SESSIONS=(agents + 1) // 2)
            fleet.start("worker", "w2", TASKPIN_MAX_CONCURRENT_SESSIONS=(agents + 1) // 2)
            await fleet.wait_running()
            core, coordinator = await fleet.dispatcher()
            try:
                ids = []
                for k in range(agents):
                    task = await core.create_task(prompt=f"ask {k}", owner=OWNER, agent=f"asker{k}")
                    await core.dispatch(task.id, actor=OWNER)
                    ids.append(task.id)
                roots = await wait_until(lambda: _roots(emu, ids), timeout=agents * 3 + 30)
                await asyncio.sleep(3)                       # the channel's post burst is back
                progress(f"cluster: {agents} agents on 2 workers, threads open; {rounds} round(s)")
                asked, replied = [], []
                failed = [f"#{t.id}: {t.failure_reason}" for t in await core.list_tasks() if t.failure_reason]
                if failed:
                    raise RuntimeError(f"tasks failed before asking: {failed}")
                for r in range(rounds):
                    for k, task_id in enumerate(ids):
                        (root / f"go{k}" / f"go.{r}").touch()
                        try:
                            posted = await wait_until(lambda ts=roots[task_id], r=r: _question_ts(emu, ts, r), timeout=30)
                        except TimeoutError:
                            task = await core.get_task(task_id)
                            thread = [emu.text_of(m)[:80] for m in emu.thread(BOARD, roots[task_id])]
                            logs = "\n".join(out.read_text()[-1500:] for _, _, out, _ in fleet.procs)
                            raise TimeoutError(f"agent {k} round {r}: task #{task_id} {task.state} on {task.worker}; "
                                               f"thread {thread}\n{logs}") from None
                        reply = await emu.user_message(OWNER, BOARD, "yes", thread_ts=roots[task_id], timeout=10)
                        row = await wait_until(lambda task_id=task_id, r=r: _row(log, task_id, r), timeout=30)
                        asked.append(posted - row["emit"])
                        replied.append(row["read"] - float(reply.message["ts"]))
                        await asyncio.sleep(1.2)
                return asked, replied
            finally:
                await asyncio.wait_for(core.close(), 60)
                await asyncio.wait_for(coordinator.close(), 60)


def _roots(emu, ids) -> dict | None:
    """Each task's thread root, by the metadata taskpin gives it: its text may name other tasks
    ("queued behind #1"), so a match on "#1" could take another task's thread for task 1's."""
    markers = {task_id: thread_marker(task_id) for task_id in ids}
    found = {task_id: m["ts"] for m in emu.messages(BOARD) for task_id, marker in markers.items()
             if m.get("metadata") == marker}
    return found if len(found) == len(ids) else None


def _question_ts(emu, thread_ts: str, round_: int) -> float | None:
    for m in emu.thread(BOARD, thread_ts):
        if f"Question {round_}?" in emu.text_of(m):
            return float(m["ts"])
    return None


def _row(log: Path, task_id: int, round_: int) -> dict | None:
    if not log.exists():
        return None
    return next((x for x in map(json.loads, log.read_text().splitlines())
                 if int(x["task"]) == task_id and x["round"] == round_), None)


async def claims(workers: int, tasks: int) -> tuple[list[float], float]:
    """(claim latencies, agents started per second) with `workers` worker processes."""
    with tempfile.TemporaryDirectory(prefix="taskpin-bench-claim-") as tmp:
        root = Path(tmp)
        starts = root / "starts.txt"
        async with Fleet(root, None, {"starter": _agent("starter", BENCH_START_FILE=starts)}) as fleet:
            for w in range(workers):   # each worker its own clone, as on its own machine
                clone = root / f"repo-w{w + 1}"
                subprocess.run(["git", "clone", "-q", str(fleet.repo), str(clone)], check=True)
                config = root / f"taskpin-w{w + 1}.toml"
                config.write_text(fleet.config.read_text().replace(json.dumps(str(fleet.repo)), json.dumps(str(clone))))
                fleet.start("worker", f"w{w + 1}", TASKPIN_CONFIG=config,
                            TASKPIN_WORKSPACES_DIR=root / f"worktrees-w{w + 1}")
            await fleet.wait_running()
            core, coordinator = await fleet.dispatcher()
            try:
                created = [await core.create_task(prompt=f"start {i}", owner=OWNER) for i in range(tasks)]
                first = time.time()
                queued = {}
                for task in created:
                    queued[task.id] = time.time()
                    await core.dispatch(task.id, actor=OWNER)
                await wait_until(lambda: starts.exists() and len(starts.read_text().splitlines()) >= tasks,
                                 timeout=tasks * 2 + 60)
                started = {int(a): float(b) for a, b in (line.split() for line in starts.read_text().splitlines())}
                latencies = [started[i] - queued[i] for i in queued]
                return latencies, tasks / (max(started.values()) - first)
            finally:
                await asyncio.wait_for(core.close(), 60)
                await asyncio.wait_for(coordinator.close(), 60)


async def claim_rate(claimers: int, tasks: int) -> tuple[float, list[float]]:
    """The claim alone (no agent): `claimers` coordinators, each its own connection pool as a
    worker process has, draining `tasks` queued tasks at once -> (claims/s, claim latencies)."""
    from orchestrator.states import TaskState
    from orchestrator.store import Store
    from orchestrator.store.tables import utcnow

    with tempfile.TemporaryDirectory(prefix="taskpin-bench-claims-") as tmp:
        async with Fleet(Path(tmp), None, {}) as fleet:
            seed = await Store.open(fleet.url)
            for i in range(tasks):
                task = await seed.create_task(title=f"t{i}", prompt="p", owner=OWNER, repo="app", agent="a",
                                              base_branch="main", branch_for=lambda n: f"taskpin/{n}")
                await seed.transition(task.id, TaskState.BACKLOG, TaskState.QUEUED, actor=OWNER,
                                      reason="dispatched", queued_at=utcnow())
            stores = [await Store.open(fleet.url, upgrade=False) for _ in range(claimers)]
            coords = [PostgresCoordinator(f"c{i}", store, fleet.url) for i, store in enumerate(stores)]
            latencies: list[float] = []

            async def drain(coord):
                while True:
                    t = time.perf_counter()
                    if await coord.claim_next(30) is None:
                        return
                    latencies.append(time.perf_counter() - t)
            started = time.perf_counter()
            await asyncio.gather(*(drain(c) for c in coords))
            elapsed = time.perf_counter() - started
            for store in [seed, *stores]:
                await store.close()
            return len(latencies) / elapsed, latencies


async def run(quick: bool) -> list[Figure]:
    agents, rounds = (2, 1) if quick else (10, 3)
    asked, replied = await round_trips(agents, rounds)
    figures = [
        Figure(f"{agents} agents on 2 workers: ask -> thread p50", ms(pct(asked, 50)), "ms", samples=len(asked)),
        Figure(f"{agents} agents on 2 workers: ask -> thread p99", ms(pct(asked, 99)), "ms", "<= 300",
               samples=len(asked), notes="worker -> journal (NOTIFY) -> slack process -> outbox -> Slack; "
                                         "questions one every 1.2 s, under the channel's post pace; the edit "
                                         "closing the previous question may still wait for chat.update's budget "
                                         "(50/min, the board first): a question passes it"),
        Figure(f"{agents} agents on 2 workers: reply -> agent p50", ms(pct(replied, 50)), "ms", samples=len(replied)),
        Figure(f"{agents} agents on 2 workers: reply -> agent p99", ms(pct(replied, 99)), "ms", "<= 300",
               samples=len(replied), notes="slack process -> call through the journal (NOTIFY) -> worker -> agent"),
    ]
    tasks = 8 if quick else 40
    one = None
    for workers in ((1, 2) if quick else (1, 2, 4)):
        latencies, rate = await claims(workers, tasks)
        progress(f"cluster: {workers} worker(s): {rate:.1f} agents/s")
        one = one or rate
        figures += [
            Figure(f"{workers} worker(s): claim latency p50", ms(pct(latencies, 50)), "ms", samples=len(latencies)),
            Figure(f"{workers} worker(s): claim latency p99", ms(pct(latencies, 99)), "ms", samples=len(latencies)),
            Figure(f"{workers} worker(s): agents started per second", round(rate, 2), "agents/s",
                   baseline=round(one, 2) if workers > 1 else None, baseline_name="1 worker" if workers > 1 else None,
                   samples=tasks, notes=f"{tasks} tasks dispatched at once; each start is a claim (SKIP LOCKED), "
                                        "a git worktree (each worker its own clone) and an agent process; all "
                                        f"workers share this machine's {os.cpu_count()} cores"),
        ]
    for claimers in ((1, 2) if quick else (1, 2, 4)):
        rate, latencies = await claim_rate(claimers, 40 if quick else 400)
        figures += [
            Figure(f"{claimers} claimer(s), the claim alone: claims per second", round(rate, 1), "claims/s",
                   samples=len(latencies), notes="FOR UPDATE SKIP LOCKED + the lease, one transaction; no agent "
                                                 "started: what the queue itself allows"),
            Figure(f"{claimers} claimer(s), the claim alone: latency p99", ms(pct(latencies, 99)), "ms",
                   samples=len(latencies)),
        ]
    return figures
