"""The user's journey, step by step, through the emulator: reusable across modes and restarts."""
from __future__ import annotations

from bot.emulator.blockkit import iter_elements
from bot.ids import ActionId, make_action_id
from bot.threads import thread_marker
from orchestrator import TaskState
from tests.core.helpers import scripted, wait_state

from .conftest import BOARD, OTHER, OWNER

S = TaskState

# The agent asks which greeting to use, writes the file the owner chose, then finishes.
ASKING_AGENT = [
    {"ask": {"id": "q1", "kind": "question", "prompt": "Which greeting should I use? *bold* <!channel>",
             "options": [{"id": "hi", "label": "Hi"}, {"id": "hello", "label": "Hello"}]}},
    {"write_file": {"path": "greeting.txt", "content": "hello\n"}},
    {"emit": {"type": "usage", "input_tokens": 1200, "output_tokens": 300, "cost_usd": 0.12}},
    {"finish": "wrote greeting.txt"},
]


def asking_agent() -> dict:
    return {"bot": scripted(ASKING_AGENT)}


def board_message(emu) -> dict:
    [pinned] = emu.pinned(BOARD)
    return emu.message(BOARD, pinned["ts"])


def board_text(emu) -> str:
    return emu.text_of(board_message(emu))


async def wait_board(emu, predicate, timeout: float = 6.0, what: str = "board"):
    try:
        return await emu.wait_for(lambda: emu.pinned(BOARD) and predicate(board_text(emu)), timeout=timeout)
    except Exception as exc:
        raise AssertionError(f"{what}; the board shows:\n{board_text(emu) if emu.pinned(BOARD) else '(none)'}") from exc


async def create_by_slash(emu, core, text="Add a greeting file") -> int:
    before = {t.id for t in await core.list_tasks()}
    ack = await emu.slash_command(OWNER, "/task", text)
    assert ack.acked and ack.latency < 3

    async def created():   # the ack comes first, the task a moment later
        return [t.id for t in await core.list_tasks() if t.id not in before]
    new = await emu.wait_for(created, timeout=5)
    return new[-1]


async def click_card(emu, user: str, action: ActionId, task_id: int, timeout: float = 6.0):
    """Click a card's button, once the board shows it (a user cannot click what is not there yet)."""
    action_id = make_action_id(action, task_id)
    await wait_board(emu, lambda _: any(el.get("action_id") == action_id for _b, el in iter_elements(
        board_message(emu).get("blocks") or [])), timeout=timeout, what=f"{action_id} button on the board")
    return await emu.click_button(user, BOARD, board_message(emu)["ts"], action_id, str(task_id))


def thread_of(emu, task_id: int) -> tuple[str, list[dict]]:
    top = next(m for m in emu.messages(BOARD) if m.get("metadata") == thread_marker(task_id))
    return top["ts"], emu.thread(BOARD, top["ts"])


async def wait_thread(emu, task_id: int, needle: str, timeout: float = 6.0) -> dict:
    def find():
        try:
            _, replies = thread_of(emu, task_id)
        except StopIteration:
            return None
        return next((m for m in replies if needle in emu.text_of(m)), None)
    try:
        return await emu.wait_for(find, timeout=timeout)
    except TimeoutError:
        try:
            seen = [emu.text_of(m) for m in thread_of(emu, task_id)[1]]
        except StopIteration:
            seen = "(no thread)"
        raise AssertionError(f"no {needle!r} in the thread of #{task_id}; it shows {seen}") from None


async def run_question_to_review(emu, core, task_id: int) -> None:
    """Dispatch, the agent asks, a stranger is refused, the owner answers; ends in review."""
    await click_card(emu, OWNER, ActionId.DISPATCH, task_id)
    await wait_state(core, task_id, S.BLOCKED)
    question = await wait_thread(emu, task_id, "Which greeting")
    text = emu.text_of(question)
    assert "<@U_OWNER>" in str(question) and "<!channel>" not in str(question)
    await wait_board(emu, lambda t: "Blocked (1)" in t or "Blocked" in t and f"#{task_id}" in t, what="card blocked")

    thread_ts, _ = thread_of(emu, task_id)
    await emu.user_message(OTHER, BOARD, "use hi", thread_ts=thread_ts)
    await emu.wait_for(lambda: any("not forwarded" in emu.text_of(e) for e in emu.ephemerals(user=OTHER)), timeout=5)
    assert (await core.get_task(task_id)).state is S.BLOCKED

    await emu.user_message(OWNER, BOARD, "hello please", thread_ts=thread_ts)
    task = await wait_state(core, task_id, S.AWAITING_REVIEW)
    assert task.diff and task.diff.files == ("greeting.txt",)
    resolved = await emu.wait_for(lambda: "answered" in emu.text_of(emu.message(BOARD, question["ts"])).lower()
                                  and emu.message(BOARD, question["ts"]), timeout=5)
    assert not [b for b in resolved.get("blocks", []) if b.get("type") == "actions"], "stale buttons left"
    assert "hello please" in emu.text_of(resolved)
    await wait_thread(emu, task_id, "ready for review")
    assert text
