"""GPU fragmentation of a node measured against a target workload (FGD, Weng et al., ATC 2023).

Paper section 3 ("Quantifying GPU fragmentation"); artifact hkust-adsl/kubernetes-scheduler-
simulator, ``pkg/utils/frag.go`` (``NodeGpuShareFragAmount``, ``GetNodePodFrag``,
``GetTypicalPods``). A node's fragmentation is the expected amount of its free GPU
that a task drawn from the target workload could NOT use:

    F(node) = sum_s w_s * F_s(node)

over the typical task shapes ``s`` with popularity ``w_s``. For one shape:

* the node can host it (its CPU covers the shape's CPU, at least ``count_s`` devices
  each have ``>= share_s`` free, and its GPU model is allowed: the artifact's ``Q3``):
  ``F_s`` is the free share of the devices too small for it (``free_d < share_s``);
* otherwise (lacks CPU, GPU or both, wrong model: ``Q1``, ``Q2``, ``Q4``, ``no_access``),
  or the shape needs no GPU (``XL``/``XR``): every free milli-GPU on the node counts.

Vectorised over nodes, per distinct shape share: ``cnt_u`` (devices with ``free >= u``)
and ``big_u`` (their free sum) make ``F_s = total - [hosts_s] * big_u``. The effect of a
placement on one device changes ``cnt_u`` and ``big_u`` by that device's terms only, so
the fragmentation after placing a fraction on EVERY device of every node is one
``(N, D)`` computation per shape, not a copy of the node per device.

Units: cpu in millicores, GPU in milli-GPU (1000 per device).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from orchsim.scheduling.devices import GPU_UNIT, DeviceNeed

__all__ = ["TargetWorkload", "fragmentation", "fragmentation_after", "typical_workload"]


@dataclass(frozen=True)
class TargetWorkload:
    """The distribution of typical task shapes that fragmentation is measured against.

    Attributes:
        cpu: float64 ``(S,)``, millicores of each shape.
        share: float64 ``(S,)``, milli-GPU per device (0 for a CPU-only shape).
        count: int64 ``(S,)``, devices per task (0 for a CPU-only shape).
        weight: float64 ``(S,)``, popularity (the artifact's ``Percentage``; sums to 1).
        gpu_type: Allowed GPU models per shape, ``""`` for any, ``"A|B"`` for either.
    """

    cpu: np.ndarray
    share: np.ndarray
    count: np.ndarray
    weight: np.ndarray
    gpu_type: tuple[str, ...]

    def __post_init__(self) -> None:
        arrays = {
            "cpu": np.asarray(self.cpu, dtype=np.float64).reshape(-1),
            "share": np.asarray(self.share, dtype=np.float64).reshape(-1),
            "count": np.asarray(self.count, dtype=np.int64).reshape(-1),
            "weight": np.asarray(self.weight, dtype=np.float64).reshape(-1),
        }
        types = tuple(str(t) for t in self.gpu_type) or ("",) * len(arrays["cpu"])
        if len({len(a) for a in arrays.values()} | {len(types)}) != 1:
            raise ValueError("target workload: cpu, share, count, weight and gpu_type differ in length")
        if any(np.any(a < 0) for a in arrays.values()) or np.any(arrays["share"] > GPU_UNIT):
            raise ValueError("target workload: amounts and weights must be >= 0, shares <= one device")
        for name, value in arrays.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "gpu_type", types)

    @classmethod
    def from_shapes(cls, shapes: Iterable[Mapping[str, Any]], unit: float = GPU_UNIT) -> TargetWorkload:
        """From ``[{"cpu": 6000, "gpu": 465, "weight": 0.09, "gpu_type": "T4"}, ...]``.

        ``gpu`` is the total milli-GPU of the task, as in a request (465 a fraction, 2000
        two whole GPUs); ``gpu_type`` is optional. Weights are used as given.
        """
        rows = list(shapes)
        needs = [DeviceNeed.from_total(float(r.get("gpu", 0)), unit) for r in rows]
        return cls(
            cpu=np.array([float(r.get("cpu", 0)) for r in rows]),
            share=np.array([n.share for n in needs]),
            count=np.array([n.count for n in needs]),
            weight=np.array([float(r["weight"]) for r in rows]),
            gpu_type=tuple(str(r.get("gpu_type", "") or "") for r in rows),
        )

    @classmethod
    def coerce(cls, value: TargetWorkload | Iterable[Mapping[str, Any]]) -> TargetWorkload:
        """A ``TargetWorkload`` as is, or one built by ``from_shapes`` (scenario files give lists)."""
        return value if isinstance(value, TargetWorkload) else cls.from_shapes(value)

    def access(self, node_types: Sequence[str] | None, n_nodes: int) -> np.ndarray | None:
        """Bool ``(S, N)``: shape ``s`` may run on node ``n``'s GPU model; None when all may.

        ``node_types`` gives each node's model (``""`` for a node without one). The
        artifact's ``IsNodeAccessibleToPodByType``: a shape naming models runs only on those.
        """
        if not any(self.gpu_type) or node_types is None:
            return None
        types = np.asarray(list(node_types), dtype=object)
        out = np.ones((len(self.gpu_type), n_nodes), dtype=bool)
        for s, allowed in enumerate(self.gpu_type):
            names = [t for t in allowed.split("|") if t]
            if names:
                out[s] = np.isin(types, names)
        return out


def typical_workload(
    cpu: Sequence[float] | np.ndarray,
    gpu: Sequence[float] | np.ndarray,
    gpu_type: Sequence[str] | None = None,
    *,
    popularity_threshold: float = 95,
    include_cpu_only: bool = True,
    unit: float = GPU_UNIT,
) -> TargetWorkload:
    """The typical shapes of a workload, as the artifact's ``GetTypicalPods`` computes them.

    Count each distinct shape (cpu, share, count, gpu model), sort by count descending
    (ties: larger cpu, share, count, model first, the artifact's reversed ``Less``), keep
    shapes one at a time until they cover ``popularity_threshold`` percent of the tasks
    (the artifact's run script: 95, step 1), and renormalise their weights to 1.

    Args:
        cpu: Millicores per task.
        gpu: Total milli-GPU per task (as requested: 460, 1000, 2000).
        gpu_type: Allowed GPU model(s) per task, ``""`` for any.
        popularity_threshold: Percent of tasks the kept shapes must cover.
        include_cpu_only: Count tasks without GPU (the artifact's ``isInvolvedCpuPods``).
        unit: Milli-GPU per device.
    """
    types = [""] * len(cpu) if gpu_type is None else [str(t or "") for t in gpu_type]
    tally: Counter[tuple[float, float, int, str]] = Counter()
    cpus, gpus = np.asarray(cpu, dtype=np.float64).tolist(), np.asarray(gpu, dtype=np.float64).tolist()
    for c, g, t in zip(cpus, gpus, types, strict=True):
        need = DeviceNeed.from_total(g, unit)
        if need.count or include_cpu_only:
            tally[(c, need.share, need.count, t)] += 1
    if not tally:
        raise ValueError("typical_workload: no tasks to learn shapes from")
    ranked = sorted(tally.items(), key=lambda item: (item[1], item[0]), reverse=True)
    total = sum(tally.values())
    expected = popularity_threshold * total / 100.0
    kept: list[tuple[tuple[float, float, int, str], int]] = []
    covered = 0
    while covered < expected and len(kept) < len(ranked):
        kept.append(ranked[len(kept)])
        covered += kept[-1][1]
    return TargetWorkload(
        cpu=np.array([k[0] for k, _ in kept]),
        share=np.array([k[1] for k, _ in kept]),
        count=np.array([k[2] for k, _ in kept]),
        weight=np.array([n / covered for _, n in kept]),
        gpu_type=tuple(k[3] for k, _ in kept),
    )


def _by_share(workload: TargetWorkload) -> dict[float, list[int]]:
    """Shapes needing GPU, grouped by their per-device share (many share 1000)."""
    groups: dict[float, list[int]] = {}
    for s, u in enumerate(workload.share.tolist()):
        if u > 0 and workload.count[s] > 0:
            groups.setdefault(u, []).append(s)
    return groups


def _accumulate(
    workload: TargetWorkload,
    access: np.ndarray | None,
    cpu_after: np.ndarray,
    total_after: np.ndarray,
    stats: Mapping[float, tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """``sum_s w_s * F_s`` from per-share ``(cnt_u, big_u)``; every array broadcasts to ``total_after``."""
    shapes = [a.shape for pair in stats.values() for a in pair]
    out = np.zeros(np.broadcast_shapes(total_after.shape, cpu_after.shape, *shapes))
    gpu_shapes = _by_share(workload)
    hosted = [s for group in gpu_shapes.values() for s in group]
    # Shapes that cannot be hosted anywhere here (CPU-only ones) see every free milli-GPU.
    out += (workload.weight.sum() - workload.weight[hosted].sum()) * total_after
    for u, shapes in gpu_shapes.items():
        cnt, big = stats[u]
        for s in shapes:
            hosts = (cnt >= workload.count[s]) & (cpu_after >= workload.cpu[s])
            if access is not None:
                hosts &= access[s].reshape(access.shape[1], *([1] * (hosts.ndim - 1)))
            out += workload.weight[s] * (total_after - np.where(hosts, big, 0.0))
    return out


def fragmentation(
    cpu_free: np.ndarray, free: np.ndarray, workload: TargetWorkload, access: np.ndarray | None = None
) -> np.ndarray:
    """Float64 ``(N,)``: each node's expected GPU fragmentation, in milli-GPU.

    The artifact's ``NodeGpuShareFragAmountScore`` (``FragAmountSumExceptQ3``).

    Args:
        cpu_free: ``(N,)`` free millicores.
        free: ``(N, D)`` free milli-GPU of each device (``DeviceSet.free``; padding 0).
        workload: The target workload.
        access: ``(S, N)`` from ``TargetWorkload.access``, or None when every shape may
            use every node.
    """
    stats = {}
    for u in _by_share(workload):
        fits = free >= u
        stats[u] = (fits.sum(axis=1), np.where(fits, free, 0.0).sum(axis=1))
    return _accumulate(workload, access, cpu_free, free.sum(axis=1), stats)


def fragmentation_after(
    cpu_free: np.ndarray,
    free: np.ndarray,
    workload: TargetWorkload,
    cpu: float,
    need: DeviceNeed,
    access: np.ndarray | None = None,
    unit: float = GPU_UNIT,
) -> np.ndarray:
    """Fragmentation if a task of ``cpu`` millicores and ``need`` landed on each node.

    Returns float64 ``(N, D)`` for a fraction (column ``d``: placed on device ``d``;
    ``inf`` where the device cannot take it) and ``(N, 1)`` otherwise: ``k`` whole devices
    go to fully free devices, which all look alike, and no GPU leaves devices as they are
    (the artifact's ``NodeResource.Sub``). Nodes that cannot take the task get a finite
    value that means nothing; ``select`` masks them.
    """
    n = free.shape[0]
    total = free.sum(axis=1)[:, None]
    cpu_after = (cpu_free - cpu)[:, None]
    fraction = 0 < need.share < unit
    if fraction:
        before, after = free, free - need.share  # (N, D): the placed device's old and new share
    else:
        before = np.full((n, 1), unit if need.count else 0.0)
        after = np.zeros((n, 1))
    stats = {}
    for u in _by_share(workload):
        fits = free >= u
        cnt, big = fits.sum(axis=1)[:, None], np.where(fits, free, 0.0).sum(axis=1)[:, None]
        lost, kept = before >= u, after >= u
        times = 1 if fraction else need.count
        stats[u] = (
            cnt - times * lost + times * kept,
            big - times * np.where(lost, before, 0.0) + times * np.where(kept, after, 0.0),
        )
    result = _accumulate(workload, access, cpu_after, total - need.total, stats)
    if fraction:
        result[free < need.share] = np.inf
    return result
