"""GPU-sharing policies of the FGD paper, with their device choice: fgd and the paper's baselines.

Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
Fragmentation Gradient Descent", USENIX ATC 2023, and its artifact
hkust-adsl/kubernetes-scheduler-simulator (``pkg/simulator/plugin/*_score.go``; the run
settings of ``experiments/run_scripts/generate_run_scripts.py``). Each scorer has the
registry's signature ``(nodes, request, **params) -> float64 (N,)``, higher wins, and
reads the node's GPUs from a ``DeviceSet`` (``devices=``, or ``nodes.devices["gpu"]`` once
the matrix carries devices). The request's ``gpu`` total says the device need
(``DeviceNeed.from_total``: 460 a fraction of one GPU, 2000 two whole GPUs).

Scores are the artifact's own 0-100 scale, before its ``int64`` conversion. With
``quantize=True`` they are truncated to integers as the artifact does, and ties go to the
lowest node index (``select``'s rule). That IS the artifact's tie-break: its go.mod
replaces kube-scheduler with mental2008/kubernetes v1.20.5-minor, whose
``generic_scheduler.go`` ``selectHost`` keeps the smallest node name among the maximum
("for reproducibility"; openb names are zero-padded, so name order is index order).
Upstream kube-scheduler draws among the tied nodes instead (reservoir sampling):
``random_ties=True`` adds a uniform draw in [0, 1) to the integer scores for that.

The device on the chosen node: ``DEVICE_CHOOSERS[name]`` (``fgd``: its own choice;
``random``: a random fitting device), else ``choose_best_fit`` (the artifact's default
``gpuSelMethod: best``). Choosers take ``(nodes, request, node, **params)``, the scorer's
parameters and ``rng`` (others are ignored), and return device indices.

Not registered on import: ``register_gpu_policies(registry)`` adds them to a registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from orchsim.scheduling.devices import DeviceNeed, DeviceSet
from orchsim.scheduling.fragmentation import TargetWorkload, fragmentation, fragmentation_after
from orchsim.scheduling.matrix import NodeMatrix
from orchsim.scheduling.registry import PolicyRegistry

__all__ = [
    "DEVICE_CHOOSERS",
    "GPU_POLICIES",
    "choose_best_fit",
    "choose_fgd",
    "choose_random",
    "fgd",
    "gpu_best_fit",
    "gpu_clustering",
    "gpu_dot_product",
    "gpu_packing",
    "register_gpu_policies",
]

MAX_CPU_MILLI = 128_000.0  # the artifact's MaxSpecCpu: normalises cpu in best fit and dot product
MAX_GPU_MILLI = 8_000.0  # the artifact's MaxSpecGpu: 8 GPUs
Rng = np.random.Generator | None


class _Placement(NamedTuple):
    devices: DeviceSet
    need: DeviceNeed
    cpu: float  # millicores requested
    cpu_free: np.ndarray  # (N,) free millicores; zeros when the cluster tracks no cpu
    gpu: float  # milli-GPU requested in total


def _placement(nodes: NodeMatrix, request: np.ndarray, devices: DeviceSet | None) -> _Placement:
    if devices is None:
        devices = nodes.devices.get("gpu")
    if devices is None:
        # A cluster without GPU devices: score as if no node had a GPU (CPU terms only), so
        # that every registered policy runs on every cluster.
        devices = DeviceSet.from_counts([0] * nodes.n_nodes)
        gpu = 0.0
    else:
        gpu = float(request[nodes.row("gpu")]) if nodes.has_resource("gpu") else 0.0
    if nodes.has_resource("cpu"):
        r = nodes.row("cpu")
        cpu, cpu_free = float(request[r]), nodes.free[r]
    else:
        cpu, cpu_free = 0.0, np.zeros(nodes.n_nodes)
    return _Placement(devices, devices.need(gpu), cpu, cpu_free, gpu)


def _finish(raw: np.ndarray, quantize: bool, random_ties: bool, rng: Rng) -> np.ndarray:
    """The artifact's integer score (Go's ``int64``: truncation), and a draw in [0, 1) for random ties."""
    if random_ties and not quantize:
        raise ValueError("random_ties breaks ties between integer scores: it needs quantize=True")
    if not quantize:
        return raw
    out = np.trunc(raw)
    if random_ties:
        if rng is None:
            raise ValueError("random_ties needs rng (select passes its generator)")
        out += rng.random(len(out))
    return out


def gpu_best_fit(
    nodes: NodeMatrix,
    request: np.ndarray,
    *,
    devices: DeviceSet | None = None,
    quantize: bool = False,
    random_ties: bool = False,
    rng: Rng = None,
    max_cpu_milli: float = MAX_CPU_MILLI,
    max_gpu_milli: float = MAX_GPU_MILLI,
) -> np.ndarray:
    """Best fit of the FGD paper: the least CPU and GPU left after placement wins.

    Artifact ``best_fit_score.go`` (``getBestFitScore``): ``left = 0.5 * (cpu_free - cpu)
    / 128 cores + 0.5 * (gpu_free - gpu) / 8 GPUs``, score ``(1 - left) * 100``. Its
    ``NormalizeScore`` (min-max to 0-100 in integers) maps distinct integers in a range of
    at most 100 to distinct integers in order, so it never changes the winner and is
    left out. Device: best fit.
    """
    p = _placement(nodes, request, devices)
    left = 0.5 * (p.cpu_free - p.cpu) / max_cpu_milli + 0.5 * (p.devices.free_total - p.gpu) / max_gpu_milli
    return _finish((1.0 - left) * 100.0, quantize, random_ties, rng)


def gpu_dot_product(
    nodes: NodeMatrix,
    request: np.ndarray,
    *,
    devices: DeviceSet | None = None,
    quantize: bool = False,
    random_ties: bool = False,
    rng: Rng = None,
    max_cpu_milli: float = MAX_CPU_MILLI,
    max_gpu_milli: float = MAX_GPU_MILLI,
) -> np.ndarray:
    """Tetris dot product as the FGD artifact runs it: the smallest alignment with free space wins.

    Artifact ``dot_product_score.go`` with the paper's settings (``generate_run_scripts.py``:
    DotProd ``-gpusel best -dimext merge -norm max``): free ``(cpu_free, gpu_free_total)``
    before placement and request ``(cpu, gpu)``, both divided by ``(128 cores, 8 GPUs)``;
    ``score = (1 - dot / 2) * 100`` (``/ 2``: the vector length). Device: best fit.
    """
    p = _placement(nodes, request, devices)
    dot = (p.cpu_free / max_cpu_milli) * (p.cpu / max_cpu_milli)
    dot += (p.devices.free_total / max_gpu_milli) * (p.gpu / max_gpu_milli)
    return _finish((1.0 - dot / 2.0) * 100.0, quantize, random_ties, rng)


def gpu_packing(
    nodes: NodeMatrix,
    request: np.ndarray,
    *,
    devices: DeviceSet | None = None,
    quantize: bool = False,
    random_ties: bool = False,
    rng: Rng = None,
) -> np.ndarray:
    """GPU packing, the artifact's three tiers: shared GPUs, then free GPUs of used nodes, then idle nodes.

    Artifact ``gpu_packing_score.go`` (``getPackingScore``), integers throughout:

    * idle node (every GPU fully free): ``max(33 - free_gpus, free_gpus)``;
    * otherwise the tightest fitting devices are used; if one is fully free:
      ``max(50 - fully_free_used, 33)`` (a fraction: 49; ``k`` whole GPUs: ``50 - k``);
    * a fraction on a shared GPU with ``left`` milli free: ``max(100 - (left * 100 // 1000)
      // 10, 50)``.

    A task without GPU scores 0 everywhere. The rule is already integer, so ``quantize``
    changes nothing but allows ``random_ties``. Device: best fit (the tightest, as scored).
    """
    p = _placement(nodes, request, devices)
    d = p.devices
    if p.need.count == 0:
        return _finish(np.zeros(nodes.n_nodes), quantize, random_ties, rng)
    unit = d.unit
    if p.need.share < unit:
        _, left = d.tightest(p.need)
        shared = np.maximum(100.0 - np.floor(np.floor(np.minimum(left, unit) * 100.0 / unit) / 10.0), 50.0)
        score = np.where(left >= unit, 49.0, shared)
    else:
        score = np.full(nodes.n_nodes, max(50.0 - p.need.count, 33.0))
    idle = d.n_whole == d.counts
    score[idle] = np.maximum(33.0 - d.n_whole[idle], d.n_whole[idle])
    return _finish(score, quantize, random_ties, rng)


def gpu_clustering(
    nodes: NodeMatrix,
    request: np.ndarray,
    *,
    devices: DeviceSet | None = None,
    quantize: bool = False,
    random_ties: bool = False,
    rng: Rng = None,
    max_gpu_milli: float = MAX_GPU_MILLI,
) -> np.ndarray:
    """GPU clustering: tasks of the same GPU shape together, fuller nodes first within a tier.

    Artifact ``gpu_clustering_score.go``: a node's tags are the shapes of the GPU tasks
    on it (``share-gpu``, ``k-gpu``; ``DeviceSet.classes``). ``base = 25 * (8 GPUs -
    gpu_free) / 8 GPUs`` (integer division when quantised), plus 75 if the node holds
    only this task's tag, 50 if this tag among others, 25 if it has no tag, 0 if only
    other tags. A task without GPU scores 0 everywhere. Device: best fit.
    """
    p = _placement(nodes, request, devices)
    if p.need.count == 0:
        return _finish(np.zeros(nodes.n_nodes), quantize, random_ties, rng)
    classes = p.devices.classes
    column = 0 if p.need.share < p.devices.unit else p.need.count
    same = classes[:, column] > 0 if column < classes.shape[1] else np.zeros(nodes.n_nodes, dtype=bool)
    tags = np.count_nonzero(classes > 0, axis=1)
    base = 25.0 * (max_gpu_milli - p.devices.free_total) / max_gpu_milli
    if quantize:
        base = np.trunc(base)  # Go's integer division truncates before the tier is added
    tier = np.where(same, np.where(tags == 1, 75.0, 50.0), np.where(tags == 0, 25.0, 0.0))
    return _finish(base + tier, quantize, random_ties, rng)


def _access(nodes: NodeMatrix, workload: TargetWorkload, label: str) -> np.ndarray | None:
    """Bool ``(S, N)``: shape ``s`` may use node ``n``'s GPU model (its ``label``); None if all may."""
    if not any(workload.gpu_type):
        return None
    out = np.ones((len(workload.gpu_type), nodes.n_nodes), dtype=bool)
    for s, allowed in enumerate(workload.gpu_type):
        names = [t for t in allowed.split("|") if t]
        if names:
            out[s] = np.logical_or.reduce([nodes.label_mask({label: t}) for t in names])
    return out


def _fgd_device_scores(
    nodes: NodeMatrix, request: np.ndarray, devices: DeviceSet | None, workload: Any, label: str, rows: Any
) -> tuple[_Placement, np.ndarray]:
    """The artifact's per-placement FGD score of the nodes ``rows`` (a slice or indices).

    Shape ``(len(rows), D)`` for a fraction (one column per device), else ``(len(rows), 1)``.
    """
    p = _placement(nodes, request, devices)
    target = TargetWorkload.coerce(workload)
    access = _access(nodes, target, label)
    cpu_free = p.cpu_free if nodes.has_resource("cpu") else np.full(nodes.n_nodes, np.inf)
    cpu_free, free = cpu_free[rows], p.devices.free[rows]
    access = None if access is None else access[:, rows]
    before = fragmentation(cpu_free, free, target, access)
    after = fragmentation_after(cpu_free, free, target, p.cpu, p.need, access, p.devices.unit)
    with np.errstate(over="ignore"):  # an unfit device's inf fragmentation scores 0
        scores = 100.0 / (1.0 + np.exp(-(before[:, None] - after) / 1000.0))
    return p, scores


def fgd(
    nodes: NodeMatrix,
    request: np.ndarray,
    *,
    workload: TargetWorkload | list[Mapping[str, Any]] | None = None,
    devices: DeviceSet | None = None,
    quantize: bool = False,
    random_ties: bool = False,
    rng: Rng = None,
    gpu_model_label: str = "gpu_model",
    feasible: np.ndarray | None = None,
) -> np.ndarray:
    """Fragmentation gradient descent: the placement that increases expected GPU fragmentation least.

    Paper section 4 (Algorithm 1); artifact ``fgd_score.go``
    (``calculateGpuShareFragExtendScore``) over ``frag.go`` (``NodeGpuShareFragAmountScore``,
    see ``orchsim.scheduling.fragmentation``). Per node, ``delta = F(before) - F(after)``
    against the target ``workload`` (``typical_workload(...)`` or a list of shapes), score
    ``100 * sigmoid(delta / 1000)``; a fraction is tried on each fitting device and the
    node scores its best device. ``gpu_model_label`` names the node label holding the GPU
    model, for shapes that ask for one. Only ``feasible`` nodes are scored when ``select``
    passes the mask (others score 0, which ``select`` masks anyway). Device: ``choose_fgd``.
    """
    if workload is None:
        if devices is None and "gpu" not in nodes.devices:
            return _finish(np.zeros(nodes.n_nodes), quantize, random_ties, rng)  # no GPUs: nothing to fragment
        raise ValueError("fgd needs workload=: the target workload's pod shapes (typical_workload(...))")
    rows = slice(None) if feasible is None else np.flatnonzero(feasible)
    _, scores = _fgd_device_scores(nodes, request, devices, workload, gpu_model_label, rows)
    raw = np.zeros(nodes.n_nodes)
    raw[rows] = scores.max(axis=1, initial=0.0)
    return _finish(raw, quantize, random_ties, rng)


def choose_fgd(
    nodes: NodeMatrix,
    request: np.ndarray,
    node: int,
    *,
    workload: TargetWorkload | list[Mapping[str, Any]] | None = None,
    devices: DeviceSet | None = None,
    quantize: bool = False,
    rng: Rng = None,
    gpu_model_label: str = "gpu_model",
    **_: Any,
) -> tuple[int, ...]:
    """FGD's device: the fitting device whose placement scores highest, first on ties.

    The artifact (``allocateGpuIdBasedOnFGDScore``) compares the integer scores, so with
    ``quantize`` the first device among those tied after truncation wins. Whole GPUs: the
    lowest-index fully free ones (``AllocateExclusiveGpuId``).
    """
    if workload is None:
        raise ValueError("fgd needs workload=: the target workload's pod shapes (typical_workload(...))")
    p, scores = _fgd_device_scores(nodes, request, devices, workload, gpu_model_label, slice(node, node + 1))
    row = np.trunc(scores[0]) if quantize else scores[0]
    return p.devices.choose_by_score(node, p.need, row)


def choose_best_fit(
    nodes: NodeMatrix, request: np.ndarray, node: int, *, devices: DeviceSet | None = None, **_: Any
) -> tuple[int, ...]:
    """The default device choice: the tightest fitting device (``allocateGpuIdBasedOnBestFit``)."""
    p = _placement(nodes, request, devices)
    return p.devices.choose_best_fit(node, p.need)


def choose_random(
    nodes: NodeMatrix,
    request: np.ndarray,
    node: int,
    *,
    rng: np.random.Generator,
    devices: DeviceSet | None = None,
    **_: Any,
) -> tuple[int, ...]:
    """A uniformly random fitting device (``allocateGpuIdBasedOnRandomFit``), for the ``random`` policy."""
    p = _placement(nodes, request, devices)
    return p.devices.choose_random(node, p.need, rng)


Chooser = Callable[..., tuple[int, ...]]
GPU_POLICIES: Mapping[str, Callable[..., np.ndarray]] = {
    "fgd": fgd,
    "gpu_best_fit": gpu_best_fit,
    "gpu_dot_product": gpu_dot_product,
    "gpu_packing": gpu_packing,
    "gpu_clustering": gpu_clustering,
}
DEVICE_CHOOSERS: Mapping[str, Chooser] = {"fgd": choose_fgd, "random": choose_random}


def register_gpu_policies(registry: PolicyRegistry, *, replace: bool = False) -> PolicyRegistry:
    """Register the five scorers of ``GPU_POLICIES`` into ``registry`` (and return it)."""
    for name, scorer in GPU_POLICIES.items():
        registry.register(name, scorer, vetoes=False, choose_devices=DEVICE_CHOOSERS.get(name), replace=replace)
    return registry
