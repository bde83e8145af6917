"""The time series of a run, for plots: pure functions of the cluster's state at an instant.

Means in the summary come from exact integrals (``accounting``); these samples exist
to draw the run over time and for the two shape measures that have no integral form
(stranded capacity and fragmentation).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from orchsim.scheduling import NodeMatrix

__all__ = ["SERIES", "cluster_sample", "fragmentation", "series_names"]

SERIES = ("time", "queue", "running", "nodes_up", "nodes_used", "max_tasks_per_node", "fragmentation")


def series_names(resources: Sequence[str]) -> list[str]:
    """Every sampled series: the fixed ones, then utilisation and stranded share per resource."""
    return [*SERIES, *(f"{kind}_{name}" for name in resources for kind in ("util", "stranded"))]


def cluster_sample(
    nodes: NodeMatrix, dead: Collection[int], cap_total: np.ndarray, typical: np.ndarray
) -> dict[str, float]:
    """Utilisation, stranded share and fragmentation now, over the physically live cluster.

    Args:
        nodes: The scheduler's matrix.
        dead: Nodes that failed but are not yet detected: nothing runs on them, whatever
            the scheduler believes.
        cap_total: Float ``(R,)`` live capacity.
        typical: The workload's typical request (for ``fragmentation``).
    """
    tasks = nodes.tasks
    sample: dict[str, float] = {"max_tasks_per_node": int(tasks.max()) if len(tasks) else 0}
    cap = np.where(cap_total > 0, cap_total, 1.0)
    busy = tasks > 0
    allocated, free = nodes.allocated, nodes.free
    used_total = allocated.sum(axis=1)
    if dead:
        dead_list = list(dead)
        used_total = used_total - allocated[:, dead_list].sum(axis=1)
        busy[dead_list] = False
    # Stranded: free capacity on nodes that run something (they cannot be switched off or
    # handed back), as a share of live capacity. Consolidation drives it down. Sums over
    # a mask as one product: the sampler runs a thousand times over every node.
    stranded = free @ busy.astype(np.float64)
    for name, used, idle in zip(nodes.resources, (used_total / cap).tolist(), (stranded / cap).tolist(), strict=True):
        sample[f"util_{name}"] = used
        sample[f"stranded_{name}"] = idle
    sample["fragmentation"] = fragmentation(nodes, typical)
    return sample


def fragmentation(nodes: NodeMatrix, typical: np.ndarray) -> float:
    """Share of free capacity stranded on schedulable nodes too full for a typical task.

    Per resource: free amount on schedulable nodes that cannot fit ``typical``, over all
    free amount on schedulable nodes; averaged over the resources ``typical`` asks for.
    """
    asked = np.flatnonzero(typical)
    if not len(asked):
        return 0.0
    sched = nodes.schedulable
    free = nodes.free[asked]
    fits = sched.copy()
    for row, amount in zip(free, typical[asked].tolist(), strict=True):
        fits &= row >= amount
    total = free @ sched.astype(np.float64)
    stranded = free @ (sched & ~fits).astype(np.float64)
    shares = stranded[total > 0] / total[total > 0]
    return float(shares.mean()) if len(shares) else 0.0
