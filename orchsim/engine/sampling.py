"""The time series of a run, for plots: pure functions of the cluster's state at an instant.

Means in the summary come from exact integrals (``accounting``); these samples exist
to draw the run over time and for the two shape measures that have no integral form
(stranded capacity and fragmentation).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import numpy as np

from orchsim.scheduling import NodeMatrix
from orchsim.scheduling.node_devices import fits_mask

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
    if nodes.state_classes is not None and not dead and (by_class := _sample_by_class(nodes, cap_total, typical)):
        return by_class
    tasks = nodes.tasks
    sample: dict[str, float] = {"max_tasks_per_node": int(tasks.max()) if len(tasks) else 0}
    busy = tasks > 0
    allocated, free = nodes.allocated, nodes.free
    if dead:
        dead_list = list(dead)
        busy[dead_list] = False
        allocated = allocated.copy()
        allocated[:, dead_list] = 0.0
    # Stranded: free capacity on nodes that run something (they cannot be switched off or
    # handed back), as a share of live capacity. Consolidation drives it down. Sums over
    # a mask as one product, few numpy calls in all: the sampler runs a thousand times a run.
    stranded = free @ busy.astype(np.float64)
    _add_shares(sample, nodes.resources, allocated.sum(axis=1).tolist(), stranded.tolist(), cap_total)
    sample["fragmentation"] = fragmentation(nodes, typical, dead)
    return sample


def _add_shares(
    sample: dict[str, float], resources: Sequence[str], used: list[float], stranded: list[float], cap_total: np.ndarray
) -> None:
    """``util_<r>`` and ``stranded_<r>``: the summed amounts over live capacity (1 where there is none)."""
    cap = np.where(cap_total > 0, cap_total, 1.0).tolist()
    for name, held, idle, c in zip(resources, used, stranded, cap, strict=True):
        sample[f"util_{name}"] = held / c
        sample[f"stranded_{name}"] = idle / c


def _mean_share(sums: list[tuple[float, float]]) -> float:
    """The mean of ``stranded / total`` over the ``(total, stranded)`` pairs with free capacity at all."""
    shares = [stranded / total for total, stranded in sums if total > 0]
    return sum(shares) / len(shares) if shares else 0.0


def fragmentation(nodes: NodeMatrix, typical: np.ndarray, dead: Collection[int] = ()) -> float:
    """Share of free capacity stranded on schedulable nodes too full for a typical task.

    Per resource: free amount on schedulable live nodes that cannot fit ``typical``, over
    all free amount on schedulable live nodes; averaged over the resources ``typical``
    asks for. Where devices are tracked, "fits" is the scheduler's own test (a share of
    one GPU needs that much free on a single GPU, not in the node's total): a node whose
    free GPU is scattered over its devices is stranded for a request no GPU can take.
    This is a snapshot against one typical request, not the FGD paper's fragmentation
    (an expectation over the whole workload's request mix, ``scheduling.fragmentation``).
    """
    asked = typical > 0
    if not asked.any():
        return 0.0
    sched = nodes.schedulable
    if dead:
        sched = sched.copy()
        sched[list(dead)] = False
    free = nodes.free
    fits = (free >= typical[:, None]).all(axis=0)
    if nodes.devices and (devices_fit := fits_mask(nodes, _as_devices(nodes, typical))) is not None:
        fits &= devices_fit
    # Free on schedulable nodes, and on those of them that cannot fit: both sums in one product.
    weights = np.stack([sched, sched & ~fits], axis=1).astype(np.float64)
    return _mean_share((free[asked] @ weights).tolist())


def _as_devices(nodes: NodeMatrix, typical: np.ndarray) -> np.ndarray:
    """``typical`` with each device amount one that devices can take: above one device, whole ones.

    The median of 1000 and 2000 milli-GPU is 1500, which no task asks and no GPU set can take.
    """
    shaped = typical
    for kind, devices in nodes.devices.items():
        r = nodes.row(kind)
        amount = float(typical[r])
        if amount > devices.unit and amount % devices.unit:
            shaped = shaped.copy() if shaped is typical else shaped
            shaped[r] = math.ceil(amount / devices.unit) * devices.unit
    return shaped


def _sample_by_class(nodes: NodeMatrix, cap_total: np.ndarray, typical: np.ndarray) -> dict[str, float] | None:
    """``cluster_sample`` from the matrix's state classes: one column per state, not per node.

    Every node of a class has the same column, so each sum is a sum over the live classes
    of count x column. With whole-unit amounts (the workloads round requests to whole
    millicores and MiB) every partial sum is an exact integer, in any order, so the
    sample has the same bits as the pass over every node; a class with a fractional amount
    gives None and the caller takes that pass. At M/M/1000 (two states) a sample drops
    from about 50 us to a few.
    """
    classes = nodes.state_classes
    assert classes is not None
    alloc, free, tasks, sched = nodes._alloc, nodes._free, nodes._tasks, nodes._sched
    n_res = len(nodes.resources)
    used, stranded = [0.0] * n_res, [0.0] * n_res
    asked = [r for r, amount in enumerate(typical.tolist()) if amount > 0]
    wanted = typical.tolist()
    free_sched, free_unfit = [0.0] * n_res, [0.0] * n_res
    most = 0
    for _, count, low in classes.live():
        held, left = alloc[:, low].tolist(), free[:, low].tolist()
        if not all(v.is_integer() for v in held) or not all(v.is_integer() for v in left):
            return None
        running = int(tasks[low])
        most = max(most, running)
        for r in range(n_res):
            used[r] += count * held[r]
            if running > 0:
                stranded[r] += count * left[r]
        if sched[low]:
            fits = all(left[r] >= wanted[r] for r in range(n_res))
            for r in asked:
                free_sched[r] += count * left[r]
                if not fits:
                    free_unfit[r] += count * left[r]
    sample: dict[str, float] = {"max_tasks_per_node": most}
    _add_shares(sample, nodes.resources, used, stranded, cap_total)
    sample["fragmentation"] = _mean_share([(free_sched[r], free_unfit[r]) for r in asked])
    return sample
