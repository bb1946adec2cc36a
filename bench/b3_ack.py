"""3. Ack latency of /task and of the board's Dispatch button while 50 agents run.

The 50 `emitter` agents write 20 lines/s each (1000 events/s in all) for the whole measurement.
Each round: 5 `/task <text>` slash commands, then a click on each new card's Dispatch button once
the board shows it. The emulator measures each ack (Socket Mode envelope sent -> ack received).
Baseline: the same with no agent running, in the same run.
"""
from __future__ import annotations

from bot.emulator.blockkit import iter_elements
from bot.ids import ActionId, make_action_id

from .harness import BOARD, OWNER, Figure, agent, live_sessions, ms, pct, progress, stack, wait_until

NAME = "ack"


def has_button(emu, ts: str, action_id: str) -> bool:
    msg = emu.ws.channels[BOARD].msgs.get(ts, {})
    return any(el.get("action_id") == action_id for _b, el in iter_elements(msg.get("blocks") or []))


async def sample(st, rounds: int, per_round: int, slash: list, clicks: list) -> None:
    core, emu = st.core, st.emu
    for r in range(rounds):
        before = {t.id for t in await core.list_tasks()}
        for j in range(per_round):
            slash.append((await emu.slash_command(OWNER, "/task", f"bench ack {r}.{j}")).latency)
        new = await wait_until(lambda: _new_ids(core, before, per_round), timeout=10)
        for task_id in new:
            action_id = make_action_id(ActionId.DISPATCH, task_id)
            await wait_until(lambda: has_button(emu, st.board_ts(), action_id), timeout=15)
            ack = await emu.click_button(OWNER, BOARD, st.board_ts(), action_id, str(task_id))
            clicks.append(ack.latency)


async def _new_ids(core, before: set, n: int):
    new = [t.id for t in await core.list_tasks() if t.id not in before]
    return new if len(new) >= n else None


async def run(quick: bool) -> list[Figure]:
    n_agents, rounds, idle_rounds, per = (4, 1, 1, 2) if quick else (50, 6, 2, 5)
    agents = {"emitter": agent("emitter", BENCH_SCHEDULE="20:100000", BENCH_HANG=1)}
    idle_slash, idle_clicks, slash, clicks = [], [], [], []
    async with stack(agents, max_concurrent_sessions=n_agents) as st:
        await sample(st, idle_rounds, per, idle_slash, idle_clicks)
        for i in range(n_agents):
            task = await st.core.create_task(prompt=f"emitter {i}", owner=OWNER)
            await st.core.dispatch(task.id, actor=OWNER)
        await wait_until(lambda: live_sessions(st.core) >= n_agents, timeout=45, soft=True)
        progress(f"{live_sessions(st.core)} agents running; sampling acks")
        await sample(st, rounds, per, slash, clicks)
    note = f"{n_agents} agents writing 20 lines/s each; baseline: no agent running"
    base = dict(baseline_name="idle")
    return [
        Figure("/task ack p50", ms(pct(slash, 50)), "ms", baseline=ms(pct(idle_slash, 50)), samples=len(slash), **base),
        Figure("/task ack p99", ms(pct(slash, 99)), "ms", "<= 100", baseline=ms(pct(idle_slash, 99)),
               samples=len(slash), notes=note, **base),
        Figure("Dispatch ack p50", ms(pct(clicks, 50)), "ms", baseline=ms(pct(idle_clicks, 50)), samples=len(clicks), **base),
        Figure("Dispatch ack p99", ms(pct(clicks, 99)), "ms", "<= 100", baseline=ms(pct(idle_clicks, 99)),
               samples=len(clicks), **base),
    ]
