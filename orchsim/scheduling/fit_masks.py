"""Feasibility masks of a few request shapes, kept current as allocations change.

``select`` builds the built-in feasibility mask (schedulable, free capacity) anew for
every decision: one comparison over N nodes per requested resource. An owner whose
tasks come in a handful of shapes (a simulated workload: every task of an M/M/c run
asks for the same vector) can keep those masks instead. One allocation or release
changes one node, so the masks are brought up to date at that column in O(shapes x R)
Python operations, and a decision reads its mask and its count of rejected nodes
without a pass over the nodes. Measured on the M/M/1000 benchmark, building the mask
was about a third of a decision.

The masks answer exactly what ``filters.infeasible`` answers for the built-ins (a node
is rejected if it is not schedulable or lacks free capacity in a requested resource);
requests with a node selector, extra filters or tracked devices are not served from
here. The matrix keeps them current through its own methods (``allocate``, ``release``,
their unchecked forms, ``set_schedulable``, node joins and removals), so an owner that
turns them on must change the matrix only through those methods.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from orchsim.scheduling.matrix import NodeMatrix

__all__ = ["FitMasks"]

MAX_SHAPES = 8  # each kept shape costs every allocation and release a few operations


class FitMasks:
    """The rejected-node masks of up to ``MAX_SHAPES`` request vectors of one matrix.

    Each entry is ``[bad, n_bad, needs, flags]``: bool ``(N,)`` True where the node is
    rejected, how many are, the ``(row, amount)`` pairs the shape requests above zero, and
    ``bad`` as a list of Python bools (read per update without numpy scalars).
    """

    __slots__ = ("_entries", "_nodes")

    def __init__(self, nodes: NodeMatrix, requests: Iterable[np.ndarray]) -> None:
        self._nodes = nodes
        self._entries: dict[bytes, list] = {}
        for request in requests:
            vector = np.asarray(request, dtype=np.float64)
            if vector.shape != (len(nodes.resources),):
                raise ValueError(f"request vector has shape {vector.shape}, expected ({len(nodes.resources)},)")
            if len(self._entries) >= MAX_SHAPES:
                raise ValueError(f"at most {MAX_SHAPES} request shapes are kept")
            needs = [(r, amount) for r, amount in enumerate(vector.tolist()) if amount > 0]
            self._entries[vector.tobytes()] = [np.zeros(0, dtype=bool), 0, needs, []]
        self.rebuild()

    def rebuild(self) -> None:
        """Recompute every mask over all nodes (nodes joined or left)."""
        nodes = self._nodes
        free, sched = nodes.free, nodes.schedulable
        for entry in self._entries.values():
            bad = ~sched
            for r, amount in entry[2]:
                bad |= free[r] < amount
            entry[0], entry[1], entry[3] = bad, int(np.count_nonzero(bad)), bad.tolist()

    def get(self, request: np.ndarray) -> list | None:
        """``[bad, n_bad, needs, flags]`` for ``request``, or None if its shape is not kept.

        ``bad`` is the kept array itself, valid until the matrix next changes: read it,
        never write it.
        """
        if self._nodes.devices:
            return None  # device fit is not part of the masks
        return self._entries.get(request.tobytes())

    def update(self, node: int, move: object = None) -> None:
        """Node ``node`` changed (allocation, release, cordon): bring its column up to date (``move``: unused).

        Plain Python on the column's R floats (a generator or a numpy reduction per
        shape would cost more than the mask it saves on small clusters).
        """
        nodes = self._nodes
        column = nodes._free[:, node].tolist()
        up = nodes._sched[node]
        for entry in self._entries.values():
            rejected = not up
            if up:
                for r, amount in entry[2]:
                    if column[r] < amount:
                        rejected = True
                        break
            flags = entry[3]
            if rejected is not flags[node]:
                flags[node] = rejected
                entry[0][node] = rejected
                entry[1] += 1 if rejected else -1


def few_shapes(demand: np.ndarray, prefix: int = 4096) -> list[np.ndarray] | None:
    """The distinct rows of float64 ``(T, R)`` ``demand``, if they are few enough to keep masks of.

    Looks at the first ``prefix`` rows only (a sort of a million rows would cost more
    than it saves); a shape first seen later simply has no mask and is filtered as usual.
    None when there are more than ``MAX_SHAPES`` shapes (a continuous request size).
    """
    if not len(demand):
        return None
    shapes = np.unique(demand[:prefix], axis=0)
    return list(shapes) if len(shapes) <= MAX_SHAPES else None
