"""Devices of one kind per node (GPUs now, any kind): each device's free share, vectorised over nodes.

Why not a scalar: a node's ``gpu`` total says 8 x 1000 milli-GPU, but a 500 milli-GPU
task must fit inside ONE device's free share (Nomad's ``device.go``; the FGD artifact's
``MilliGpuLeftList``). A sum lets a 0.5-GPU pod straddle two GPUs.

Layout. The free share of device ``d`` on node ``n`` lives in a slot-major float64
buffer ``(D_cap, N_cap)``; ``free`` is its ``(N, D)`` transpose (a view). Slot-major for
the reason ``NodeMatrix`` is resource-major: a reduction over devices such as
``(free >= need).any(axis=1)`` walks D contiguous rows, about 10x faster than a
node-major array at 10,000 x 8 on the project's machine. Both axes grow by doubling
(amortised), and ``remove_nodes`` returns ``NodeMatrix``'s old->new index map.

Padding. A node with fewer than ``D`` devices has padding slots of capacity 0 and free
0. A need is always positive, so padding never fits, and per-node sums need no mask:
``capacity_total = counts * unit``, ``free_total = free.sum(axis=1)``.

Hot-path caches. Whether a node can take a need depends only on its largest free
share (a fraction) or its number of fully free devices (whole devices); both are kept
per node with the free total and refreshed in O(D) by ``allocate``/``release``, so the
fit mask is one ``(N,)`` comparison, as cheap as a scalar resource row.

Needs. A fraction of ONE device (``0 < share < unit``) or ``k`` whole, fully free devices
(the artifact's ``MilliGpu`` x ``GpuNumber``). ``DeviceNeed.from_total`` reads it from the
request's scalar total (460 -> a fraction, 2000 -> two whole GPUs), so the scalar
request vector stays the one request format.

Choice on the chosen node: ``choose_best_fit`` (tightest device, the artifact's default
``allocateGpuIdBasedOnBestFit``), ``choose_random`` (``allocateGpuIdBasedOnRandomFit``),
``choose_by_score`` (highest per-device score, first on ties: FGD's own choice). Whole
needs always take the lowest-index fully free devices (``AllocateExclusiveGpuId``):
fully free devices are interchangeable, so no draw is spent on them.

``allocate``/``release`` validate everything before changing anything (``CapacityError``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from orchsim.scheduling.errors import CapacityError

__all__ = ["GPU_UNIT", "DeviceNeed", "DeviceSet"]

GPU_UNIT = 1000.0  # milli-GPU per GPU
_MIN_BUFFER = 8
_PER_NODE = ("_counts", "_max_free", "_n_whole", "_total")  # (N_cap,) buffers, beside the 2-D ones
_SLACK = 1e-6  # shares are sums of the very numbers later subtracted: drift is a few ulps


class DeviceNeed(NamedTuple):
    """What a task needs of one device kind.

    Attributes:
        share: Share of each device, in the kind's units (milli-GPU): ``0 < share <
            unit`` for a fraction of one device, ``== unit`` for whole devices, 0 for none.
        count: Number of devices: 1 for a fraction, ``k`` for whole devices, 0 for none.
    """

    share: float
    count: int

    @classmethod
    def from_total(cls, total: float, unit: float = GPU_UNIT) -> DeviceNeed:
        """The need behind a scalar request: 0 none, below ``unit`` a fraction, else whole devices.

        Raises:
            ValueError: negative, or above one device but not whole devices (1.5 GPU).
        """
        if total < 0 or total != total:
            raise ValueError(f"device request must be >= 0, got {total}")
        if total == 0:
            return NO_NEED
        if total < unit:
            return cls(float(total), 1)
        k = total / unit
        if k != int(k):
            raise ValueError(f"device request {total:g} is neither below {unit:g} nor a multiple of it")
        return cls(float(unit), int(k))

    @property
    def total(self) -> float:
        """``share * count``: the amount the scalar resource row carries."""
        return self.share * self.count


NO_NEED = DeviceNeed(0.0, 0)


def _read_only(view: np.ndarray) -> np.ndarray:
    """``view``, which a policy cannot write through (as ``matrix_views``): the set writes its buffers itself."""
    view.flags.writeable = False
    return view


class DeviceSet:
    """The devices of one kind on every node (see the module docstring for the layout).

    Attributes:
        kind: Resource name the devices back (``"gpu"``), named in ``insufficient <kind> devices``.
        unit: Capacity of one device (1000 milli-GPU).

    Array properties (views, valid until nodes or devices are added or removed):
        free: float64 ``(N, D)``, free share of each device; 0 in padding slots.
        counts: int64 ``(N,)``, devices on each node.
        max_free: float64 ``(N,)``, the largest free share on each node (0 without devices).
        n_whole: int64 ``(N,)``, fully free devices on each node.
        free_total: float64 ``(N,)``, sum of the free shares.
        classes: int64 ``(N, D + 1)``, tasks per need class: column 0 fractions, ``k`` tasks on
            ``k`` whole devices (the artifact's affinity tags ``share-gpu``, ``k-gpu``).
    """

    def __init__(self, kind: str = "gpu", unit: float = GPU_UNIT) -> None:
        if not unit > 0:
            raise ValueError(f"device unit must be > 0, got {unit}")
        self.kind = str(kind)
        self.unit = float(unit)
        self._n, self._d = 0, 0
        self._alloc_buffers(_MIN_BUFFER, 1)

    @classmethod
    def from_counts(cls, counts: Sequence[int], kind: str = "gpu", unit: float = GPU_UNIT) -> DeviceSet:
        """Empty devices: ``counts[n]`` devices of ``unit`` on node ``n``."""
        devices = cls(kind, unit)
        devices.add_nodes(counts)
        return devices

    @property
    def reason(self) -> str:
        """The rejection label of a node whose scalar total fits but whose devices do not."""
        return f"insufficient {self.kind} devices"

    # ------------------------------------------------------------------ buffers
    def _alloc_buffers(self, n_cap: int, d_cap: int) -> None:
        new = {
            "_free": np.zeros((d_cap, n_cap)),
            "_classes": np.zeros((d_cap + 1, n_cap), dtype=np.int64),
            "_counts": np.zeros(n_cap, dtype=np.int64),
            "_max_free": np.zeros(n_cap),
            "_n_whole": np.zeros(n_cap, dtype=np.int64),
            "_total": np.zeros(n_cap),
        }
        if "_free" in self.__dict__:
            n, d = self._n, self._d
            new["_free"][:d, :n] = self._free[:d, :n]
            new["_classes"][: d + 1, :n] = self._classes[: d + 1, :n]
            for name in _PER_NODE:
                new[name][:n] = getattr(self, name)[:n]
        self.__dict__.update(new)

    # ------------------------------------------------------------------ views
    @property
    def n_nodes(self) -> int:
        return self._n

    @property
    def max_devices(self) -> int:
        """``D``: the most devices any node has (columns of ``free``)."""
        return self._d

    @property
    def free(self) -> np.ndarray:
        return _read_only(self._free[: self._d, : self._n].T)

    @property
    def counts(self) -> np.ndarray:
        return _read_only(self._counts[: self._n])

    @property
    def max_free(self) -> np.ndarray:
        return _read_only(self._max_free[: self._n])

    @property
    def n_whole(self) -> np.ndarray:
        return _read_only(self._n_whole[: self._n])

    @property
    def free_total(self) -> np.ndarray:
        return _read_only(self._total[: self._n])

    @property
    def classes(self) -> np.ndarray:
        return _read_only(self._classes[: self._d + 1, : self._n].T)

    @property
    def capacity_total(self) -> np.ndarray:
        """Float64 ``(N,)``: ``counts * unit``, the node's scalar capacity of this kind."""
        return self.counts * self.unit

    @property
    def allocated_total(self) -> np.ndarray:
        """Float64 ``(N,)``: capacity minus free, the node's scalar allocation of this kind."""
        return self.capacity_total - self.free_total

    @property
    def valid(self) -> np.ndarray:
        """Bool ``(N, D)``: True for real devices, False for padding slots."""
        return np.arange(self._d) < self.counts[:, None]

    # ------------------------------------------------------------------ node lifecycle
    def add_nodes(self, counts: Sequence[int] | np.ndarray) -> range:
        """Append nodes with ``counts[i]`` empty devices each; returns their index range."""
        new = np.asarray(counts, dtype=np.int64).reshape(-1)
        if np.any(new < 0):
            raise ValueError("device counts must be >= 0")
        k, start = len(new), self._n
        d_need = max(self._d, int(new.max()) if k else 0)
        n_cap, d_cap = self._free.shape[1], self._free.shape[0]
        if start + k > n_cap or d_need > d_cap:
            grow_n = max(2 * n_cap, start + k) if start + k > n_cap else n_cap
            grow_d = max(2 * d_cap, d_need) if d_need > d_cap else d_cap
            self._alloc_buffers(grow_n, grow_d)
        end = start + k
        self._d = d_need
        slots = np.arange(self._free.shape[0])[:, None]
        self._free[:, start:end] = np.where(slots < new, self.unit, 0.0)
        self._counts[start:end] = new
        self._max_free[start:end] = np.where(new > 0, self.unit, 0.0)
        self._n_whole[start:end] = new
        self._total[start:end] = new * self.unit
        self._classes[:, start:end] = 0
        self._n = end
        return range(start, end)

    def remove_nodes(self, nodes: Iterable[int]) -> np.ndarray:
        """Remove nodes, keeping the others in order; returns the old->new index map (-1 removed).

        Call it with the same indices as ``NodeMatrix.remove_nodes`` so both stay aligned.
        """
        drop = np.zeros(self._n, dtype=bool)
        for node in nodes:
            self._check_node(node)
            drop[node] = True
        keep = np.flatnonzero(~drop)
        mapping = np.full(self._n, -1, dtype=np.int64)
        mapping[keep] = np.arange(len(keep))
        m = len(keep)
        self._free[:, :m] = self._free[:, keep]
        self._classes[:, :m] = self._classes[:, keep]
        for name in _PER_NODE:
            getattr(self, name)[:m] = getattr(self, name)[keep]
        self._n = m
        if self._free.shape[1] > _MIN_BUFFER and m < self._free.shape[1] // 4:
            self._alloc_buffers(max(_MIN_BUFFER, self._free.shape[1] // 2), self._free.shape[0])
        return mapping

    def take(self, columns: slice | np.ndarray, n: int) -> DeviceSet:
        """The devices of ``n`` of the nodes (a slice: views; indices: copies), for a ``NodeSubset``."""
        other = DeviceSet.__new__(DeviceSet)
        other.kind, other.unit, other._n, other._d = self.kind, self.unit, n, self._d
        other._free, other._classes = self._free[:, columns], self._classes[:, columns]
        for name in _PER_NODE:
            setattr(other, name, getattr(self, name)[columns])
        return other

    def copy(self) -> DeviceSet:
        """A deep copy (a snapshot the caller may change freely)."""
        other = DeviceSet(self.kind, self.unit)
        other._n, other._d = self._n, self._d
        for name in ("_free", "_classes", *_PER_NODE):
            setattr(other, name, getattr(self, name).copy())
        return other

    def _check_node(self, node: int) -> None:
        if not 0 <= node < self._n:
            raise IndexError(f"node index {node} out of range for {self._n} nodes")

    # ------------------------------------------------------------------ fit
    def need(self, total: float) -> DeviceNeed:
        """``DeviceNeed.from_total(total, self.unit)``."""
        return DeviceNeed.from_total(total, self.unit)

    def fits(self, need: DeviceNeed) -> np.ndarray:
        """Bool ``(N,)``: the node can take ``need`` on its devices now.

        A fraction needs one device with ``free >= share``; ``k`` whole devices need
        ``k`` fully free ones. One ``(N,)`` comparison on the cached per-node summaries.
        """
        if need.count == 0:
            return np.ones(self._n, dtype=bool)
        if need.share < self.unit:
            return self.max_free >= need.share
        return self.n_whole >= need.count

    def could_ever_fit(self, need: DeviceNeed) -> np.ndarray:
        """Bool ``(N,)``: the node could take ``need`` if all its devices were free."""
        if need.count == 0:
            return np.ones(self._n, dtype=bool)
        return self.counts >= (1 if need.share < self.unit else need.count)

    def rejection_check(self, need: DeviceNeed) -> tuple[str, np.ndarray]:
        """``(reason, passes)`` for ``filters.rejections``' checks, after the scalar ``insufficient <kind>``.

        There it counts exactly the nodes whose total would fit but whose devices cannot.
        """
        return self.reason, self.fits(need)

    def tightest(self, need: DeviceNeed) -> tuple[np.ndarray, np.ndarray]:
        """Per node, the tightest device that fits a fraction: ``(index (N,), its free (N,))``.

        Ties go to the lowest index (the artifact's stable ascending sort); nodes with no
        fitting device get index -1 and free ``inf``. Vectorised: one pass per device slot.
        """
        best = np.full(self._n, np.inf)
        index = np.full(self._n, -1, dtype=np.int64)
        for d in range(self._d):
            row = self._free[d, : self._n]
            better = (row >= need.share) & (row < best)
            best[better] = row[better]
            index[better] = d
        return index, best

    # ------------------------------------------------------------------ choice on one node
    def fitting(self, node: int, need: DeviceNeed) -> np.ndarray:
        """Indices of the devices on ``node`` whose free share covers ``need.share``."""
        self._check_node(node)
        return np.flatnonzero(self._free[: self._counts[node], node] >= need.share)

    def _settled(self, node: int, need: DeviceNeed) -> tuple[int, ...] | None:
        """The choice every rule shares: () without a need, lowest fully free devices for whole ones."""
        if need.count == 0:
            self._check_node(node)
            return ()
        if need.share < self.unit:
            return None
        full = self.fitting(node, DeviceNeed(self.unit, need.count))
        return tuple(int(d) for d in full[: need.count]) if len(full) >= need.count else ()

    def choose_best_fit(self, node: int, need: DeviceNeed) -> tuple[int, ...]:
        """Tightest fitting device for a fraction (lowest index on ties); () if none fits."""
        if (settled := self._settled(node, need)) is not None:
            return settled
        fit = self.fitting(node, need)
        return (int(fit[self._free[fit, node].argmin()]),) if len(fit) else ()

    def choose_random(self, node: int, need: DeviceNeed, rng: np.random.Generator) -> tuple[int, ...]:
        """A uniformly random fitting device for a fraction, drawn from ``rng``; () if none fits."""
        if (settled := self._settled(node, need)) is not None:
            return settled
        fit = self.fitting(node, need)
        return (int(fit[rng.integers(len(fit))]),) if len(fit) else ()

    def choose_by_score(self, node: int, need: DeviceNeed, scores: np.ndarray) -> tuple[int, ...]:
        """The fitting device with the highest ``scores[d]`` (first on ties), for a fraction.

        ``scores`` has one entry per device of the node; unfit devices are ignored.
        """
        if (settled := self._settled(node, need)) is not None:
            return settled
        fit = self.fitting(node, need)
        return (int(fit[np.asarray(scores, dtype=np.float64)[fit].argmax()]),) if len(fit) else ()

    # ------------------------------------------------------------------ state changes
    def _validate(self, node: int, need: DeviceNeed, devices: Sequence[int], *, release: bool) -> list[int]:
        self._check_node(node)
        picked = [int(d) for d in devices]
        where = f"node {node} ({self.kind} devices {picked})"
        if len(picked) != need.count:
            raise CapacityError(f"{where}: need of {need.count} device(s) given {len(picked)}")
        if len(set(picked)) != len(picked):
            raise CapacityError(f"{where}: a device is listed twice")
        if need.count and not 0 < need.share <= self.unit:
            raise CapacityError(f"{where}: share {need.share:g} outside (0, {self.unit:g}]")
        if need.count > 1 and need.share < self.unit:
            raise CapacityError(f"{where}: a fraction of a device never spans {need.count} devices")
        for d in picked:
            if not 0 <= d < self._counts[node]:
                raise CapacityError(f"{where}: device {d} does not exist (node has {self._counts[node]})")
            have = self._free[d, node]
            if release and have + need.share > self.unit + _SLACK:
                raise CapacityError(f"{where}: release of {need.share:g} on device {d} exceeds its capacity")
            if not release and have < need.share:
                raise CapacityError(f"{where}: device {d} has {have:g} free, {need.share:g} needed")
        column = 0 if need.share < self.unit else need.count
        if release and need.count and self._classes[column, node] <= 0:
            raise CapacityError(f"{where}: no task of this need holds devices on the node")
        return picked

    def _apply(self, node: int, need: DeviceNeed, picked: list[int], sign: float) -> None:
        for d in picked:
            value = self._free[d, node] + sign * need.share
            self._free[d, node] = min(max(value, 0.0), self.unit)
        row = self._free[: self._counts[node], node]
        self._max_free[node] = row.max() if len(row) else 0.0
        self._n_whole[node] = int(np.count_nonzero(row >= self.unit))
        self._total[node] = row.sum()
        if need.count:
            self._classes[0 if need.share < self.unit else need.count, node] -= int(sign)  # allocate: one more

    def allocate(self, node: int, need: DeviceNeed, devices: Sequence[int]) -> None:
        """Take ``need`` from ``devices`` of ``node``.

        Raises:
            CapacityError: wrong number of devices, a device listed twice or absent, a
                fraction on more than one device, a device without enough free share
                (whole devices must be fully free); nothing changes.
        """
        picked = self._validate(node, need, devices, release=False)
        self._apply(node, need, picked, -1.0)

    def release(self, node: int, need: DeviceNeed, devices: Sequence[int]) -> None:
        """Give ``need`` back to ``devices`` of ``node``.

        Raises:
            CapacityError: the release would leave a device above its capacity, or the
                assignment is malformed as in ``allocate``; nothing changes.
        """
        picked = self._validate(node, need, devices, release=True)
        self._apply(node, need, picked, 1.0)

    def __repr__(self) -> str:
        return f"DeviceSet(kind={self.kind!r}, nodes={self._n}, max_devices={self._d})"
