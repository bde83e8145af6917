"""The built-in scoring policies: one short vectorised function each, formula cited.

Every scorer has the registry's signature ``(nodes, request, **params) -> float64 (N,)``:
higher is better, computed as if the task were placed on that node, never mutating
``nodes``. Infeasible nodes may get any finite score: ``select`` masks them.

Edge cases the Go orchestrator's loop did not guard, guarded here: a resource with zero
capacity on a node reads as utilisation 0 (``inv_capacity`` is 0 there) instead of a
division by zero; a request of zero scores like any other; an empty cluster yields an
empty array.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from orchsim.scheduling.gpu_policies import choose_random, register_gpu_policies
from orchsim.scheduling.matrix import NodeMatrix
from orchsim.scheduling.registry import POLICIES, policy

__all__ = [
    "balanced",
    "best_fit",
    "bin_packing",
    "dominant_resource",
    "dot_product",
    "first_fit",
    "hybrid",
    "least_allocated",
    "most_allocated",
    "nomad_binpack",
    "nomad_spread",
    "random",
    "round_robin",
    "spread",
    "utilisation_after",
    "worst_fit",
]

_LN10 = float(np.log(10.0))
_MAX_WHOLE_POWER = 22  # 10^22 is the largest power of ten a double holds exactly
_WHOLE_POWERS_OF_10 = np.array([10.0**k for k in range(_MAX_WHOLE_POWER + 1)])  # Python's exact pow
_DEFAULT_FIT_WEIGHTS: Mapping[str, float] = {"cpu": 1.0, "memory": 1.0}
_GO_BINPACK_WEIGHTS: Mapping[str, float] = {"cpu": 0.7, "memory": 0.3}


def utilisation_after(nodes: NodeMatrix, request: np.ndarray, resource: str | int) -> np.ndarray:
    """Float64 ``(N,)``: fraction of ``resource`` in use on each node if the task landed there.

    Computed as ``(allocated + request) / capacity``, the same float arithmetic as the Go
    orchestrator (so exact ties break the same way); zero-capacity nodes read 0.
    """
    r = nodes.row(resource) if isinstance(resource, str) else resource
    out = nodes.allocated[r] + request[r]
    out /= nodes.safe_capacity[r]
    return out


def _weights(nodes: NodeMatrix, weights: Mapping[str, float]) -> list[tuple[int, float]]:
    """``weights``' rows and values, checked: a mapping of resource names to finite numbers >= 0.

    A user's ``--policy-param`` lands here: each mistake is named (``weights.cpu: 'abc' is not
    a number``), not left to a float conversion or a NaN score deep in a decision.
    """
    if not isinstance(weights, Mapping):
        raise TypeError(f"weights: a mapping of resource names to numbers (weights.cpu=0.7), got {weights!r}")
    rows = []
    for name, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise ValueError(f"weights.{name}: {value!r} is not a number")
        if not math.isfinite(value) or value < 0:  # math, not numpy: this runs on every decision
            raise ValueError(f"weights.{name}: {value!r}: resource weights are finite numbers >= 0")
        rows.append((nodes.row(name), float(value)))
    return rows


def _weighted_rows(nodes: NodeMatrix, weights: Mapping[str, float] | None) -> list[tuple[int, float]]:
    """Rows and weights to score over; the defaults skip resources the cluster lacks."""
    if weights is None:
        return [(nodes.row(r), w) for r, w in _DEFAULT_FIT_WEIGHTS.items() if nodes.has_resource(r)]
    return _weights(nodes, weights)


def _weighted_sum(nodes: NodeMatrix, request: np.ndarray, rows: list[tuple[int, float]]) -> np.ndarray:
    """``sum_r w_r * utilisation_after_r``, in place, without a zero-filled start (it is the hot path)."""
    if not rows:
        return np.zeros(nodes.n_nodes)
    alloc, capacity = nodes.allocated, nodes.safe_capacity
    score: np.ndarray | None = None
    for r, w in rows:
        term = alloc[r] + request[r]
        term /= capacity[r]  # utilisation first, then the weight: 0.7 * u_cpu + 0.3 * u_mem, as in Go
        term *= w
        if score is None:
            score = term
        else:
            score += term
    return score


def _weighted_mean_utilisation(
    nodes: NodeMatrix, request: np.ndarray, weights: Mapping[str, float] | None
) -> np.ndarray:
    rows = _weighted_rows(nodes, weights)
    total = sum(w for _, w in rows)
    if total <= 0:
        return np.zeros(nodes.n_nodes)
    return _weighted_sum(nodes, request, [(r, w / total) for r, w in rows])


@policy("round_robin", order_dependent=True, vetoes=False)
def round_robin(nodes: NodeMatrix, request: np.ndarray, *, last: int = -1) -> np.ndarray:
    """Round robin: the first feasible node after the one this policy chose last, wrapping around.

    The Go orchestrator's ``RoundRobinScheduler``: a cursor over the node list. The
    cursor is policy state, so it lives with the policy's owner, not in the matrix:
    ``select`` passes ``last``, the node the ``PreparedPolicy`` (or ``SchedulingPass``)
    placed on last, -1 before the first placement or when that node has left. A bare
    ``select`` call is one decision and starts at node 0. Score is minus the forward
    distance from the cursor, so argmax over feasible nodes is the next feasible one.
    """
    n = nodes.n_nodes
    if n == 0:
        return np.zeros(0)
    # -((i - start) mod n) without an integer modulo: start - i, minus n before the cursor.
    start = last + 1
    score = np.arange(start, start - n, -1, dtype=np.float64)
    score[:start] -= n
    return score


@policy("bin_packing", vetoes=False, pure=True, per_node=True)
def bin_packing(nodes: NodeMatrix, request: np.ndarray, *, weights: Mapping[str, float] | None = None) -> np.ndarray:
    """Bin packing: the Go orchestrator's score, 0.7 * cpu + 0.3 * memory utilisation after placement.

    Fullest node wins, so tasks pack onto few nodes. ``weights`` replaces the 0.7/0.3
    split with any resource weights; they are used as given (not normalised), exactly
    like the Go constant weights.
    """
    if weights is None:
        rows = [(nodes.row("cpu"), _GO_BINPACK_WEIGHTS["cpu"]), (nodes.row("memory"), _GO_BINPACK_WEIGHTS["memory"])]
    else:
        rows = _weights(nodes, weights)
    return _weighted_sum(nodes, request, rows)


@policy("spread", vetoes=False, pure=True, per_node=True)
def spread(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
    """Spread: the Go orchestrator's score 1 / (tasks + 1); the node with fewest tasks wins."""
    return 1.0 / (nodes.tasks + 1.0)


@policy("least_allocated", vetoes=False, pure=True, per_node=True)
def least_allocated(
    nodes: NodeMatrix, request: np.ndarray, *, weights: Mapping[str, float] | None = None
) -> np.ndarray:
    """Kubernetes ``NodeResourcesFit`` ``LeastAllocated``: weighted mean free fraction after placement.

    kube-scheduler ``pkg/scheduler/framework/plugins/noderesources/least_allocated.go``:
    ``sum_r w_r * (cap_r - requested_r) / cap_r / sum_r w_r`` (scaled to [0, 1] here,
    [0, 100] there). Default weights cpu=1, memory=1. A zero-capacity resource scores 0,
    as in Kubernetes.
    """
    rows = _weighted_rows(nodes, weights)
    total = sum(w for _, w in rows)
    if total <= 0 or not rows:
        return np.zeros(nodes.n_nodes)
    free, inv = nodes.free, nodes.inv_capacity
    score: np.ndarray | None = None
    for r, w in rows:
        # (free - request) / capacity is 1 - utilisation, and 0 where capacity is 0 (inv is 0).
        term = free[r] - request[r]
        term *= inv[r]
        term *= w / total
        if score is None:
            score = term
        else:
            score += term
    assert score is not None
    return score


@policy("most_allocated", vetoes=False, pure=True, per_node=True)
def most_allocated(nodes: NodeMatrix, request: np.ndarray, *, weights: Mapping[str, float] | None = None) -> np.ndarray:
    """Kubernetes ``NodeResourcesFit`` ``MostAllocated``: weighted mean utilisation after placement.

    kube-scheduler ``noderesources/most_allocated.go``: ``sum_r w_r * requested_r / cap_r
    / sum_r w_r``. Default weights cpu=1, memory=1.
    """
    return _weighted_mean_utilisation(nodes, request, weights)


def _leftover(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
    """Sum over resources of free capacity left after placement, each scaled by its cluster maximum."""
    free, scale = nodes.free, nodes.resource_scale
    left = np.zeros(nodes.n_nodes)
    for r in range(len(nodes.resources)):
        left += (free[r] - request[r]) * (1.0 / scale[r])
    return left


@policy("best_fit", vetoes=False, pure=True, per_node=True)
def best_fit(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
    """Best fit: the node left with the least free capacity after placement.

    Classic bin-packing heuristic (Johnson, "Near-optimal bin packing algorithms", MIT
    1973; with items sorted largest-first it is best-fit decreasing, at most
    11/9 OPT + 6/9 bins: Dosa 2007). Several resources are summed after scaling each by
    its largest capacity in the cluster, so one dimension reduces to the classic rule.
    """
    return -_leftover(nodes, request)


@policy("worst_fit", vetoes=False, pure=True, per_node=True)
def worst_fit(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
    """Worst fit: the node left with the most free capacity after placement (Johnson 1973)."""
    return _leftover(nodes, request)


@policy("first_fit", order_dependent=True, vetoes=False, pure=True)
def first_fit(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
    """First fit: the lowest-index feasible node (Johnson 1973)."""
    return -nodes.index_range.astype(np.float64)


@policy("random", vetoes=False, choose_devices=choose_random)
def random(nodes: NodeMatrix, request: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    """Random: a uniformly random feasible node, drawn from the passed generator."""
    return rng.random(nodes.n_nodes)


@policy("balanced", vetoes=False, pure=True, per_node=True)
def balanced(nodes: NodeMatrix, request: np.ndarray, *, resources: Sequence[str] | None = None) -> np.ndarray:
    """Kubernetes ``NodeResourcesBalancedAllocation``: 1 - std of utilisation across resources.

    kube-scheduler ``noderesources/balanced_allocation.go``: fractions
    ``requested_r / cap_r`` (capped at 1) after placement; score ``1 - std``; for two
    resources that is ``1 - |f_cpu - f_mem| / 2``. Default resources cpu and memory.
    """
    names = [r for r in ("cpu", "memory") if nodes.has_resource(r)] if resources is None else list(resources)
    if not names:
        return np.ones(nodes.n_nodes)
    fractions = [np.minimum(utilisation_after(nodes, request, name), 1.0) for name in names]
    if len(fractions) == 2:
        # The two-resource std in closed form: |f_cpu - f_mem| / 2.
        gap = fractions[0] - fractions[1]
        np.abs(gap, out=gap)
        gap *= -0.5
        gap += 1.0
        return gap
    mean = sum(fractions) / len(fractions)
    var = sum((f - mean) ** 2 for f in fractions) / len(fractions)
    return 1.0 - np.sqrt(var)


@policy("dot_product", vetoes=False, pure=True, per_node=True)
def dot_product(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
    """Tetris alignment: dot product of the request with the node's free capacity, both normalised.

    Grandl et al., "Multi-resource packing for cluster schedulers", SIGCOMM 2014:
    ``sum_r (request_r / cap_r) * (free_r / cap_r)``. Prefers nodes whose free capacity
    is large exactly where the task asks for much.
    """
    free, inv = nodes.free, nodes.inv_capacity
    score = np.zeros(nodes.n_nodes)
    for r in np.flatnonzero(request):
        score += free[r] * inv[r] * inv[r] * request[r]
    return score


@policy("dominant_resource", vetoes=False, pure=True, per_node=True)
def dominant_resource(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
    """Lowest dominant share after placement: ``-max_r utilisation_r``.

    The dominant share of Dominant Resource Fairness (Ghodsi et al., NSDI 2011) applied
    to nodes: the node whose most-used resource stays least used wins.
    """
    if nodes.n_nodes == 0:
        return np.zeros(0)
    dominant = utilisation_after(nodes, request, 0)
    for r in range(1, len(nodes.resources)):
        np.maximum(dominant, utilisation_after(nodes, request, r), out=dominant)
    return -dominant


def _pow10(y: np.ndarray) -> np.ndarray:
    """``10^y`` the way Go's ``math.Pow`` splits it: whole powers exact, ``exp`` only for the fraction.

    ``exp(y ln 10)`` alone gave 9.999999999999998 for ``y = 1`` under numpy 1.26 on an
    AVX-512 machine, so an empty node's Nomad bin-packing score came out 2e-16, not 0.
    Go takes the integer part by repeated squaring (exact) and ``Exp(f Log(10))`` for a
    fraction moved into (-0.5, 0.5]; so do we, the whole powers from a table.
    """
    magnitude = np.abs(y)
    whole = np.trunc(magnitude)
    fraction = magnitude - whole
    up = fraction > 0.5
    fraction[up] -= 1.0
    whole[up] += 1.0
    power = np.exp(fraction * _LN10) * _WHOLE_POWERS_OF_10[np.minimum(whole, _MAX_WHOLE_POWER).astype(np.intp)]
    negative = y < 0
    power[negative] = 1.0 / power[negative]
    return power


def _nomad_total(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
    """``10^free_cpu + 10^free_mem`` with ``free = 1 - used / capacity`` after placement."""
    total = _pow10(1.0 - utilisation_after(nodes, request, "cpu"))
    total += _pow10(1.0 - utilisation_after(nodes, request, "memory"))
    return total


@policy("nomad_binpack", vetoes=False, pure=True)
def nomad_binpack(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
    """Nomad ``ScoreFitBinPack``: ``(20 - (10^free_cpu + 10^free_mem)) / 18``, clamped to [0, 1].

    HashiCorp Nomad ``nomad/structs/funcs.go``. An empty node scores 0, a full one 1.
    """
    return np.clip((20.0 - _nomad_total(nodes, request)) / 18.0, 0.0, 1.0)


@policy("nomad_spread", vetoes=False, pure=True)
def nomad_spread(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
    """Nomad ``ScoreFitSpread``: ``(10^free_cpu + 10^free_mem - 2) / 18``, clamped to [0, 1]."""
    return np.clip((_nomad_total(nodes, request) - 2.0) / 18.0, 0.0, 1.0)


@policy("hybrid", order_dependent=True, vetoes=False)
def hybrid(
    nodes: NodeMatrix,
    request: np.ndarray,
    *,
    rng: np.random.Generator,
    feasible: np.ndarray,
    threshold: float = 0.5,
    top_k_fraction: float = 0.2,
    top_k_absolute: int = 1,
) -> np.ndarray:
    """Ray's hybrid policy: pack below a utilisation threshold, spread above it.

    Ray ``src/ray/raylet/scheduling/policy/hybrid_scheduling_policy.cc``: a node's score
    is its critical (highest) resource utilisation after placement, read as 0 while
    below ``threshold``; nodes are ranked by score, then node order, and one of the best
    ``k = max(top_k_absolute, top_k_fraction * N)`` feasible nodes is drawn at random.
    The drawn node gets score 1 (all others are <= 0), so ``select``'s argmax takes it.
    """
    n = nodes.n_nodes
    if n == 0:
        return np.zeros(0)
    critical = -dominant_resource(nodes, request)
    critical[critical < threshold] = 0.0
    score = -critical
    candidates = np.flatnonzero(feasible)
    if len(candidates) == 0:
        return score
    k = max(int(top_k_absolute), int(top_k_fraction * n), 1)
    values = critical[candidates]
    # The j-th node in (score, node order), found by selection instead of a full sort.
    j = int(rng.integers(min(k, len(values))))
    v = np.partition(values, j)[j]
    pick = np.flatnonzero(values == v)[j - np.count_nonzero(values < v)]
    score[candidates[pick]] = 1.0
    return score


register_gpu_policies(POLICIES)  # the FGD paper's policies (gpu_policies.py), by name everywhere
