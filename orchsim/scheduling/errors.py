"""The core's errors, in a module of their own so that every core module can raise them."""

from __future__ import annotations

__all__ = ["CapacityError", "FilterError", "PolicyError", "UnknownResourceError"]


class CapacityError(ValueError):
    """An allocation or release that would leave a node below zero or above capacity."""


class PolicyError(RuntimeError):
    """A scorer broke its contract (wrong shape, NaN score)."""


class FilterError(PolicyError):
    """A filter broke its contract: its answer is not a bool array with one value per node."""


class UnknownResourceError(KeyError):
    """A request names a resource that the matrix does not track."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text.
        return str(self.args[0])
