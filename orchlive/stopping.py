"""A task evicted on purpose is placed again only once its old copy has stopped (issue 13).

An eviction (a drain with ``evict``, a preemption, a gang's replica requeued so that the gang
stays whole) sends the task back to PENDING and deletes its inbox key on the old node in one
transaction; the old worker sees the deletion a few milliseconds later and kills its copy.
Placed at once, the task could start on another node within those milliseconds: two copies
at once. So the eviction marks the task ``stopping`` (the old node's id), the old worker
clears the mark once its copy is dead (``transitions.stopped``), and the master holds a task
so marked. A worker that cannot confirm must not hold the task for ever: the hold ends once
the node has been lost for the master's grace (its supervisors stopped every copy by then),
or after ``STOP_WAIT`` seconds (a worker restarted meanwhile, whose supervisors killed its
copies when it died, knows nothing to confirm).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from orchlive.models import Task

__all__ = ["STOP_WAIT", "StopWaits"]

STOP_WAIT = 10.0  # seconds a live node has to confirm that an evicted copy stopped


class StopWaits:
    """The pending tasks held until their old copy stopped; ``wake`` is set when a hold runs out."""

    def __init__(self, wake: asyncio.Event, wait: float = STOP_WAIT) -> None:
        self.wake = wake
        self.wait = wait
        self._since: dict[str, float] = {}  # task id -> when this master first saw it held (time.monotonic)
        self._timer: float | None = None  # when the wake timer set last fires (time.monotonic)

    def held(self, tasks: Iterable[Task], lost_long_enough: Callable[[str], bool]) -> dict[str, str]:
        """The tasks to hold, with the reason each waits.

        ``lost_long_enough(node)``: whether the node's lease expired the master's grace ago.
        """
        now = time.monotonic()
        held: dict[str, str] = {}
        marked = set()
        for task in tasks:
            node = task.stopping
            if node is None:
                continue
            marked.add(task.id)
            since = self._since.setdefault(task.id, now)
            if now - since < self.wait and not lost_long_enough(node):
                held[task.id] = f"waiting for node {node} to confirm that the evicted copy stopped"
        self._since = {tid: t for tid, t in self._since.items() if tid in marked}
        due = min((self._since[tid] + self.wait for tid in held), default=None)
        if due is not None and (self._timer is None or self._timer <= now or due < self._timer):
            asyncio.get_running_loop().call_later(due - now + 0.01, self.wake.set)
            self._timer = due
        return held
