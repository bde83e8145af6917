"""A decision memo for pure policies on small clusters: the same state and request, the same decision.

On a small cluster the state repeats constantly: at M/M/8 with whole-node tasks there
are 256 patterns of busy nodes, and every decision after the first few hundred meets one
it has seen. A decision of a *pure* policy (``PolicySpec.pure``: its scores are a
function of the matrix's numbers and the request only, no random draw, no cursor) is
then a function of those numbers too, and can be looked up instead of recomputed: the
filter, the scorer and the argmax (a dozen numpy calls on 8-element rows) become one
key of a few hundred bytes and one dict lookup.

The key is every number a decision reads: capacity, allocation, free capacity, task
counts and schedulability of every node, and the request. It is exact bytes, so a hit
returns exactly the decision the pipeline would compute (node, score, counts). What the
key leaves out is kept out of the memo: node selectors, extra filters, task info, device
tracking, sampling (its scan position is state) and ``explain``; ``decide`` asks the memo
only when none of them is in play. Past ``MAX_CELLS`` numbers a key costs more than it
saves (and the state no longer repeats), so larger clusters are never memoised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from orchsim.scheduling.matrix import NodeMatrix
    from orchsim.scheduling.select import Decision, PreparedPolicy

__all__ = ["MAX_CELLS", "MAX_ENTRIES", "DecisionMemo", "memoised"]

MAX_CELLS = 256  # nodes x resources beyond which no decision is memoised
MAX_ENTRIES = 1 << 16  # entries kept before the memo starts over (bounds its memory)


class DecisionMemo:
    """Decisions of one pure policy (with fixed parameters), keyed by the matrix state and request.

    Owned by a ``PreparedPolicy`` (its parameters are part of what the entries mean, so
    one memo never serves two policies). ``hits`` and ``misses`` count lookups.
    """

    __slots__ = ("_entries", "_large", "_source", "_views", "hits", "misses")

    def __init__(self) -> None:
        self._entries: dict[bytes, Decision] = {}
        self.hits = 0
        self.misses = 0
        # The matrix's buffers and node count the views below were cut from.
        self._source: tuple[int, ...] = ()
        self._views: tuple[np.ndarray, ...] = ()
        self._large = False

    def key(self, nodes: NodeMatrix, req: np.ndarray) -> bytes | None:
        """The exact state a decision reads, as bytes; None if the cluster is too large to memoise.

        The views of the live columns are cut once and reused while the matrix keeps its
        buffers and node count (cutting them is most of a key's cost on a small cluster).
        """
        n = nodes._n
        # Ids, not the arrays (== on arrays compares elements); the views keep the buffers alive, so no id is reused.
        source = (id(nodes._cap), id(nodes._alloc), id(nodes._free), id(nodes._tasks), id(nodes._sched), n)
        if source != self._source:
            self._source = source
            self._large = n * len(nodes.resources) > MAX_CELLS  # remembered: asked again on every decision
            self._views = (
                nodes._cap[:, :n],
                nodes._alloc[:, :n],
                nodes._free[:, :n],
                nodes._tasks[:n],
                nodes._sched[:n],
            )
        if self._large or nodes.devices:
            return None
        cap, alloc, free, tasks, sched = self._views
        return b"".join(
            (req.tobytes(), cap.tobytes(), alloc.tobytes(), free.tobytes(), tasks.tobytes(), sched.tobytes())
        )

    def get(self, key: bytes) -> Decision | None:
        """The decision stored under ``key`` (shared: read it, never change it), or None."""
        decision = self._entries.get(key)
        if decision is None:
            self.misses += 1
        else:
            self.hits += 1
        return decision

    def put(self, key: bytes, decision: Decision) -> None:
        """Remember ``decision`` for ``key``; the memo starts over once it holds ``MAX_ENTRIES``."""
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = decision


def memoised(prepared: PreparedPolicy, nodes: NodeMatrix) -> bool:
    """Whether ``prepared``'s decisions on ``nodes`` as it is now go through its memo.

    An owner that keeps other per-decision aids (``fit_masks``) can skip them then: a
    memo hit reads none of them, and a miss decides as it would without them.
    """
    return prepared.memo is not None and DecisionMemo().key(nodes, np.zeros(len(nodes.resources))) is not None
