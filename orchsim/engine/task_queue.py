"""The simulator's queue of waiting tasks, kept in the live master's order.

The master orders its queue by priority, then ``queue_time`` (a task's creation, or its
eviction for a higher priority), then id (``orchlive.cache.queue_key``); the shared pass
tries tasks by priority, in queue order within one. So the engine keeps its queue in the
order the tasks joined it for their own sake: their arrival, or their eviction. Arrivals
come in submission order and join the tail (``append``, the hot path). A task that comes
back (``rejoin``) goes to its place: a victim behind every task that joined before its
eviction (``evicted``), as kube-scheduler's queue puts a re-added pod (in front, it would
take the next free room and be the next preemptor's victim again); a task lost with its
node, or a DAG child its parents released, at its arrival's place.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable

__all__ = ["TaskQueue"]


class TaskQueue(deque[int]):
    """Waiting task indices (arrival ``i`` is task ``i``) in the live master's order."""

    def __init__(self) -> None:
        super().__init__()
        self.rejoined: list[int] = []  # back since the last pass: new to the next one, as to the master's
        self._join_key: dict[int, tuple[int, int]] = {}  # a victim's place (``evicted``)
        self._evictions = 0

    def key(self, task: int) -> tuple[int, int]:
        """Arrival ``i`` is ``(i, 0)``; a victim, ``(the last arrival before its eviction, eviction count)``."""
        return self._join_key.get(task, (task, 0))

    def evicted(self, task: int, arrived: int) -> None:
        """``task`` was evicted for a higher priority after ``arrived`` arrivals: its place is behind them."""
        self._evictions += 1
        self._join_key[task] = (arrived - 1, self._evictions)

    def rejoin(self, task: int) -> None:
        """``task`` comes back: at its place, and new to the next pass."""
        self.insert(bisect_left(self, self.key(task), key=self.key), task)
        self.rejoined.append(task)

    def take_new(self, new: Iterable[int], pending: Callable[[int], bool]) -> tuple[int, ...]:
        """``new`` and the tasks rejoined since the last pass, those ``pending``, in queue order."""
        joined = {task for task in (*new, *self.rejoined) if pending(task)}
        self.rejoined.clear()
        return tuple(sorted(joined, key=self.key))
