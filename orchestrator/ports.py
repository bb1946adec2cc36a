"""Distinct port ranges for live tasks, so parallel dev servers do not collide."""
from __future__ import annotations

from .config import Settings


class PortPool:
    """Distinct port ranges for live tasks: slot n is [base + n*size, base + (n+1)*size).

    `size` is the largest `ports` of any repository, so every task's range fits its slot.
    Held in this process: one taskpin process runs a task's session at a time."""

    def __init__(self, base: int, size: int, top: int = 65535):
        self.base, self.size = base, max(1, size)
        self.slots = max(0, (top + 1 - base) // self.size)
        self._held: dict[int, int] = {}      # task id -> slot

    def acquire(self, task_id: int) -> int | None:
        """The first port of the task's range (the same one while it is held); None when full."""
        if task_id in self._held:
            return self.base + self._held[task_id] * self.size
        used = set(self._held.values())
        slot = next((n for n in range(self.slots) if n not in used), None)
        if slot is None:
            return None
        self._held[task_id] = slot
        return self.base + slot * self.size

    def release(self, task_id: int) -> None:
        self._held.pop(task_id, None)

    def held(self) -> dict[int, int]:
        """task id -> first port, for every range in use."""
        return {task: self.base + slot * self.size for task, slot in self._held.items()}


def port_pool(settings: Settings) -> PortPool:
    size = max((repo.ports for repo in settings.repos.values()), default=0)
    return PortPool(settings.port_base, size)
