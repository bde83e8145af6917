"""Preemption for a gang: replicas placed one after another, each evicting by the single-task rule if it must.

A gang that does not fit (``gangs.place_gang`` found fewer than ``min_replicas`` places)
may, with preemption on, make room the way a single task does, one replica at a time, on
a private copy of the matrix: a replica that fits nowhere asks ``preemption.choose_victims``
for one node and its victims (strictly lower priority, fewest and lowest first, among the
running tasks not yet chosen), they leave the copy, and the replica is decided again. The
plan counts only if ``min_replicas`` replicas found a place; then the owner evicts every
victim and places the replicas where the copy put them (valid on its own matrix once the
victims have left). Otherwise nothing is evicted: a gang never evicts for a part of itself.
Once ``min_replicas`` are placed, the optional ones take only the room there is.

A gang asking for a tracked device (a GPU) does not preempt: the copy would have to give
back the victims' own devices, which victim selection does not see. Gangs are never victims
(``RunningTasks`` holds single tasks only): a gang is evicted whole or not at all, which a
choice on one node cannot express.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from orchsim.scheduling.gangs import Gang
from orchsim.scheduling.matrix import NodeMatrix
from orchsim.scheduling.node_devices import Assignment, needs
from orchsim.scheduling.preemption import RunningTasks, choose_victims
from orchsim.scheduling.select import PreparedPolicy, decide

__all__ = ["GangPlan", "plan_gang_preemption"]

# The replicas' places, and the evictions that make room: (victim rows of ``running``, node).
GangPlan = tuple[list[tuple[int, Assignment]], list[tuple[np.ndarray, int]]]


def _subset(running: RunningTasks, rows: np.ndarray) -> RunningTasks:
    """The running tasks at ``rows`` (those not chosen as victims yet)."""
    return RunningTasks(
        task=[running.task[i] for i in rows.tolist()],
        node=running.node[rows],
        priority=running.priority[rows],
        demand=running.demand[rows],
        start=running.start[rows],
        devices=None if running.devices is None else [running.devices[i] for i in rows.tolist()],
    )


def plan_gang_preemption(
    nodes: NodeMatrix,
    request: np.ndarray,
    gang: Gang,
    priority: int,
    running: RunningTasks,
    candidates: np.ndarray,
    prepared: PreparedPolicy,
    node_selector: Mapping[str, str] | None = None,
) -> GangPlan | None:
    """Where the gang's replicas go once the planned victims have left, or None if no plan reaches ``min_replicas``.

    Args:
        nodes: The cluster. Read only: the plan is made on a copy.
        request: float64 ``(R,)``, one replica's request.
        gang: ``(replicas, min_replicas)``.
        priority: The gang's priority; only running tasks of strictly lower priority may go.
        running: The running (single) tasks preemption may consider.
        candidates: bool ``(N,)``, nodes a replica may use apart from their load.
        prepared: The owner's policy (its state advances with each decision, as in ``place_gang``).
        node_selector: Labels every replica's node must carry.

    Returns:
        ``(placements, evictions)``: one ``(node, devices)`` per replica, and per eviction
        step the victims' row indices into ``running`` (most important first) and their node.
    """
    if needs(nodes, request):
        return None
    replicas, least = gang
    trial = nodes.copy()
    vector = request.tolist()
    left = np.arange(len(running.task))
    placed: list[tuple[int, Assignment]] = []
    evictions: list[tuple[np.ndarray, int]] = []
    for _ in range(replicas):
        decision = decide(trial, request, prepared, node_selector, explain=False)
        if decision.node is None and len(placed) < least:
            choice = choose_victims(trial.free, request, priority, _subset(running, left), candidates)
            if choice is None:
                break
            rows = left[choice.victims]
            for row in rows.tolist():
                trial.release_unchecked(int(running.node[row]), running.demand[row].tolist())
            left = np.setdiff1d(left, rows)
            evictions.append((rows, choice.node))
            decision = decide(trial, request, prepared, node_selector, explain=False)
        if decision.node is None:
            break
        trial.allocate_unchecked(decision.node, vector, decision.devices)
        placed.append((decision.node, decision.devices))
    return (placed, evictions) if len(placed) >= least else None
