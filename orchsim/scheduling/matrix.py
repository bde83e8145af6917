"""The cluster as a node matrix: the one data structure every policy reads.

Resources are stored resource-major: one contiguous float64 row per resource, so a
policy that touches cpu and memory reads two contiguous rows of length N (measured
about 6x faster than node-major rows on the project's machine). Rows live in buffers
with spare columns; nodes join and leave in amortised O(R) time by doubling and
halving those buffers, the way a Python list grows.

Units: cpu in millicores, memory in MiB, gpu in milli-GPU; any other resource name is
allowed and carries whatever unit its user gives it.

The matrix is owned by exactly one party (the simulator's cluster or the live master).
Policies only read it; the owner changes it through ``allocate``/``release`` and the
node-management methods, all of which validate their input so that a bug shows up as a
clear error rather than as silent corruption.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from orchsim.scheduling import node_devices
from orchsim.scheduling.devices import DeviceSet
from orchsim.scheduling.errors import CapacityError, UnknownResourceError
from orchsim.scheduling.fit_masks import FitMasks
from orchsim.scheduling.labels import NodeLabels
from orchsim.scheduling.matrix_views import MatrixViews
from orchsim.scheduling.node_devices import Assignment

if TYPE_CHECKING:
    from orchsim.scheduling.state_classes import StateClasses

__all__ = ["CapacityError", "NodeMatrix", "UnknownResourceError"]

_MIN_BUFFER = 8
# Float slack for release(): allocations are sums of the very numbers later
# subtracted, so any drift is a few ulps; anything larger is a real bug.
_RELEASE_SLACK = 1e-6


class NodeMatrix(MatrixViews):
    """Capacity and allocation of every node, resource-major.

    Attributes:
        resources: Resource names, in row order (e.g. ``("cpu", "memory")``).
        ids: Node ids, in column order.

    Array properties (read-only views, ``MatrixViews``; valid until the next node is added or removed):
        capacity, allocated, free: float64, shape ``(R, N)``.
        inv_capacity: float64 ``(R, N)``, ``1 / capacity`` and 0 where capacity is 0,
            precomputed because every utilisation-based policy multiplies by it.
        tasks: int64 ``(N,)``, tasks currently allocated on each node.
        schedulable: bool ``(N,)``, False for down, draining or cordoned nodes.
    """

    # Kept feasibility masks (``keep_fit_masks``) and state classes (``state_classes.keep_state_classes``);
    # class defaults so subsets have none too.
    fit_masks: FitMasks | None = None
    state_classes: StateClasses | None = None

    def __init__(self, resources: Sequence[str]) -> None:
        names = tuple(str(r) for r in resources)
        if not names:
            raise ValueError("a NodeMatrix needs at least one resource")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate resource names in {names}")
        self.resources: tuple[str, ...] = names
        self._row: dict[str, int] = {r: i for i, r in enumerate(names)}
        self.ids: list[str] = []
        self._index: dict[str, int] = {}
        self._n = 0
        # Labels as integer codes, so that a node_selector is one comparison per key.
        self._labels = NodeLabels(_MIN_BUFFER)
        self._alloc_buffers(_MIN_BUFFER)
        # Device kinds (``track_devices``): the devices behind a scalar row, one DeviceSet each.
        self.devices: dict[str, DeviceSet] = {}
        self._arange = np.arange(0, dtype=np.int64)
        self._scale: np.ndarray | None = None

    # ------------------------------------------------------------------ building
    @classmethod
    def from_capacities(
        cls,
        capacities: Mapping[str, Sequence[float]],
        *,
        ids: Sequence[str] | None = None,
        labels: Sequence[Mapping[str, str]] | None = None,
    ) -> NodeMatrix:
        """Build a matrix from one capacity list per resource.

        Args:
            capacities: ``{"cpu": [4000, 8000], "memory": [8192, 16384]}``; every list
                has one entry per node.
            ids: Node ids; default ``node-0``, ``node-1``, ...
            labels: One label mapping per node.
        """
        lengths = {len(v) for v in capacities.values()}
        if len(lengths) > 1:
            raise ValueError(f"capacity lists differ in length: { {k: len(v) for k, v in capacities.items()} }")
        n = lengths.pop() if lengths else 0
        nodes = cls(list(capacities))
        node_ids = list(ids) if ids is not None else [f"node-{i}" for i in range(n)]
        if len(node_ids) != n:
            raise ValueError(f"{len(node_ids)} ids given for {n} nodes")
        if labels is not None and len(labels) != n:
            raise ValueError(f"{len(labels)} label sets given for {n} nodes")
        cap = np.array([np.asarray(v, dtype=np.float64) for v in capacities.values()]).reshape(len(capacities), n)
        nodes.add_nodes(node_ids, cap, labels=labels)
        return nodes

    def _alloc_buffers(self, size: int) -> None:
        r, n, grow = len(self.resources), self._n, hasattr(self, "_cap")
        fresh = {
            "_cap": np.zeros((r, size)),
            "_alloc": np.zeros((r, size)),
            "_free": np.zeros((r, size)),
            "_inv": np.zeros((r, size)),
            "_safe": np.full((r, size), np.inf),
            "_tasks": np.zeros(size, dtype=np.int64),
            "_sched": np.zeros(size, dtype=bool),
        }
        for name, array in fresh.items():
            if grow:
                array[..., :n] = getattr(self, name)[..., :n]
            setattr(self, name, array)
        self._labels.resize(size, n)
        self._views()

    @property
    def index_range(self) -> np.ndarray:
        """``arange(N)`` as int64, cached for policies that score by position."""
        if len(self._arange) != self._n:
            self._arange = np.arange(self._n, dtype=np.int64)
        return self._arange

    @property
    def resource_scale(self) -> np.ndarray:
        """Float64 ``(R,)``: the largest capacity of each resource (1 where every node has 0).

        Policies that compare absolute amounts across resources (best fit) divide by it
        so that millicores and MiB weigh alike. Cached; recomputed when nodes change.
        """
        if self._scale is None:
            scale = self.capacity.max(axis=1) if self._n else np.ones(len(self.resources))
            self._scale = np.where(scale > 0, scale, 1.0)
        return self._scale

    def row(self, resource: str) -> int:
        """Row index of ``resource``; raises UnknownResourceError listing the known ones."""
        try:
            return self._row[resource]
        except KeyError:
            raise UnknownResourceError(
                f"unknown resource {resource!r}; this cluster tracks: {', '.join(self.resources)}"
            ) from None

    def as_dict(self, vector: np.ndarray) -> dict[str, float]:
        """A ``(R,)`` vector as ``{resource: amount}``, for messages and records."""
        return dict(zip(self.resources, vector.tolist(), strict=True))

    def has_resource(self, resource: str) -> bool:
        return resource in self._row

    def id_of(self, node: int) -> str:
        """The id of column ``node`` (a subset answers without listing all its ids)."""
        return self.ids[node]

    def index_of(self, node_id: str) -> int:
        """Column index of a node id (KeyError if absent)."""
        try:
            return self._index[node_id]
        except KeyError:
            raise KeyError(f"unknown node {node_id!r}") from None

    def labels_of(self, node: int) -> dict[str, str]:
        """The labels of node ``node`` as a plain dict."""
        self._check_node(node)
        return self._labels.of(node)

    def label_mask(self, selector: Mapping[str, str]) -> np.ndarray:
        """Bool ``(N,)``: True where the node carries every ``key=value`` of ``selector``."""
        return self._labels.mask(selector, self._n)

    def request_vector(self, request: Mapping[str, float] | np.ndarray) -> np.ndarray:
        """A request as a float64 ``(R,)`` vector in row order; missing resources are 0.

        Raises:
            UnknownResourceError: a resource with a positive amount is not tracked.
            ValueError: an amount is negative or not finite.
        """
        if isinstance(request, np.ndarray):
            vec = np.asarray(request, dtype=np.float64)
            if vec.shape != (len(self.resources),):
                raise ValueError(f"request vector has shape {vec.shape}, expected ({len(self.resources)},)")
        else:
            vec = np.zeros(len(self.resources))
            for name, amount in request.items():
                value = float(amount)
                if name in self._row:
                    vec[self._row[name]] = value
                elif value != 0:
                    self.row(name)  # raises with the list of known resources
        if not np.all(np.isfinite(vec)) or np.any(vec < 0):
            raise ValueError(f"request amounts must be finite and >= 0, got {self.as_dict(vec)}")
        return vec

    # ------------------------------------------------------------------ node lifecycle
    def add_node(
        self,
        node_id: str,
        capacity: Mapping[str, float],
        *,
        labels: Mapping[str, str] | None = None,
        schedulable: bool = True,
    ) -> int:
        """Append one node and return its index. Resources not named get capacity 0."""
        vec = self.request_vector(capacity)
        return self.add_nodes([node_id], vec[:, None], labels=[labels or {}], schedulable=schedulable)[0]

    def add_nodes(
        self,
        node_ids: Sequence[str],
        capacity: np.ndarray,
        *,
        labels: Sequence[Mapping[str, str]] | None = None,
        schedulable: bool = True,
    ) -> range:
        """Append nodes in bulk; ``capacity`` is ``(R, k)``. Returns their index range."""
        k = len(node_ids)
        cap = np.asarray(capacity, dtype=np.float64).reshape(len(self.resources), k)
        if not np.all(np.isfinite(cap)) or np.any(cap < 0):
            raise ValueError("node capacities must be finite and >= 0")
        for nid in node_ids:
            if nid in self._index:
                raise ValueError(f"node {nid!r} already exists")
        if len(set(node_ids)) != k:
            raise ValueError("duplicate node ids in one add_nodes call")
        start = self._n
        if start + k > self._cap.shape[1]:
            self._alloc_buffers(max(2 * self._cap.shape[1], start + k))
        end = start + k
        self._cap[:, start:end] = cap
        self._alloc[:, start:end] = 0.0
        self._free[:, start:end] = cap
        with np.errstate(divide="ignore"):
            self._inv[:, start:end] = np.where(cap > 0, 1.0 / cap, 0.0)
        self._safe[:, start:end] = np.where(cap > 0, cap, np.inf)
        self._tasks[start:end] = 0
        self._sched[start:end] = schedulable
        for i, nid in enumerate(node_ids):
            self.ids.append(str(nid))
            self._index[str(nid)] = start + i
        self._n = end
        self._views()
        self._scale = None
        self._labels.clear(start, end)
        if labels is not None:
            for i, node_labels in enumerate(labels):
                self._labels.set(start + i, node_labels)
        for kind, devices in self.devices.items():
            devices.add_nodes(node_devices.device_counts(cap[self._row[kind]], devices.unit, kind, node_ids))
        self._changed(None)
        return range(start, end)

    def track_devices(self, kind: str, unit: float = 1000.0) -> DeviceSet:
        """Back resource ``kind`` with devices of ``unit`` each (``gpu``: 1000 milli-GPU per GPU).

        Each node's device count is its capacity of ``kind`` over ``unit`` (now and for
        nodes added later), which must be whole. From then on a request for ``kind`` is a
        fraction of ONE device (``< unit``) or whole devices (a multiple of ``unit``); the
        filters check it per device and ``select`` names the devices it takes.

        Raises:
            UnknownResourceError: ``kind`` is not a resource of the matrix.
            ValueError: already tracked, or a capacity that is not a whole number of devices.
        """
        row = self.row(kind)
        if kind in self.devices:
            raise ValueError(f"{kind} devices are already tracked")
        if np.any(self._alloc[row, : self._n] > 0):
            raise ValueError(f"track {kind} devices before allocating any {kind}")
        devices = DeviceSet(kind, unit)
        devices.add_nodes(node_devices.device_counts(self.capacity[row], unit, kind, self.ids))
        self.devices[kind] = devices
        return devices

    def set_labels(self, node: int, labels: Mapping[str, str]) -> None:
        """Replace the labels of node ``node``."""
        self._check_node(node)
        self._labels.set(node, labels)

    def remove_nodes(self, nodes: Iterable[int]) -> np.ndarray:
        """Remove nodes, keeping the others in order; returns the old->new index map.

        The map has one entry per old index: the node's new index, or -1 if removed.
        Owners holding indices (running tasks) translate them through it. Buffers halve
        when less than a quarter full, so memory follows the cluster down.
        """
        drop = np.zeros(self._n, dtype=bool)
        for node in nodes:
            self._check_node(node)
            drop[node] = True
        keep = np.flatnonzero(~drop)
        mapping = np.full(self._n, -1, dtype=np.int64)
        mapping[keep] = np.arange(len(keep))
        m = len(keep)
        for buf in (self._cap, self._alloc, self._free, self._inv, self._safe):
            buf[:, :m] = buf[:, keep]
        self._tasks[:m] = self._tasks[keep]
        self._sched[:m] = self._sched[keep]
        self._labels.keep(keep)
        self.ids = [self.ids[i] for i in keep]
        self._index = {nid: i for i, nid in enumerate(self.ids)}
        for devices in self.devices.values():
            devices.remove_nodes(np.flatnonzero(drop))
        self._n = m
        self._views()
        self._scale = None
        if self._cap.shape[1] > _MIN_BUFFER and m < self._cap.shape[1] // 4:
            self._alloc_buffers(max(_MIN_BUFFER, self._cap.shape[1] // 2))
        self._changed(None)
        return mapping

    def set_usage(self, node: int, allocated: Sequence[float], tasks: int) -> None:
        """Set what ``node`` holds outright (an owner mirroring records kept elsewhere: the master's ledgers).

        Free capacity follows as capacity minus allocation. Unchecked: the records are the truth.
        """
        self._check_node(node)
        self._alloc[:, node] = allocated
        self._free[:, node] = self._cap[:, node] - self._alloc[:, node]
        self._tasks[node] = tasks
        self._changed(node)

    def set_schedulable(self, node: int, schedulable: bool) -> None:
        """Cordon (False) or uncordon (True) a node; its running tasks are untouched."""
        self._check_node(node)
        self._sched[node] = schedulable
        self._changed(node)

    def _changed(self, node: int | None, move: tuple[int, Sequence[float]] | None = None) -> None:
        """Bring the kept aids up to date at column ``node`` (None: nodes joined or left, rebuild).

        ``move``: ``(+1, request)`` after ``allocate_unchecked``, ``(-1, request)`` after
        ``release_unchecked``; state classes look such a change up instead of reading the column.
        """
        for kept in (self.fit_masks, self.state_classes):
            if kept is not None and node is None:
                kept.rebuild()
            elif kept is not None:
                kept.update(node, move)  # type: ignore[arg-type]

    def keep_fit_masks(self, requests: Iterable[np.ndarray]) -> None:
        """Keep the built-in feasibility masks of these request vectors current (``fit_masks``).

        For an owner whose tasks come in a few shapes: ``select`` then reads a shape's
        mask instead of building it. From now on change the matrix only through its
        methods (writing into ``free`` or ``allocated`` directly would leave the masks stale).
        """
        self.fit_masks = FitMasks(self, requests)

    # ------------------------------------------------------------------ allocation
    def _check_node(self, node: int) -> None:
        if not 0 <= node < self._n:
            raise IndexError(f"node index {node} out of range for {self._n} nodes")

    def _checked_vector(self, request: Mapping[str, float] | np.ndarray) -> np.ndarray:
        # The hot path (a float64 vector from request_vector or a workload row) is checked
        # with Python floats: on R ~ 2-4 values that beats numpy's reductions several-fold.
        if isinstance(request, np.ndarray) and request.dtype == np.float64 and request.shape == (len(self.resources),):
            for amount in request.tolist():
                if not 0.0 <= amount < math.inf:
                    raise ValueError(f"request amounts must be finite and >= 0, got {self.as_dict(request)}")
            return request
        return self.request_vector(request)

    def allocate(
        self, node: int, request: Mapping[str, float] | np.ndarray, devices: Assignment | None = None
    ) -> Assignment:
        """Reserve ``request`` on ``node``, count one more task there, move the round-robin cursor.

        With tracked device kinds the request also takes devices: ``devices`` (``{kind:
        indices}``, as ``select`` chose them) or, if None, the tightest that fit. Returns
        the assignment taken (empty when the request needs no devices).

        Raises:
            CapacityError: the request does not fit the node's free capacity or the given
                devices; nothing changes.
        """
        self._check_node(node)
        vec = self._checked_vector(request)
        col = self._free[:, node]
        for need, have in zip(vec.tolist(), col.tolist(), strict=True):
            if need > have:
                short = [r for r, need, have in zip(self.resources, vec, col, strict=True) if need > have]
                raise CapacityError(
                    f"request {self.as_dict(vec)} does not fit node {self.ids[node]!r}: "
                    f"insufficient {', '.join(short)} (free {self.as_dict(col)})"
                )
        taken = node_devices.take(self, node, vec, devices) if self.devices else node_devices.NO_DEVICES
        alloc = self._alloc[:, node]
        alloc += vec
        col -= vec
        self._tasks[node] += 1
        self._changed(node)
        return taken

    def release(self, node: int, request: Mapping[str, float] | np.ndarray, devices: Assignment | None = None) -> None:
        """Return ``request`` to ``node`` and count one task fewer (and its ``devices``, if any).

        Raises:
            CapacityError: more is released than is allocated, no task is on the node, or
                the request holds tracked devices and ``devices`` does not name them.
        """
        self._check_node(node)
        vec = self._checked_vector(request)
        if self._tasks[node] <= 0:
            raise CapacityError(f"release on node {self.ids[node]!r}, which has no tasks")
        alloc = self._alloc[:, node]
        for have, give in zip(alloc.tolist(), vec.tolist(), strict=True):
            if have - give < -_RELEASE_SLACK:
                raise CapacityError(
                    f"release of {self.as_dict(vec)} on node {self.ids[node]!r} exceeds its "
                    f"allocation {self.as_dict(alloc)}"
                )
        if self.devices:
            node_devices.give_back(self, node, vec, devices or node_devices.NO_DEVICES)
        alloc -= vec
        np.maximum(alloc, 0.0, out=alloc)
        np.subtract(self._cap[:, node], alloc, out=self._free[:, node])
        self._tasks[node] -= 1
        self._changed(node)

    def allocate_unchecked(self, node: int, request: Sequence[float], devices: Assignment | None = None) -> None:
        """``allocate`` for an owner that has already validated both the request and the fit.

        The simulator checks every workload row once at load and places only where
        ``select`` found room, so re-checking on every placement (what ``allocate`` does,
        and what the live master, which reads its requests from etcd, relies on) would
        only cost time. ``request`` is a list of R floats (Python floats: on R ~ 2-4
        values, scalar updates beat numpy's vector ones several-fold). Passing a request
        that does not fit corrupts the matrix: use ``allocate`` unless you know it fits.
        Devices (``devices``, the decision's) are always checked: they are rare and cheap.
        """
        if devices:
            node_devices.take(self, node, np.asarray(request, dtype=np.float64), devices)
        elif self.state_classes is not None and self.state_classes.apply_known(node, 1, request):
            return  # a move seen before: the new class's columns written
        alloc, free = self._alloc, self._free
        for r, amount in enumerate(request):
            if amount:
                alloc[r, node] += amount
                free[r, node] -= amount
        self._tasks[node] += 1
        self._changed(node, (1, request))

    def release_unchecked(self, node: int, request: Sequence[float], devices: Assignment | None = None) -> None:
        """``release`` of a request that ``allocate_unchecked`` placed on ``node``, unchecked.

        Free capacity is recomputed as capacity minus allocation, as ``release`` does, so
        float drift cannot accumulate in it.
        """
        if devices:
            node_devices.give_back(self, node, np.asarray(request, dtype=np.float64), devices)
        elif self.state_classes is not None and self.state_classes.apply_known(node, -1, request):
            return
        alloc, free, cap = self._alloc, self._free, self._cap
        for r, amount in enumerate(request):
            if amount:
                left = alloc[r, node] - amount
                if left < 0.0:
                    left = 0.0
                alloc[r, node] = left
                free[r, node] = cap[r, node] - left
        self._tasks[node] -= 1
        self._changed(node, (-1, request))

    def copy(self) -> NodeMatrix:
        """A deep copy (a snapshot the caller may change freely)."""
        other = NodeMatrix(self.resources)
        other.add_nodes(list(self.ids), self.capacity.copy())
        other._alloc[:, : self._n] = self.allocated
        other._free[:, : self._n] = self.free
        other._tasks[: self._n] = self.tasks
        other._sched[: self._n] = self.schedulable
        other._labels = self._labels.copy(self._n)
        other._labels.resize(other._cap.shape[1], self._n)
        other.devices = {kind: devices.copy() for kind, devices in self.devices.items()}
        return other

    def __repr__(self) -> str:
        return f"NodeMatrix(resources={self.resources}, nodes={self._n})"
