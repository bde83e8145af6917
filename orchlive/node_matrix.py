"""The master's ``NodeMatrix``: the nodes as the cache mirrors them, with their devices, for the shared core.

Nodes enter sorted by id, so a live cluster and a simulation of the same capacities
number their nodes alike (placement parity). Rows are every resource name in use
(``ClusterCache.resource_names``). A device kind some node declares (``gpu``, see
``orchlive.devices``) is tracked as the simulator tracks it (``NodeMatrix.track_devices``):
every node's capacity of that kind is its devices x 1000, and each device's free share is
rebuilt from the node's ledger (its grants) on every pass, through ``DeviceSet.allocate``,
so the core's per-device caches are exactly what the same allocations give in the simulator.

The matrix itself is reused while the nodes, their capacities and the resource names are
unchanged; the scalar allocations are refreshed from the ledgers on every pass, the devices
only where a ledger's grants differ from what the matrix holds (``held``): the pass's own
placements are recorded there (``allocate``), so a committed pass costs nothing to replay,
and a lost compare-and-swap resets everything. Replaying every grant on every pass would
cost ~0.2 s at 1,000 nodes x 8 GPUs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from orchlive import devices as dev
from orchlive.cache import ClusterCache
from orchlive.devices import Grant
from orchlive.models import Task
from orchsim.scheduling import CapacityError, NodeMatrix
from orchsim.scheduling.devices import DeviceNeed, DeviceSet

__all__ = ["MatrixBuilder"]

log = logging.getLogger(__name__)


class MatrixBuilder:
    """Builds (and reuses) the master's matrix from its cache."""

    def __init__(self) -> None:
        self.matrix: NodeMatrix | None = None
        self._shape: tuple[Any, ...] = ()
        self.held: dict[str, dict[str, dict[str, Grant]]] = {}  # kind -> node -> task -> grant on the matrix

    def reset(self) -> None:
        """Forget the matrix: the next ``build`` starts afresh (after a lost compare-and-swap)."""
        self.matrix = None

    def allocate(self, node: int, task: Task, request: np.ndarray, devices: Mapping[str, tuple[int, ...]]) -> None:
        """A placement of the pass on the matrix, its devices recorded as the grants the ledger will hold."""
        assert self.matrix is not None
        self.matrix.allocate(node, request, devices)
        nid = self.matrix.ids[node]
        for kind, ids in devices.items():
            grant = dev.grant_for(kind, task.resources.get(kind, 0), ids)
            self.held.setdefault(kind, {}).setdefault(nid, {})[task.id] = grant

    def devices_of(self, task: Task) -> dict[str, tuple[int, ...]]:
        """The task's devices of the kinds the matrix tracks (as the core's ``Assignment``)."""
        assert self.matrix is not None
        return {kind: tuple(ids) for kind, ids in task.devices.items() if kind in self.matrix.devices}

    def release(self, node: int, task: Task, request: np.ndarray) -> None:
        """A task leaving ``node`` within the pass (a preemption's victim): its request and devices come back."""
        assert self.matrix is not None
        nid = self.matrix.ids[node]
        devices = self.devices_of(task)
        self.matrix.release(node, request, devices)
        for kind in devices:
            self.held.get(kind, {}).get(nid, {}).pop(task.id, None)

    def build(self, cache: ClusterCache, pending: list[tuple[Task, int]]) -> NodeMatrix:
        """The matrix of the cache's nodes, their allocations and devices; ``pending`` names need rows."""
        names = cache.resource_names(pending)
        ids = sorted(cache.nodes)
        counts = {nid: dev.node_counts(cache.nodes[nid].devices, cache.nodes[nid].capacity) for nid in ids}
        kinds = tuple(sorted({kind for c in counts.values() for kind in c} & set(names)))
        caps = tuple(
            tuple(
                counts[nid].get(name, 0) * dev.DEVICE_UNIT if name in kinds else cache.nodes[nid].capacity.get(name, 0)
                for name in names
            )
            for nid in ids
        )
        shape = (names, tuple(ids), caps, kinds)
        if self.matrix is None or shape != self._shape:
            matrix = NodeMatrix(names)
            if ids:
                labels = [cache.nodes[nid].labels for nid in ids]
                matrix.add_nodes(ids, np.array(caps, dtype=np.float64).T, labels=labels)
            for kind in kinds:
                matrix.devices[kind] = DeviceSet.from_counts([counts[nid].get(kind, 0) for nid in ids], kind)
            self.matrix, self._shape, self.held = matrix, shape, {kind: {} for kind in kinds}
        matrix = self.matrix
        self._refresh(matrix, cache, names)
        for kind in kinds:
            self._sync_devices(matrix, cache, kind)
        return matrix

    @staticmethod
    def _refresh(matrix: NodeMatrix, cache: ClusterCache, names: tuple[str, ...]) -> None:
        """The scalar allocations, task counts and schedulability, from the ledgers."""
        for i, nid in enumerate(matrix.ids):
            ledger = cache.ledger(nid)
            matrix.set_usage(i, [ledger.allocated.get(name, 0) for name in names], ledger.count)
            matrix.set_schedulable(i, cache.schedulable(nid))

    def _sync_devices(self, matrix: NodeMatrix, cache: ClusterCache, kind: str) -> None:
        """Bring each node's ``kind`` devices to its ledger's grants: release what left, take what came.

        A ledger whose grants its node's devices cannot hold (a worker that came back with
        fewer devices) leaves that node out of this pass, with a log line, and the next
        build starts afresh.
        """
        devices, held = matrix.devices[kind], self.held[kind]
        for i, nid in enumerate(matrix.ids):
            new, old = cache.ledger(nid).devices.get(kind, {}), held.get(nid, {})
            if new == old:
                continue
            try:
                for task_id, grant in old.items():
                    if new.get(task_id) != grant:
                        devices.release(i, DeviceNeed(grant.share, len(grant.ids)), grant.ids)
                for task_id, grant in new.items():
                    if old.get(task_id) != grant:
                        devices.allocate(i, DeviceNeed(grant.share, len(grant.ids)), grant.ids)
            except CapacityError as err:
                log.error("node %s: its ledger's %s grants exceed its devices (%s); skipping it", nid, kind, err)
                matrix.set_schedulable(i, False)
                self.matrix = None  # held no longer says what the matrix holds
            held[nid] = dict(new)
