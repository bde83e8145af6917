"""The core's errors, in a module of their own so that every core module can raise them."""

from __future__ import annotations

__all__ = ["CapacityError", "UnknownResourceError"]


class CapacityError(ValueError):
    """An allocation or release that would leave a node below zero or above capacity."""


class UnknownResourceError(KeyError):
    """A request names a resource that the matrix does not track."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text.
        return str(self.args[0])
