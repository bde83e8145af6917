"""Gang placement: ``k`` replicas of one task placed together, or none of them.

A gang (a distributed training job's pods, an MPI job's ranks) is useless in part, and a
part that holds resources while it waits for the rest can deadlock against another
gang doing the same. So a gang is placed in one step: its replicas are decided one after
another on a private copy of the matrix (each replica sees the ones before it), and the
placements are returned only if at least ``min_replicas`` found room (kube's
coscheduling ``PodGroup.minMember``; ``min_replicas = replicas`` by default). Otherwise
nothing is returned and nothing was held: the owner's matrix is never touched here.

Each replica is decided by the owner's policy (``decide``), so a gang under bin packing
packs its replicas and under spread spreads them; a failed trial still advances the
policy's state (round robin's cursor, its random stream), as the decisions were made.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from orchsim.scheduling.filters import ActiveFilters, infeasible
from orchsim.scheduling.matrix import NodeMatrix
from orchsim.scheduling.node_devices import Assignment
from orchsim.scheduling.select import PreparedPolicy, decide

__all__ = ["Gang", "gang_could_ever_fit", "gang_fits", "place_gang"]

Gang = tuple[int, int]  # (replicas, min_replicas)


def place_gang(
    nodes: NodeMatrix,
    request: np.ndarray,
    gang: Gang,
    prepared: PreparedPolicy,
    node_selector: Mapping[str, str] | None = None,
) -> list[tuple[int, Assignment]]:
    """Nodes (and devices) for as many replicas as fit, up to ``replicas``; empty below ``min_replicas``.

    Args:
        nodes: The cluster. Read only: the trial runs on a copy.
        request: float64 ``(R,)``, the request of ONE replica.
        gang: ``(replicas, min_replicas)``, ``1 <= min_replicas <= replicas``.
        prepared: The owner's policy.
        node_selector: Labels every replica's node must carry.

    Returns:
        One ``(node, devices)`` per replica placed (a node may appear more than once),
        or ``[]`` when fewer than ``min_replicas`` fit: then none may be placed.
    """
    replicas, min_replicas = gang
    trial = nodes.copy()
    vector = request.tolist()
    placed: list[tuple[int, Assignment]] = []
    for _ in range(replicas):
        decision = decide(trial, request, prepared, node_selector, explain=False)
        if decision.node is None:
            break
        trial.allocate_unchecked(decision.node, vector, decision.devices)
        placed.append((decision.node, decision.devices))
    return placed if len(placed) >= min_replicas else []


def gang_could_ever_fit(capacity: np.ndarray, request: np.ndarray, min_replicas: int, candidates: np.ndarray) -> bool:
    """Could ``min_replicas`` replicas ever run at once on the ``candidates`` nodes, all of them empty?

    Replicas per node are ``min over requested resources of floor(capacity / request)``;
    the gang could fit if their sum reaches ``min_replicas``. Devices are counted as
    one amount per node (an upper bound: the decision checks the devices themselves).

    Args:
        capacity: float64 ``(R, N)``.
        request: float64 ``(R,)``, one replica's request.
        min_replicas: Replicas that must run together.
        candidates: bool ``(N,)``, nodes that may hold a replica (labels match, not removed).
    """
    asked = request > 0
    if not asked.any():
        return bool(candidates.any())
    per_node = np.floor(capacity[asked] / request[asked, None]).min(axis=0)
    return float(per_node[candidates].sum()) >= min_replicas


def gang_fits(
    nodes: NodeMatrix,
    request: np.ndarray,
    min_replicas: int,
    node_selector: Mapping[str, str] | None = None,
    filters: ActiveFilters = (),
) -> bool:
    """Do ``min_replicas`` replicas fit on ``nodes`` now, by the filters alone (first fit, no policy)?

    Whole replicas per node are counted on a copy, one node at a time, so a reservation
    can ask "does the gang fit by then" without touching the policy's state.
    """
    trial = nodes.copy()
    vector = request.tolist()
    placed = 0
    while placed < min_replicas:
        bad = infeasible(trial, request, node_selector, extra=filters)
        if bad.all():
            return False
        trial.allocate_unchecked(int(np.argmin(bad)), vector)
        placed += 1
    return True
