"""Some of a matrix's nodes as a matrix of their own, to decide among them (node sampling).

Kube-scheduler and Nomad do not score every node of a large cluster: they look for a
number of feasible nodes from some starting point and score only those. Scorers and
filters take a ``NodeMatrix``, so the nodes looked at are handed to them as one: a
``NodeSubset`` holds the parent's columns (a contiguous window as numpy views, costing
nothing; a scattered set as copies of only those columns) and is read, never changed.
"""

from __future__ import annotations

import numpy as np

from orchsim.scheduling.labels import NodeLabels
from orchsim.scheduling.matrix import NodeMatrix

__all__ = ["NodeSubset"]

_NO_INDEX = np.arange(0, dtype=np.int64)


class NodeSubset(NodeMatrix):
    """Columns ``columns`` of ``parent``, for reading (filters, scorers, device choice).

    Node ids and the id index are built only if asked for (a window scanned for feasible
    nodes never needs them). ``resource_scale`` is the parent's, so that a policy that
    normalises by the cluster's largest node (best fit) scores a node the same in a
    subset as in the whole cluster.
    """

    def __init__(self, parent: NodeMatrix, columns: slice | np.ndarray) -> None:
        # Not NodeMatrix.__init__: no buffers of its own, only the parent's columns.
        self._parent, self._columns = parent, columns
        if isinstance(columns, slice):
            start, stop, _ = columns.indices(parent.n_nodes)
            n = max(0, stop - start)
        else:
            n = len(columns)
        self._n = n
        self.resources, self._row = parent.resources, parent._row
        self._cap, self._alloc = parent._cap[:, columns], parent._alloc[:, columns]
        self._free, self._inv, self._safe = parent._free[:, columns], parent._inv[:, columns], parent._safe[:, columns]
        self._tasks, self._sched = parent._tasks[columns], parent._sched[columns]
        self.devices = (
            {kind: devices.take(columns, n) for kind, devices in parent.devices.items()} if parent.devices else {}
        )
        self._arange = _NO_INDEX  # replaced, never written, when a policy asks for index_range
        self._scale = parent.resource_scale
        self._ids: list[str] | None = None
        self._id_index: dict[str, int] | None = None
        self._subset_labels: NodeLabels | None = None

    @property  # type: ignore[override]
    def _labels(self) -> NodeLabels:
        """The parent's labels of these columns, taken on first use (a node selector; most decisions have none)."""
        if self._subset_labels is None:
            self._subset_labels = self._parent._labels.take(self._columns)
        return self._subset_labels

    @property  # type: ignore[override]
    def ids(self) -> list[str]:
        """Node ids of the subset's columns, in order (built on first use)."""
        if self._ids is None:
            parent_ids, columns = self._parent.ids, self._columns
            self._ids = parent_ids[columns] if isinstance(columns, slice) else [parent_ids[i] for i in columns]
        return self._ids

    @property  # type: ignore[override]
    def _index(self) -> dict[str, int]:
        if self._id_index is None:
            self._id_index = {nid: i for i, nid in enumerate(self.ids)}
        return self._id_index

    def id_of(self, node: int) -> str:
        return self._parent.ids[self.parent_index(node)]

    def parent_index(self, node: int) -> int:
        """The parent's column of this subset's column ``node``."""
        columns = self._columns
        if isinstance(columns, slice):
            return columns.indices(self._parent.n_nodes)[0] + node
        return int(columns[node])
