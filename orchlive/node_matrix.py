"""The master's ``NodeMatrix``: the nodes as the cache mirrors them, with their devices, for the shared core.

Nodes enter sorted by id, so a live cluster and a simulation of the same capacities
number their nodes alike (placement parity). Rows are every resource name in use
(``ClusterCache.resource_names``). A device kind some node declares (``gpu``, see
``orchlive.devices``) is tracked as the simulator tracks it (``NodeMatrix.track_devices``):
every node's capacity of that kind is its devices x 1000, and each device's free share is
rebuilt from the node's ledger (its grants) on every pass, through ``DeviceSet.allocate``,
so the core's per-device caches are exactly what the same allocations give in the simulator.

The matrix itself is reused while the nodes, their capacities and the resource names are
unchanged; the allocations are refreshed from the ledgers on every pass.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from orchlive import devices as dev
from orchlive.cache import ClusterCache
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

    def reset(self) -> None:
        """Forget the matrix: the next ``build`` starts afresh (after a lost compare-and-swap)."""
        self.matrix = None

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
            self.matrix, self._shape = matrix, shape
        matrix = self.matrix
        self._refresh(matrix, cache, names)
        for kind in kinds:
            matrix.devices[kind] = self._devices(matrix, cache, kind, [counts[nid].get(kind, 0) for nid in ids])
        return matrix

    @staticmethod
    def _refresh(matrix: NodeMatrix, cache: ClusterCache, names: tuple[str, ...]) -> None:
        """The scalar allocations, task counts and schedulability, from the ledgers."""
        alloc, free = matrix.allocated, matrix.free
        for i, nid in enumerate(matrix.ids):
            ledger = cache.ledger(nid)
            alloc[:, i] = [ledger.allocated.get(name, 0) for name in names]
            free[:, i] = matrix.capacity[:, i] - alloc[:, i]
            matrix.tasks[i] = len(ledger.tasks)
            matrix.set_schedulable(i, cache.schedulable(nid))

    @staticmethod
    def _devices(matrix: NodeMatrix, cache: ClusterCache, kind: str, counts: list[int]) -> DeviceSet:
        """The ``kind`` devices of every node, each grant of its ledger taken as the simulator takes it.

        A ledger whose grants its node's devices cannot hold (a worker that came back with
        fewer devices) leaves that node out of this pass, with a log line.
        """
        devices = DeviceSet.from_counts(counts, kind, dev.DEVICE_UNIT)
        for i, nid in enumerate(matrix.ids):
            held = cache.ledger(nid).devices.get(kind, {})
            try:
                for grant in held.values():
                    devices.allocate(i, DeviceNeed(grant.share, len(grant.ids)), grant.ids)
            except CapacityError as err:
                log.error("node %s: its ledger's %s grants exceed its devices (%s); skipping it", nid, kind, err)
                matrix.set_schedulable(i, False)
        return devices
