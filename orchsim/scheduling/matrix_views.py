"""The node matrix's arrays as its users see them: read-only views of its first N columns.

A policy or a filter is a pure function of the matrix: one that wrote into what it was given
(``free = nodes.free[cpu]; free -= request[cpu]``) corrupted the simulator's state without a
word (a stranded share of -52%) while the live master, which rebuilds its matrix every pass,
placed differently. Such a write now raises numpy's ``ValueError: assignment destination is
read-only``; the matrix itself writes its buffers (``NodeMatrix``), which the views follow.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MatrixViews"]


class MatrixViews:
    """The array properties of ``NodeMatrix``, handed out as views made once per shape (``_views``)."""

    _n: int
    _cap: np.ndarray
    _alloc: np.ndarray
    _free: np.ndarray
    _inv: np.ndarray
    _safe: np.ndarray
    _tasks: np.ndarray
    _sched: np.ndarray

    def _views(self) -> None:
        """Make the read-only views of the first N columns (after N or a buffer changed)."""
        n = self._n
        views = [buf[..., :n] for buf in (self._cap, self._alloc, self._free, self._inv, self._safe)]
        views += [self._tasks[:n], self._sched[:n]]
        for view in views:
            view.flags.writeable = False
        self._v_cap, self._v_alloc, self._v_free, self._v_inv, self._v_safe, self._v_tasks, self._v_sched = views

    @property
    def n_nodes(self) -> int:
        """Number of nodes N."""
        return self._n

    def __len__(self) -> int:
        return self._n

    @property
    def capacity(self) -> np.ndarray:
        return self._v_cap

    @property
    def allocated(self) -> np.ndarray:
        return self._v_alloc

    @property
    def free(self) -> np.ndarray:
        return self._v_free

    @property
    def inv_capacity(self) -> np.ndarray:
        return self._v_inv

    @property
    def safe_capacity(self) -> np.ndarray:
        """Float64 ``(R, N)``: capacity, with ``inf`` where it is 0.

        Dividing by it gives utilisation exactly as ``used / capacity`` (the Go
        orchestrator's arithmetic, rounding included) and 0 on zero-capacity nodes.
        """
        return self._v_safe

    @property
    def tasks(self) -> np.ndarray:
        return self._v_tasks

    @property
    def schedulable(self) -> np.ndarray:
        return self._v_sched
