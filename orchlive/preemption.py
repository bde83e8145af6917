"""The master's side of preemption (``--preemption``): the running tasks for the core, and the evictions.

The shared pass decides (``orchsim.scheduling.pass_extensions`` and ``preemption``): the
victims, on one node, are exactly those the simulator would evict from the same state.
The master supplies what the simulator's ``TaskStructure`` supplies there:

* ``running``: every task the node ledgers hold, as ``RunningTasks`` columns in the
  matrix's node and resource order (its priority, its request, when it started; a task
  assigned but not yet started counts as starting now: it has lost nothing yet);
* ``evict``: the victims leave the matrix at once, devices included, so that the pass
  decides again with their room; the etcd writes (``transitions.preempt``) come after the
  pass, before the placements it made, so a preemptor is never placed on a ledger that
  still holds its victims.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from orchlive import transitions
from orchlive.cache import ClusterCache
from orchlive.models import Task
from orchlive.node_matrix import MatrixBuilder
from orchlive.store import Store
from orchsim.scheduling import NodeMatrix
from orchsim.scheduling.pass_extensions import PassExtensions
from orchsim.scheduling.preemption import RunningTasks

__all__ = ["Evictions", "commit_evictions"]

log = logging.getLogger(__name__)


class Evictions:
    """One pass's preemption: the ``PassExtensions`` it gives the core, and what it evicted."""

    def __init__(self, cache: ClusterCache, matrices: MatrixBuilder, matrix: NodeMatrix) -> None:
        self.cache = cache
        self.matrices = matrices
        self.matrix = matrix
        self.evicted: dict[str, Task] = {}  # victim id -> the task as it was read
        # Built once per pass and again only after an eviction: a backfill pass may ask for
        # every blocked task of its window, and the ledgers do not change within a pass.
        self._running: RunningTasks | None = None

    def extensions(self) -> PassExtensions:
        """Priorities from the tasks, ``running`` and ``evict`` below."""
        return PassExtensions(priority_of=self.priority_of, running_of=self.running, evict=self.evict)

    def priority_of(self, task_id: str) -> int:
        """A queued task's priority (the cache holds every task the pass sees)."""
        return self.cache.tasks[task_id][0].priority

    def _demand(self, task: Task) -> np.ndarray:
        return self.matrix.request_vector(task.resources.as_request())

    def _held(self) -> list[tuple[int, Task]]:
        """``(node index, task)`` for every task placed on a node and the cache knows, not evicted yet.

        A task asking for a resource the matrix has no row for (its node left, with the
        only such resource) cannot be weighed, so it is no candidate.
        """
        rows = set(self.matrix.resources)
        held = []
        for i, nid in enumerate(self.matrix.ids):
            for task_id in self.cache.on_node(nid):
                read = self.cache.tasks.get(task_id)
                if task_id in self.evicted or read is None:
                    continue
                task = read[0]
                tracked = all(name in rows for name, amount in task.resources.items() if amount)
                # A gang's replica is no victim: a gang is evicted whole or not at all (as in the simulator).
                if task.node_id == nid and task.state.holds_resources and tracked and task.gang is None:
                    held.append((i, task))
        return held

    def running(self) -> RunningTasks:
        """The tasks preemption may consider, as the core's columns."""
        if self._running is None:
            self._running = self._columns()
        return self._running

    def _columns(self) -> RunningTasks:
        held = self._held()
        if not held:
            return RunningTasks.empty(len(self.matrix.resources))
        now = time.time()
        tasks = [task for _, task in held]
        return RunningTasks(
            task=[task.id for task in tasks],
            node=np.asarray([i for i, _ in held], dtype=np.int64),
            priority=np.asarray([task.priority for task in tasks], dtype=np.int64),
            demand=np.stack([self._demand(task) for task in tasks]),
            start=np.asarray([task.start_time.timestamp() if task.start_time else now for task in tasks]),
            devices=[self.matrices.devices_of(task) for task in tasks],
        )

    def evict(self, victims: list[Any], node: int) -> None:
        """Take ``victims`` off ``node`` on the matrix; ``transitions.preempt`` follows after the pass."""
        self._running = None
        for task_id in victims:
            task = self.cache.tasks[task_id][0]
            self.matrices.release(node, task, self._demand(task))
            self.evicted[task_id] = task


async def commit_evictions(store: Store, cache: ClusterCache, preempted: list[tuple[Any, Any, int]]) -> bool:
    """``transitions.preempt`` for each ``(victim, preemptor, node)`` of a pass, mirrored in ``cache``.

    The cache then holds each victim PENDING and its node's releases (and ledger, when
    devices left it) as written, so the placements committed next see the victims' room. Returns False when
    a victim had moved on meanwhile (finished, deleted): the pass's matrix no longer says
    what etcd holds, and the next pass decides again.
    """
    all_done = True
    for victim, preemptor, node in preempted:
        task = cache.tasks[victim][0]
        by = cache.tasks[preemptor][0]
        reason = f"preempted by task {by.id} ({by.name}, priority {by.priority}) on node {task.node_id}"
        done = await transitions.preempt(store, victim, task.node_id or "", task.attempts, reason)
        if done is None:
            all_done = False
            continue
        cache.tasks[victim] = (done.task, done.revision)
        cache.note_release(task.node_id or "", done.release, done.revision)
        cache.note_placed(task.node_id or "", victim, put=False)
        log.info("task %s preempted on node %s (node index %d) by %s", victim, task.node_id, node, preemptor)
    return all_done
