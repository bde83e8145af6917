"""The one exception every command line mistake becomes."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """A user mistake: ``python -m orchlive`` prints it as one line and exits with status 2."""
