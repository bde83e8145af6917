"""Victim selection for preemption: which lower-priority tasks to evict, and on which node.

When a task fits nowhere, kube-scheduler's DefaultPreemption plugin
(``pkg/scheduler/framework/plugins/defaultpreemption``, with the shared logic in
``pkg/scheduler/framework/preemption``) looks for ONE node where evicting tasks of
strictly lower priority makes room. This module is that rule, as a pure function over
columns, so the simulator and the live master choose the same victims:

1. **Per node, the fewest victims** (``selectVictimsOnNode``): take away every running
   task of lower priority; if the task still does not fit, the node is no candidate.
   Otherwise give tasks back ("reprieve"), most important first (higher priority, then
   earlier start), keeping each one that still leaves room; the rest are the victims.
2. **Among candidate nodes** (``pickOneNodeForPreemption``), in this order:

   a. the lowest highest-priority victim;
   b. the lowest sum of victim priorities, each offset by 2**31 as kube does (so that
      negative priorities count too; with the offset, fewer victims nearly always
      means a lower sum);
   c. the fewest victims;
   d. the latest start among the highest-priority victims (the one that has run least
      loses the least work);
   e. the lowest node index.

   kube's first criterion, fewest PodDisruptionBudget violations, has no counterpart
   here (no disruption budgets yet), so it is left out.

Only amounts are checked (``free + released >= request`` per resource); label and
schedulability checks come in through ``candidates``. A device resource is checked as
one amount per node: the owner's next decision checks the devices themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from orchsim.scheduling.node_devices import Assignment

__all__ = ["PRIORITY_OFFSET", "Preemption", "RunningTasks", "choose_victims"]

# kube adds MaxInt32 + 1 to every priority before summing (minSumPrioritiesScoreFunc).
PRIORITY_OFFSET = 2**31


@dataclass(frozen=True)
class RunningTasks:
    """The running tasks that preemption may consider, as columns (one row per task).

    Attributes:
        task: The owner's task keys, ``(M,)``.
        node: int64 ``(M,)``, node index of each task.
        priority: int64 ``(M,)``.
        demand: float64 ``(M, R)``, each task's request in the matrix's resource order.
        start: float64 ``(M,)``, when each task started (seconds, any clock).
        devices: Each task's devices (``Assignment``; None or empty: none), or None when
            the owner does not say: then a request for tracked devices does not preempt.
    """

    task: Sequence[Any]
    node: np.ndarray
    priority: np.ndarray
    demand: np.ndarray
    start: np.ndarray
    devices: Sequence[Assignment | None] | None = None

    @staticmethod
    def empty(n_resources: int) -> RunningTasks:
        """No running task (nothing to preempt)."""
        return RunningTasks([], np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, n_resources)), np.zeros(0))


@dataclass(frozen=True)
class Preemption:
    """Where to make room, and whom to evict for it.

    Attributes:
        node: The node index.
        victims: Row indices into the ``RunningTasks`` given, most important first.
    """

    node: int
    victims: np.ndarray


def choose_victims(
    free: np.ndarray,
    request: np.ndarray,
    priority: int,
    running: RunningTasks,
    candidates: np.ndarray,
) -> Preemption | None:
    """The node and the victims (strictly lower priority) that make room for ``request``.

    Args:
        free: float64 ``(R, N)``, free capacity per node now. Not mutated.
        request: float64 ``(R,)``, the preemptor's request.
        priority: The preemptor's priority; only tasks of strictly lower priority may go.
        running: The running tasks.
        candidates: bool ``(N,)``, nodes the preemptor may use apart from their load
            (schedulable, labels match).

    Returns:
        The chosen node and its victims, or None when no node can be freed enough.
    """
    lower = running.priority < priority
    if not lower.any():
        return None
    rows = np.flatnonzero(lower & candidates[running.node])
    if not len(rows):
        return None
    n_nodes = free.shape[1]
    # What evicting every lower-priority task would free, per resource and node.
    freeable = np.zeros_like(free)
    for r in range(free.shape[0]):
        freeable[r] = np.bincount(running.node[rows], weights=running.demand[rows, r], minlength=n_nodes)
    enough = candidates & np.all(free + freeable >= request[:, None], axis=0)
    best: tuple[tuple[float, ...], Preemption] | None = None
    for node in np.flatnonzero(enough).tolist():
        on_node = rows[running.node[rows] == node]
        victims = _victims_on_node(free[:, node], request, running, on_node)
        if not len(victims):
            continue  # it fits without evicting anything: the caller decides on its own
        key = _node_key(running, victims, node)
        if best is None or key < best[0]:
            best = (key, Preemption(node, victims))
    return None if best is None else best[1]


def _victims_on_node(free: np.ndarray, request: np.ndarray, running: RunningTasks, rows: np.ndarray) -> np.ndarray:
    """Rows that must go on one node: all lower ones taken away, then the most important given back."""
    # Most important first: higher priority, then earlier start (kube's MoreImportantPod).
    order = rows[np.lexsort((running.start[rows], -running.priority[rows]))]
    room = free + running.demand[order].sum(axis=0)
    victims = []
    for row in order.tolist():
        after = room - running.demand[row]
        if np.all(after >= request):
            room = after  # reprieved: it keeps running
        else:
            victims.append(row)
    return np.asarray(victims, dtype=np.int64)


def _node_key(running: RunningTasks, victims: np.ndarray, node: int) -> tuple[float, ...]:
    """Sort key of a candidate node: smaller is better (criteria a-e of the module docstring)."""
    priorities = running.priority[victims]
    highest = int(priorities.max())
    total = int((priorities + PRIORITY_OFFSET).sum())
    # Victims are ordered most important first, so among the highest-priority ones the
    # earliest start is the first; kube prefers the node where that start is latest.
    earliest_of_highest = float(running.start[victims[priorities == highest]].min())
    return (highest, total, len(victims), -earliest_of_highest, node)
