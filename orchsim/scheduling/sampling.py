"""Node sampling: score only some feasible nodes, as kube-scheduler and Nomad do on large clusters.

Two published rules, as a policy option (``select(..., sample=...)``, ``PreparedPolicy``):

* ``{"percentage": p}`` (kube-scheduler's ``percentageOfNodesToScore``,
  ``pkg/scheduler/schedule_one.go``: ``numFeasibleNodesToFind`` and
  ``findNodesThatPassFilters``). Filtering stops once ``max(N * p / 100, 100)``
  feasible nodes are found (every node when ``N < 100`` or ``p >= 100``); ``p = 0`` or
  ``{"percentage": "adaptive"}`` is kube's default ``max(50 - N / 125, 5)`` percent. The
  scan starts where the previous decision's stopped (``nextStartNodeIndex``, advanced
  by the nodes examined), so successive decisions rotate over the cluster.
* ``{"candidates": k}`` or ``"log2"`` (Nomad's ``LimitIterator``, ``scheduler/stack.go``:
  ``max(2, ceil(log2 N))`` for service jobs). The first ``k`` feasible nodes found are
  scored. Nomad shuffles the node list once per evaluation; here the scan starts at a
  random node each decision (``start: random``, the default for candidates), drawn from
  the policy's generator, and goes on in node order. Nomad's score-threshold skipping
  (``maxSkip``) is not modelled.

``"all"`` (or None) scores every feasible node: the default, and today's behaviour.
Which nodes are examined is pure arithmetic on the matrix (``scan``); choosing among
them is the ordinary decision on a ``NodeSubset`` of the ones found.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from orchsim.scheduling.matrix import NodeMatrix

__all__ = ["KUBE_MIN_FEASIBLE", "RememberedWindow", "Sampling", "fits_range", "parse_sampling", "scan"]

KUBE_MIN_FEASIBLE = 100  # kube-scheduler's minFeasibleNodesToFind
KUBE_MIN_PERCENTAGE = 5  # minFeasibleNodesPercentageToFind
KUBE_BASE_PERCENTAGE = 50  # the adaptive default's starting percentage
NOMAD_MIN_CANDIDATES = 2  # Nomad's limit before the log2 rule raises it
_FIRST_WINDOW = 64  # nodes examined at least per window of the scan


@dataclass(frozen=True)
class Sampling:
    """How many feasible nodes a decision looks for, and where its scan starts.

    Attributes:
        percentage: kube's rule, in percent of the nodes; 0: kube's adaptive default.
        candidates: Nomad's rule, the number of feasible nodes; 0: ``max(2, ceil(log2 N))``.
        start: ``rotating`` (where the last scan stopped) or ``random`` (a node drawn
            from the policy's generator).
    """

    percentage: float | None = None
    candidates: int | None = None
    start: str = "rotating"

    def wanted(self, n: int) -> int:
        """Feasible nodes to find among ``n`` (``n``: all of them)."""
        if self.percentage is not None:
            if n < KUBE_MIN_FEASIBLE or self.percentage >= 100:
                return n
            percentage = self.percentage or max(KUBE_BASE_PERCENTAGE - n // 125, KUBE_MIN_PERCENTAGE)
            return max(int(n * percentage / 100), KUBE_MIN_FEASIBLE)
        k = self.candidates or max(NOMAD_MIN_CANDIDATES, math.ceil(math.log2(max(n, 1))))
        return min(k, n)


def parse_sampling(spec: str | Mapping[str, Any] | Sampling | None) -> Sampling | None:
    """``"all"``/None -> None; ``"log2"``, ``{"candidates": k}``, ``{"percentage": p}`` -> a Sampling.

    Raises:
        ValueError: anything else, with what is accepted.
    """
    if spec is None or spec == "all" or isinstance(spec, Sampling):
        return spec if isinstance(spec, Sampling) else None
    if spec == "log2":
        return Sampling(candidates=0, start="random")
    if not isinstance(spec, Mapping) or len(set(spec) - {"start"}) != 1:
        raise ValueError(f'sample: use "all", "log2", {{candidates: k}} or {{percentage: p}}, got {spec!r}')
    start = spec.get("start")
    if start not in (None, "rotating", "random"):
        raise ValueError(f"sample.start: rotating or random, got {start!r}")
    if "percentage" in spec:
        p = spec["percentage"]
        p = 0 if p == "adaptive" else p
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 100:
            raise ValueError(f'sample.percentage: a number in [0, 100] or "adaptive", got {p!r}')
        return Sampling(percentage=float(p), start=start or "rotating")
    if "candidates" in spec:
        k = spec["candidates"]
        if k != "log2" and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError(f'sample.candidates: a whole number >= 1 or "log2", got {k!r}')
        return Sampling(candidates=0 if k == "log2" else k, start=start or "random")
    raise ValueError(f"sample: unknown key {next(iter(spec))!r}; use candidates or percentage")


def fits_range(nodes: NodeMatrix, request: np.ndarray) -> Callable[[int, int], np.ndarray]:
    """``feasible_in`` for ``scan`` with the built-in filters only (no selector, extra filter or devices).

    Exactly ``~filters.infeasible`` on the nodes ``lo:hi`` (the same comparisons, negated, in the
    same order), read from the matrix's own rows: no ``NodeSubset`` per window.
    """
    free, sched = nodes._free, nodes._sched
    needs = [(r, amount) for r, amount in enumerate(request.tolist()) if amount > 0]

    def feasible_in(lo: int, hi: int) -> np.ndarray:
        ok = sched[lo:hi].copy()
        for r, amount in needs:
            ok &= free[r, lo:hi] >= amount  # ~(free < amount): free capacity is never NaN
        return ok

    return feasible_in


class RememberedWindow:
    """A ``feasible_in`` for ``scan`` that keeps the mask of the last window it was asked for.

    The decision after a scan needs the filters on the stretch of nodes it found, which
    usually lies inside the scan's last window (kube's window is found in one): it is then
    a slice of the kept mask, not a second pass of the filters.
    """

    __slots__ = ("_check", "hi", "lo", "mask")

    def __init__(self, check: Callable[[int, int], np.ndarray]) -> None:
        self._check = check
        self.lo = self.hi = 0
        self.mask = np.zeros(0, dtype=bool)

    def __call__(self, lo: int, hi: int) -> np.ndarray:
        self.lo, self.hi, self.mask = lo, hi, self._check(lo, hi)
        return self.mask

    def rejected(self, lo: int, hi: int) -> np.ndarray:
        """Bool: True where a node of ``lo:hi`` fails the filters (a new array)."""
        if self.lo <= lo and hi <= self.hi:
            return ~self.mask[lo - self.lo : hi - self.lo]
        return ~self._check(lo, hi)


def scan(
    nodes: NodeMatrix, start: int, wanted: int, feasible_in: Callable[[int, int], np.ndarray], reach: int = 0
) -> tuple[np.ndarray, int]:
    """The first ``wanted`` feasible nodes from ``start`` on, wrapping; and how many were examined.

    ``feasible_in(lo, hi)`` is the bool mask of the filters on nodes ``lo:hi`` (e.g. on a
    ``NodeSubset`` of them, views of the parent's arrays: no copies). Windows grow
    geometrically, and the count examined stops at the last node taken, as kube's
    sequential count would. ``reach``: nodes the previous scan examined (0: unknown); the
    first window is half as much again, not twice ``wanted``, when that is smaller.
    The windows decide the cost only: the nodes found are the same whatever their sizes.
    """
    n = nodes.n_nodes
    found: list[np.ndarray] = []
    size = max(_FIRST_WINDOW, 2 * wanted)
    if reach:
        size = max(_FIRST_WINDOW, min(size, reach + reach // 2))
    got, pos = 0, 0
    while pos < n and got < wanted:
        lo = (start + pos) % n
        hi = min(lo + size, n, lo + (n - pos))
        hits = np.flatnonzero(feasible_in(lo, hi))
        need = wanted - got
        if len(hits) >= need:
            taken = hits[:need] + lo
            return (np.concatenate((*found, taken)) if found else taken), pos + int(hits[need - 1]) + 1
        found.append(hits + lo)
        got += len(hits)
        pos += hi - lo
        size *= 2
    return (np.concatenate(found) if found else np.zeros(0, dtype=np.int64)), pos
