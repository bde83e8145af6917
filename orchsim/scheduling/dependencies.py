"""Task dependencies as a DAG: order, cycles, and the critical path.

Pure functions over parent lists (``parents[i]``: the indices task ``i`` waits for), shared
by the scenario check (cycles rejected when a scenario is loaded), the simulator (per-DAG
critical path and slack) and, later, the live API (cycles rejected at submit).

The critical path of a DAG is its longest chain of durations from a root to a leaf: with
unlimited capacity and no queueing, a DAG whose roots arrive together finishes exactly one
critical path after they arrive, so ``makespan - critical path`` (the slack) is the time
it lost to waiting for room.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["CycleError", "critical_path", "topological_order"]


class CycleError(ValueError):
    """The dependencies contain a cycle.

    Attributes:
        cycle: Indices along one cycle, the first repeated at the end (``[a, b, a]``).
    """

    def __init__(self, cycle: list[int]) -> None:
        super().__init__("a cycle of dependencies: " + " -> ".join(map(str, cycle)))
        self.cycle = cycle


def topological_order(parents: Sequence[Sequence[int]]) -> list[int]:
    """Every index after all of its parents (Kahn's algorithm; ties by index).

    Raises:
        CycleError: naming one cycle.
    """
    n = len(parents)
    waiting = [len(set(p)) for p in parents]
    children: list[list[int]] = [[] for _ in range(n)]
    for child, mine in enumerate(parents):
        for parent in set(mine):
            children[parent].append(child)
    ready = [i for i in range(n) if waiting[i] == 0]
    order: list[int] = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for child in children[node]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    if len(order) < n:
        raise CycleError(_one_cycle(parents, {i for i in range(n) if waiting[i] > 0}))
    return order


def _one_cycle(parents: Sequence[Sequence[int]], stuck: set[int]) -> list[int]:
    """A cycle among the ``stuck`` nodes: walk to a stuck parent until a node repeats."""
    node = min(stuck)
    seen: list[int] = []
    while node not in seen:
        seen.append(node)
        node = min(p for p in parents[node] if p in stuck)
    cycle = seen[seen.index(node) :]
    return [*reversed(cycle), cycle[-1]] if len(cycle) > 1 else [node, node]


def critical_path(duration: np.ndarray, parents: Sequence[Sequence[int]]) -> float:
    """Length of the longest chain of ``duration`` through the DAG (seconds).

    Args:
        duration: float64 ``(n,)``, each task's run time.
        parents: ``parents[i]``: indices (into ``duration``) task ``i`` waits for.

    Raises:
        CycleError: the parents contain a cycle.
    """
    finish = np.zeros(len(duration))
    for i in topological_order(parents):
        start = max((finish[p] for p in parents[i]), default=0.0)
        finish[i] = start + duration[i]
    return float(finish.max()) if len(finish) else 0.0
