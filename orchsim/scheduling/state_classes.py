"""Nodes in the same state decide alike: one score per state, not per node.

On a cluster of identical nodes running tasks of a few shapes, most nodes are in one
of a few states: at M/M/1000 with whole-node tasks, every node is either empty or
full. A ``per_node`` policy (``PolicySpec.per_node``: a node's score is a function of
its own column and the request only) scores every node of a state the same, and the
built-in filters pass or reject them all alike. So a decision needs only the states
that some node is in, each with its number of nodes and its lowest node index: the
best state (ties to the lowest index, as ``select``'s argmax) gives the node, and the
feasible count is the sum of the feasible states' counts. That is exactly the plain
decision, without a pass over the nodes.

A state (a *class* here) is the exact bytes of a node's capacity, allocation and free
capacity, its task count and schedulability. The matrix keeps the classes current
through its own methods (allocation, release, cordons, joins and removals), one dict
lookup per change. Each class's scores and fit are constant for a request, so they are
computed once per request shape and policy (``ClassTable``) on one node of each class.
Past ``MAX_CLASSES`` states (continuous request sizes, varied nodes) classes stop
paying, and the structure removes itself from the matrix: decisions go back to the
plain pipeline (or to kept feasibility masks, if the owner named request shapes).
"""

from __future__ import annotations

from collections.abc import Sequence
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

import numpy as np

from orchsim.scheduling.fit_masks import few_shapes
from orchsim.scheduling.memo import memoised

if TYPE_CHECKING:
    from orchsim.scheduling.matrix import NodeMatrix

__all__ = ["MAX_CLASSES", "ClassTable", "StateClasses", "keep_decision_aids", "keep_state_classes"]

MAX_CLASSES = 32  # states ever seen beyond which the classes turn themselves off
MAX_TABLES = 64  # (policy, request) tables kept before they start over
MAX_MOVES = 4096  # (class, allocation or release, request) -> class entries kept before they start over


class ClassTable:
    """One policy's fit and score of each class for one request vector.

    ``fits[c]`` and ``scores[c]`` are None for a class not evaluated yet (new since);
    ``complete``: none is; ``nan``: some score is NaN. ``prepared`` is held so that the
    table's key (its id) is never reused.
    """

    __slots__ = ("complete", "fits", "nan", "prepared", "scores")

    def __init__(self, prepared: Any) -> None:
        self.prepared = prepared
        self.fits: list[bool | None] = []
        self.scores: list[float | None] = []
        self.complete = self.nan = False


class StateClasses:
    """The nodes of one matrix grouped by exact state (see the module docstring).

    Attributes:
        counts: Nodes in each class (a class may be empty: its id stays).
        off: The classes turned themselves off (too many states); the matrix no longer has them.
    """

    __slots__ = (
        "_class_of",
        "_columns",
        "_group_of",
        "_heaps",
        "_ids",
        "_moves",
        "_nodes",
        "_shapes",
        "_tables",
        "counts",
        "off",
    )

    def __init__(self, nodes: NodeMatrix, shapes: Sequence[np.ndarray] | None = None) -> None:
        self._nodes = nodes
        self._shapes = shapes  # the owner's request shapes, for feasibility masks once classes stop
        self.off = False
        self.rebuild()

    def rebuild(self) -> None:
        """Classify every node again (nodes joined or left: class ids start over)."""
        nodes = self._nodes
        groups: dict[bytes, int] = {}
        cap = nodes._cap
        self._group_of = [groups.setdefault(cap[:, i].tobytes(), len(groups)) for i in range(nodes.n_nodes)]
        self._ids: dict[tuple, int] = {}
        self._class_of: list[int] = [-1] * nodes.n_nodes
        self.counts: list[int] = []
        self._heaps: list[list[int]] = []
        self._columns: list[tuple[np.ndarray, np.ndarray, int]] = []  # each class's allocation, free, task count
        self._tables: dict[tuple[int, bytes], ClassTable] = {}
        self._moves: dict[tuple[int, int, tuple[float, ...]], int] = {}  # (class, +1/-1, request) -> class
        for node in range(nodes.n_nodes):
            if not self.update(node):
                return

    def update(self, node: int, move: tuple[int, Sequence[float]] | None = None) -> bool:
        """Node ``node`` changed: move it to its class. False if the classes turned themselves off.

        ``move``: the change was ``(+1, request)``, an unchecked allocation, or ``(-1,
        request)``, an unchecked release. Its result is a function of the node's old
        state (its class: exact bits) and the request, so the new class is looked up by
        ``(old class, move)`` once seen, without reading the node's column.
        """
        old = self._class_of[node]
        step = None
        if move is not None and old >= 0:
            step = (old, move[0], tuple(move[1]))
            cls = self._moves.get(step)
            if cls is not None:
                return self._move(node, old, cls)
        nodes = self._nodes
        key = (
            self._group_of[node],
            nodes._alloc[:, node].tobytes(),
            nodes._free[:, node].tobytes(),
            int(nodes._tasks[node]),
            bool(nodes._sched[node]),
        )
        cls = self._ids.get(key)
        if cls is None:
            if len(self.counts) >= MAX_CLASSES:
                self._stop()
                return False
            cls = self._ids[key] = len(self.counts)
            self.counts.append(0)
            self._heaps.append([])
            self._columns.append((nodes._alloc[:, node].copy(), nodes._free[:, node].copy(), int(nodes._tasks[node])))
        if step is not None:
            if len(self._moves) >= MAX_MOVES:
                self._moves.clear()
            self._moves[step] = cls
        return self._move(node, old, cls)

    def apply_known(self, node: int, sign: int, request: Sequence[float]) -> bool:
        """Apply an unchecked allocation (+1) or release (-1) of ``request`` if seen before from this class.

        The move's result is a function of the node's class (exact bits) and the request,
        so once one node made it, the new class's columns are its exact result: they are
        written into the matrix (two column writes instead of two scalar read-modify-writes
        per resource) and True is returned. False: never made (or forgotten), the matrix
        does the arithmetic and calls ``update``.
        """
        old = self._class_of[node]
        cls = self._moves.get((old, sign, tuple(request))) if old >= 0 else None
        if cls is None:
            return False
        nodes = self._nodes
        alloc, free, tasks = self._columns[cls]
        nodes._alloc[:, node] = alloc
        nodes._free[:, node] = free
        nodes._tasks[node] = tasks
        if nodes.fit_masks is not None:
            nodes.fit_masks.update(node)
        self._move(node, old, cls)
        return True

    def _move(self, node: int, old: int, cls: int) -> bool:
        """Node ``node`` leaves class ``old`` (-1: none yet) for ``cls``."""
        if cls == old:
            return True
        if old >= 0:
            self.counts[old] -= 1
        self.counts[cls] += 1
        self._class_of[node] = cls
        heap = self._heaps[cls]
        heappush(heap, node)
        if len(heap) > 2 * self.counts[cls] + 16:
            self._heaps[cls] = sorted({i for i in heap if self._class_of[i] == cls})  # sorted is a heap
        return True

    def _stop(self) -> None:
        """Too many states: off for good, with feasibility masks instead if the owner named shapes."""
        nodes = self._nodes
        self.off = True
        nodes.state_classes = None
        if self._shapes:
            nodes.keep_fit_masks(self._shapes)

    def live(self) -> list[tuple[int, int, int]]:
        """``(class, nodes in it, its lowest node index)`` for every class some node is in."""
        out = []
        class_of = self._class_of
        for cls, count in enumerate(self.counts):
            if count:
                heap = self._heaps[cls]
                while class_of[heap[0]] != cls:
                    heappop(heap)
                out.append((cls, count, heap[0]))
        return out

    def table(self, prepared: Any, request: np.ndarray) -> ClassTable:
        """The (possibly partly filled) table of ``prepared``'s policy for ``request``."""
        key = (id(prepared), request.tobytes())
        table = self._tables.get(key)
        if table is None or table.prepared is not prepared:
            if len(self._tables) >= MAX_TABLES:
                self._tables.clear()
            table = self._tables[key] = ClassTable(prepared)
        return table


def keep_state_classes(
    nodes: NodeMatrix, prepared: Any, shapes: Sequence[np.ndarray] | None = None
) -> StateClasses | None:
    """Turn on state classes for ``nodes`` if ``prepared``'s decisions can use them; else masks.

    For an owner that decides many times on one matrix (the simulator): classes need a
    ``per_node`` policy, no extra filters and no tracked devices. Otherwise, or once
    the classes turn themselves off, the feasibility masks of ``shapes`` (the owner's
    few request shapes, if any) are kept instead. From now on change the matrix only
    through its methods.
    """
    if prepared.spec.per_node and not prepared.filters and not nodes.devices and prepared.sampling is None:
        classes = StateClasses(nodes, shapes)
        if not classes.off:  # not turned off while classifying
            nodes.state_classes = classes
            return classes
        return None
    if shapes and not nodes.devices:
        nodes.keep_fit_masks(shapes)
    return None


def keep_decision_aids(nodes: NodeMatrix, prepared: Any, demand: np.ndarray) -> None:
    """What an owner deciding many times on ``nodes`` with ``prepared`` should keep (the simulator).

    Nothing when the decision memo answers (small clusters: a memo hit reads no other
    aid, and keeping one costs every allocation and release); else state classes for a
    ``per_node`` policy, or the feasibility masks of the workload's request shapes when
    they are few. ``demand``: float64 ``(T, R)``, every task's request.
    """
    if not memoised(prepared, nodes):
        prepared.memo = None  # a key per decision for nothing: decisions are the same without it
        keep_state_classes(nodes, prepared, few_shapes(demand))
