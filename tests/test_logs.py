"""Per-task logs: the last lines on demand, old files deleted after the retention."""
import os
import time

from orchestrator.logs import TaskLogs


def test_tail_returns_the_last_lines_even_of_a_large_log(tmp_path):
    logs = TaskLogs(tmp_path, retention_days=14)
    for i in range(20_000):
        logs.append(7, f"line {i} " + "x" * 40)
    assert logs.tail(7, 3) == [f"line {i} " + "x" * 40 for i in (19_997, 19_998, 19_999)]
    assert logs.tail(8, 3) == []          # a task without a log
    logs.close()
    assert logs.tail(7, 1) == ["line 19999 " + "x" * 40]


def test_prune_deletes_only_logs_older_than_the_retention(tmp_path):
    logs = TaskLogs(tmp_path, retention_days=1)
    for task_id in (1, 2, 3):
        logs.append(task_id, "hello")
    logs.close(1)
    logs.close(2)
    old = time.time() - 2 * 86400
    for task_id in (1, 3):
        os.utime(logs.path(task_id), (old, old))
    assert logs.prune() == 1                      # 3 is still being written: kept
    assert not logs.path(1).exists() and logs.path(2).exists() and logs.path(3).exists()
