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
    from orchsim.scheduling.select import Decision

__all__ = ["MAX_CELLS", "MAX_ENTRIES", "DecisionMemo"]

MAX_CELLS = 256  # nodes x resources beyond which no decision is memoised
MAX_ENTRIES = 1 << 16  # entries kept before the memo starts over (bounds its memory)


class DecisionMemo:
    """Decisions of one pure policy (with fixed parameters), keyed by the matrix state and request.

    Owned by a ``PreparedPolicy`` (its parameters are part of what the entries mean, so
    one memo never serves two policies). ``hits`` and ``misses`` count lookups.
    """

    __slots__ = ("_entries", "hits", "misses")

    def __init__(self) -> None:
        self._entries: dict[bytes, Decision] = {}
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(nodes: NodeMatrix, req: np.ndarray) -> bytes | None:
        """The exact state a decision reads, as bytes; None if the cluster is too large to memoise."""
        n = nodes._n
        if n * len(nodes.resources) > MAX_CELLS or nodes.devices:
            return None
        return b"".join(
            (
                req.tobytes(),
                nodes._cap[:, :n].tobytes(),
                nodes._alloc[:, :n].tobytes(),
                nodes._free[:, :n].tobytes(),
                nodes._tasks[:n].tobytes(),
                nodes._sched[:n].tobytes(),
            )
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
