"""Gangs in the live cluster: all replicas placed in one transaction, or none; a gang kept whole after.

A gang of ``k`` replicas is ``k`` task records (``orchlive.submission``): replica 0's id is
the gang's. The shared pass decides (``orchsim.scheduling.gangs.place_gang`` through
``PassExtensions``): the queue holds the gang once, by its id, and only while every replica
is PENDING; ``place_gang`` puts each placed replica on the master's matrix and keeps the
batch, which the master commits as ONE ``transitions.place`` (the spare replicas beyond
those placed, when ``min_replicas`` let it start with fewer, go PENDING -> SKIPPED in the
same transaction). A gang that does not fit holds nothing: no replica is written.

Afterwards ``keep_whole`` keeps a gang's replicas together, as Slurm does a job's tasks:

* a replica FAILED (its command failed, it could not start, or it ran out of attempts
  with its node): every replica still running or waiting fails with it;
* a replica back to PENDING (its node was lost, it was drained) while others hold or have
  ended: they all go back to PENDING (resources released, workers stop them), and the gang
  is queued and placed anew as a whole; ``attempts`` counts the lost replica's placements.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from orchlive import transitions
from orchlive.cache import ClusterCache
from orchlive.models import Task, TaskState
from orchlive.node_matrix import MatrixBuilder
from orchlive.store import Store
from orchsim.scheduling import NodeMatrix
from orchsim.scheduling.gangs import Gang, gang_could_ever_fit
from orchsim.scheduling.node_devices import Assignment

__all__ = ["GangPass", "keep_whole"]

Placed = tuple[int, Assignment]  # a replica's node index and devices, as the core decided

log = logging.getLogger(__name__)


class GangPass:
    """One pass's gangs: the queue with each gang once, the core's callbacks, the batches to commit."""

    def __init__(self, matrices: MatrixBuilder, matrix: NodeMatrix, tasks: dict[str, tuple[Task, int]]) -> None:
        self.matrices = matrices
        self.matrix = matrix
        self.tasks = tasks  # the pending tasks, by id
        self.commits: list[tuple[list[transitions.Placement], list[tuple[Task, int]]]] = []
        self.any = False  # the queue holds a gang: the pass needs the gang callbacks

    def queue(self, ids: list[str]) -> list[str]:
        """``ids`` with each gang once, by its id, where its replica 0 stands; a gang not all PENDING left out."""
        out = []
        for tid in ids:
            task = self.tasks[tid][0]
            if task.gang is None:
                out.append(tid)
            elif task.replica == 0 and all(rid in self.tasks for rid in task.replica_ids()):
                out.append(tid)
                self.any = True
        return out

    def gang_of(self, tid: str) -> Gang | None:
        """The core's ``(replicas, min_replicas)`` for a gang, None for a single task."""
        return self.tasks[tid][0].gang_size

    def never_fits(self, tid: str, request: np.ndarray, selector: Mapping[str, str] | None) -> bool:
        """A gang whose ``min_replicas`` could never run at once on these nodes, all of them empty."""
        gang = self.gang_of(tid)
        if gang is None:
            return False
        candidates = np.ones(self.matrix.n_nodes, dtype=bool)
        if selector:
            candidates &= self.matrix.label_mask(selector)
        return not gang_could_ever_fit(self.matrix.capacity, request, gang[1], candidates)

    def place_gang(self, request_of: Callable[[str], np.ndarray]) -> Callable[[Any, list[Placed]], None]:
        """The core's ``place_gang``: replica ``i`` on the ``i``-th placement, on the matrix now, committed later."""

        def place(tid: str, placements: list[Placed]) -> None:
            replicas = [self.tasks[rid] for rid in self.tasks[tid][0].replica_ids()]
            batch = []
            for (node, devices), (task, revision) in zip(placements, replicas, strict=False):
                self.matrices.allocate(node, task, request_of(tid), devices)
                batch.append(transitions.Placement(task, revision, self.matrix.ids[node], devices))
            self.commits.append((batch, replicas[len(placements) :]))

        return place

    def spread(self, reasons: dict[str, str]) -> dict[str, str]:
        """Why a gang waits, on every one of its replicas (the pass knows it by replica 0)."""
        out = dict(reasons)
        for tid, reason in reasons.items():
            task = self.tasks[tid][0]
            if task.gang is not None:
                out.update((rid, reason) for rid in task.replica_ids() if rid in self.tasks)
        return out


def _verdict(gang: str, replicas: list[Task]) -> tuple[TaskState, str, list[Task]] | None:
    """What to do with a gang whose replicas disagree: the target state, the reason, the replicas to move."""
    failed = [t for t in replicas if t.state == TaskState.FAILED]
    if failed:
        movers = [t for t in replicas if not t.state.terminal]
        why = f"gang {gang}: replica {failed[0].replica} failed: {failed[0].reason or 'failed'}"
        return (TaskState.FAILED, why, movers) if movers else None
    pending = [t for t in replicas if t.state == TaskState.PENDING]
    movers = [t for t in replicas if t.state != TaskState.PENDING]
    if pending and movers:
        why = f"gang {gang} requeued: replica {pending[0].replica}: {pending[0].reason or 'back in the queue'}"
        return TaskState.PENDING, why, movers
    return None


async def keep_whole(store: Store, cache: ClusterCache) -> int:
    """Fail or requeue the rest of every gang one of whose replicas failed or went back; returns tasks moved.

    Gangs whose replicas all ended are forgotten (``ClusterCache.gangs``): nothing moves them again.
    """
    moved = 0
    for gang in list(cache.gangs):
        leader = cache.tasks.get(gang)
        if leader is None:
            cache.gangs.discard(gang)  # deleted
            continue
        replicas = [cache.tasks[rid][0] for rid in leader[0].replica_ids() if rid in cache.tasks]
        if all(t.state.terminal for t in replicas):
            cache.gangs.discard(gang)
            continue
        verdict = _verdict(gang, replicas)
        if verdict is None:
            continue
        state, why, movers = verdict
        for task in movers:
            was = task.state
            done = await transitions.move(store, task.id, state, why, when=lambda t, was=was: t.state == was)
            moved += done is not None
        log.info("%s (%d replica(s) to %s)", why, len(movers), state)
    return moved
