"""Two decisions at one moment have exactly one effect; a crash mid-approval is settled at start.

Approve racing Reject used to merge the branch and then fail the task: the merge ran before the
compare-and-set. A decision now takes the task first (awaiting_review -> approving), then acts.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import IllegalTransition, TaskState, TaskView
from tests.core.helpers import make_settings, scripted, started, wait_state

S = TaskState
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OWNER, APPROVER = "U_OWNER", "U_APPROVER"
ROUNDS = int(os.environ.get("TASKPIN_RACE_ROUNDS", "6"))


def _git(repo, *args) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def _on_main(repo, path: str) -> bool:
    return subprocess.run(["git", "cat-file", "-e", f"main:{path}"], cwd=repo, capture_output=True).returncode == 0


@pytest.fixture
def repo_off_main(git_repo):
    """The user's checkout is on another branch, so taskpin may merge into main."""
    _git(git_repo, "checkout", "-q", "-b", "dev")
    return git_repo


def _writers(n: int) -> dict[str, dict]:
    """One agent per round, each writing its own file, so every merge is clean."""
    return {f"w{i}": scripted([{"write_file": {"path": f"round{i}.txt", "content": f"{i}\n"}}, {"finish": "ok"}])
            for i in range(n)}


async def _tasks_in_review(core, n: int) -> list[TaskView]:
    tasks = [await core.create_task(prompt=f"round {i}", owner=OWNER, agent=f"w{i}") for i in range(n)]
    for task in tasks:
        await core.dispatch(task.id, actor=OWNER)
    return [await wait_state(core, task.id, S.AWAITING_REVIEW, timeout=60) for task in tasks]


async def test_approve_racing_reject_has_exactly_one_outcome(tmp_path, repo_off_main, db_url):
    core = await started(make_settings(tmp_path, repo_off_main, _writers(ROUNDS), db_url=db_url,
                                       on_approve="merge", approvers=[APPROVER]))
    try:
        outcomes = []
        for i, task in enumerate(await _tasks_in_review(core, ROUNDS)):
            approve = core.approve(task.id, actor=OWNER)
            reject = core.reject(task.id, actor=APPROVER, reason="not wanted")
            pair = (approve, reject) if i % 2 == 0 else (reject, approve)
            results = await asyncio.gather(*pair, return_exceptions=True)
            won = [r for r in results if isinstance(r, TaskView)]
            lost = [r for r in results if not isinstance(r, TaskView)]
            assert len(won) == 1 and len(lost) == 1, results
            assert isinstance(lost[0], IllegalTransition), lost[0]
            final = await core.get_task(task.id)
            assert final.state in (S.COMPLETED, S.FAILED)
            assert _on_main(repo_off_main, f"round{i}.txt") == (final.state is S.COMPLETED), (
                f"round {i}: task ended {final.state.value}, yet main "
                f"{'has' if _on_main(repo_off_main, f'round{i}.txt') else 'lacks'} its file")
            # The loser learns who won.
            assert lost[0].by == (OWNER if final.state is S.COMPLETED else APPROVER)
            history = [h.to_state for h in await core.history(task.id)]
            assert history.count(S.COMPLETED) + history.count(S.FAILED) == 1, history
            outcomes.append(final.state)
        assert len(outcomes) == ROUNDS
    finally:
        await core.close()


async def test_every_second_decision_is_refused_and_names_the_first(tmp_path, git_repo, db_url):
    """Request changes, cancel and retry are claimed by compare-and-set too: one of two wins."""
    core = await started(make_settings(tmp_path, git_repo, _writers(2), db_url=db_url, approvers=[APPROVER]))
    try:
        first, second = await _tasks_in_review(core, 2)
        results = await asyncio.gather(core.request_changes(first.id, "more", actor=OWNER),
                                       core.reject(first.id, actor=APPROVER), return_exceptions=True)
        assert sum(isinstance(r, TaskView) for r in results) == 1, results
        assert sum(isinstance(r, IllegalTransition) for r in results) == 1, results
        await core.reject(second.id, actor=OWNER)
        results = await asyncio.gather(core.retry(second.id, actor=OWNER), core.retry(second.id, actor=APPROVER),
                                       return_exceptions=True)
        assert sum(isinstance(r, TaskView) for r in results) == 1, results
        [refused] = [r for r in results if isinstance(r, IllegalTransition)]
        assert refused.from_state is S.BACKLOG and refused.by in (OWNER, APPROVER)
    finally:
        await core.close()


def _settings_file(tmp_path, settings) -> Path:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(json.loads(settings.model_dump_json(exclude={"config"}))))
    return path


async def _approve_in_a_process_killed_at(point: str, settings_file: Path, task_id: int) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "approve_process.py"), str(settings_file), str(task_id), OWNER,
        cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT), "TASKPIN_CRASH_AT": point},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == -9, (proc.returncode, out, err)
    return proc.returncode


@pytest.mark.parametrize("point, landed", [("approve.claimed", False), ("approve.acted", True)])
async def test_a_crash_mid_approval_is_settled_at_the_next_start(tmp_path, repo_off_main, db_url, point, landed):
    settings = make_settings(tmp_path, repo_off_main, _writers(1), db_url=db_url, on_approve="merge",
                             approvers=[APPROVER])
    core = await started(settings)
    try:
        [task] = await _tasks_in_review(core, 1)
    finally:
        await core.close()
    await _approve_in_a_process_killed_at(point, _settings_file(tmp_path, settings), task.id)
    assert _on_main(repo_off_main, "round0.txt") is landed

    core = await started(settings)   # recovery settles the approval the crash cut off
    try:
        task = await core.get_task(task.id)
        assert task.state is (S.COMPLETED if landed else S.AWAITING_REVIEW)
        assert _on_main(repo_off_main, "round0.txt") is landed
        if not landed:   # the approval can simply be given again
            await core.approve(task.id, actor=APPROVER)
            assert (await core.get_task(task.id)).state is S.COMPLETED
            assert _on_main(repo_off_main, "round0.txt")
        else:
            [last] = (await core.history(task.id))[-1:]
            assert last.actor == OWNER and "after a restart" in last.reason
    finally:
        await core.close()


# ---- the same race through Slack: two people click at one moment ---------------------------

from bot.ids import ActionId, make_action_id  # noqa: E402
from tests.e2e.conftest import BOARD, emu, taskpin  # noqa: E402,F401  (fixtures)
from tests.e2e.scenario import board_message, click_card, create_by_slash, wait_board  # noqa: E402

E2E_ROUNDS = int(os.environ.get("TASKPIN_RACE_ROUNDS_E2E", "3"))


async def test_two_reviewers_clicking_at_once_through_slack(emu, taskpin):
    _git(taskpin.repo, "checkout", "-q", "-b", "dev")
    owner, approver = "U_OWNER", "U_APPROVER"
    await taskpin.start(_writers(E2E_ROUNDS), on_approve="merge", approvers=[approver])
    core = taskpin.core
    for i in range(E2E_ROUNDS):
        task_id = await create_by_slash(emu, core, f"round {i}")
        await core.store.update_task(task_id, agent=f"w{i}")
        await click_card(emu, owner, ActionId.DISPATCH, task_id)
        await wait_state(core, task_id, S.AWAITING_REVIEW, timeout=30)
        approve_id = make_action_id(ActionId.APPROVE, task_id)
        await wait_board(emu, lambda _: approve_id in str(board_message(emu)), what="approve button")
        board_ts = board_message(emu)["ts"]
        before = {u: len(emu.ephemerals(user=u)) for u in (owner, approver)}
        acks = await asyncio.gather(
            emu.click_button(owner, BOARD, board_ts, approve_id, str(task_id)),
            emu.click_button(approver, BOARD, board_ts, make_action_id(ActionId.REJECT, task_id), str(task_id)))
        assert all(ack.acked and ack.latency < 3 for ack in acks)

        async def settled():
            task = await core.get_task(task_id)
            return task if task.state in (S.COMPLETED, S.FAILED) else None
        final = await emu.wait_for(settled, timeout=15)
        winner, loser = (owner, approver) if final.state is S.COMPLETED else (approver, owner)
        assert _on_main(taskpin.repo, f"round{i}.txt") == (final.state is S.COMPLETED)
        # The loser alone is told, naming the winner; the winner gets no error.
        told = await emu.wait_for(lambda: emu.ephemerals(user=loser)[before[loser]:], timeout=5)
        text = json.dumps(told)
        assert f"<@{winner}>" in text and "already" in text, text
        assert "approved" in text if winner == owner else "rejected" in text
        assert len(emu.ephemerals(user=winner)) == before[winner]
        await wait_board(emu, lambda _: approve_id not in str(board_message(emu)), what="decided card")
