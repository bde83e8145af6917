"""Node labels as integer codes: a node selector is one vectorised comparison per key.

Each label key has a vocabulary (value -> code) and one int32 code per node (-1: the
node does not carry the key), in a buffer that grows and shrinks with the matrix's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["NodeLabels"]


class NodeLabels:
    """The labels of every node of a ``NodeMatrix`` (which owns the node count)."""

    def __init__(self, size: int) -> None:
        self._size = size  # buffer length: the matrix's column capacity
        self._vocab: dict[str, dict[str, int]] = {}
        self._codes: dict[str, np.ndarray] = {}

    def resize(self, size: int, n: int) -> None:
        """Follow the matrix's buffers to ``size`` columns, keeping the first ``n`` nodes."""
        for key, codes in self._codes.items():
            grown = np.full(size, -1, dtype=np.int32)
            grown[:n] = codes[:n]
            self._codes[key] = grown
        self._size = size

    def clear(self, start: int, end: int) -> None:
        """Nodes ``start:end`` carry no labels (new columns)."""
        for codes in self._codes.values():
            codes[start:end] = -1

    def set(self, node: int, labels: Mapping[str, str]) -> None:
        """Replace the labels of ``node``."""
        for codes in self._codes.values():
            codes[node] = -1
        for key, value in labels.items():
            key, value = str(key), str(value)
            if key not in self._codes:
                self._vocab[key] = {}
                self._codes[key] = np.full(self._size, -1, dtype=np.int32)
            vocab = self._vocab[key]
            self._codes[key][node] = vocab.setdefault(value, len(vocab))

    def of(self, node: int) -> dict[str, str]:
        """The labels of ``node`` as a plain dict."""
        out: dict[str, str] = {}
        for key, codes in self._codes.items():
            code = int(codes[node])
            if code >= 0:
                out[key] = next(value for value, c in self._vocab[key].items() if c == code)
        return out

    def mask(self, selector: Mapping[str, str], n: int) -> np.ndarray:
        """Bool ``(n,)``: True where the node carries every ``key=value`` of ``selector``.

        A value ``"a|b"`` accepts either (Kubernetes' ``In`` operator of node affinity;
        openb's ``gpu_spec`` lists the GPU models a pod may use this way).
        """
        mask = np.ones(n, dtype=bool)
        for key, value in selector.items():
            vocab = self._vocab.get(key, {})
            codes = [vocab[v] for v in str(value).split("|") if v in vocab]
            if not codes:
                return np.zeros(n, dtype=bool)
            column = self._codes[key][:n]
            mask &= column == codes[0] if len(codes) == 1 else np.isin(column, codes)
        return mask

    def keep(self, kept: Sequence[int] | np.ndarray) -> None:
        """Nodes were removed: the ``kept`` ones move to the front, in order."""
        m = len(kept)
        for codes in self._codes.values():
            codes[:m] = codes[kept]

    def take(self, columns: slice | np.ndarray) -> NodeLabels:
        """The labels of some nodes (a slice: views; indices: copies), for a ``NodeSubset``.

        The vocabularies are shared, not copied: a subset is read, never labelled.
        """
        other = NodeLabels(0)
        other._vocab = self._vocab
        other._codes = {key: codes[columns] for key, codes in self._codes.items()}
        other._size = len(next(iter(other._codes.values()))) if other._codes else 0
        return other

    def copy(self, n: int) -> NodeLabels:
        other = NodeLabels(self._size)
        other._vocab = {k: dict(v) for k, v in self._vocab.items()}
        other._codes = {k: c.copy() for k, c in self._codes.items()}
        other.clear(n, self._size)
        return other
