from orchestrator import TaskState

from .conftest import BOARD, OWNER


async def test_slash_command_puts_a_card_on_the_pinned_board(emu, taskpin):
    await taskpin.start()
    [pinned] = await emu.wait_for(lambda: emu.pinned(BOARD))
    ack = await emu.slash_command(OWNER, "/task", "Fix the login bug")
    assert ack.acked and ack.latency < 3
    task = (await taskpin.core.list_tasks())[0]
    assert task.state is TaskState.BACKLOG
    await emu.wait_for(lambda: "Fix the login bug" in emu.text_of(emu.message(BOARD, pinned["ts"])), timeout=5)
    print(emu.ephemerals(user=OWNER))
