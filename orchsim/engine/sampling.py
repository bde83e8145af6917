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
    sample: dict[str, float] = {"max_tasks_per_node": int(nodes.tasks.max()) if len(nodes) else 0}
    cap = np.where(cap_total > 0, cap_total, 1.0)
    busy = nodes.tasks > 0
    used_total = nodes.allocated.sum(axis=1)
    if dead:
        dead_list = list(dead)
        used_total = used_total - nodes.allocated[:, dead_list].sum(axis=1)
        busy[dead_list] = False
    # Stranded: free capacity on nodes that run something (they cannot be switched off or
    # handed back), as a share of live capacity. Consolidation drives it down.
    stranded = nodes.free[:, busy].sum(axis=1)
    for name, used, idle, c in zip(nodes.resources, used_total, stranded, cap, strict=True):
        sample[f"util_{name}"] = float(used / c)
        sample[f"stranded_{name}"] = float(idle / c)
    sample["fragmentation"] = fragmentation(nodes, typical)
    return sample


def fragmentation(nodes: NodeMatrix, typical: np.ndarray) -> float:
    """Share of free capacity stranded on schedulable nodes too full for a typical task.

    Per resource: free amount on schedulable nodes that cannot fit ``typical``, over all
    free amount on schedulable nodes; averaged over the resources ``typical`` asks for.
    """
    sched = nodes.schedulable
    free = nodes.free
    fits = sched & np.all(free >= typical[:, None], axis=0)
    stranded = sched & ~fits
    shares = []
    for r in np.flatnonzero(typical):
        total = float(free[r][sched].sum())
        if total > 0:
            shares.append(float(free[r][stranded].sum()) / total)
    return float(np.mean(shares)) if shares else 0.0
