"""What the three command lines (``python -m orchsim``, ``sweep``, ``report``) share.

A user's mistake (a bad scenario or trace, an unknown policy, a plugin that will not load,
an ``--out`` that cannot be written) ends the command with exit status 2 and one line on
stderr naming the file and the field, flag or line; anything else is a bug and keeps its
traceback. Writing that rule once keeps the three commands from drifting apart, as they
had: one of them let an unwritable ``--out`` escape as a traceback.

Light on purpose: the error classes are imported when an error is reported, so ``--help``
and argument errors stay fast.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["console", "fail", "parse_seeds", "print_table", "user_error", "user_error_message"]

USER_ERROR_STATUS = 2


def user_error_message(err: BaseException, out: Path | None = None) -> str | None:
    """The one line (without ``error: ``) for a user's mistake, or ``None`` for anything else.

    Args:
        err: The exception the command raised.
        out: The output folder, named when the system does not say which file failed.
    """
    from orchsim.intervals import ReplicationError  # also SweepError
    from orchsim.plugins import PluginError
    from orchsim.scenario import ScenarioError
    from orchsim.scheduling import UnknownPolicyError
    from orchsim.traces import TraceError

    if isinstance(err, ScenarioError | TraceError | ReplicationError):
        return str(err)
    if isinstance(err, PluginError):
        return f"--plugin: {err}"
    if isinstance(err, UnknownPolicyError):
        return f"--policy: {err}"
    if isinstance(err, OSError):  # --out not writable
        return f"cannot write {err.filename or out}: {err.strerror or err}"
    return None


def user_error(err: Exception, *, out: Path | None = None) -> int:
    """Print a user's mistake as one ``error: ...`` line and return 2; re-raise anything else.

    Call it from ``except Exception as err:`` around a command's body, so a bug keeps its
    traceback while a mistake never shows one.

    Args:
        err: The exception the command raised.
        out: The ``--out`` folder, for an unwritable-folder message without a file name.

    Returns:
        The exit status 2.
    """
    message = user_error_message(err, out)
    if message is None:
        raise err
    return fail(message)


def fail(message: str) -> int:
    """Print ``error: message`` for a mistake found before any work; returns the status 2."""
    print(f"error: {message}", file=sys.stderr)
    return USER_ERROR_STATUS


def parse_seeds(text: str) -> int | list[int]:
    """``5`` is a count of replications; ``1,2,3`` (or ``7,`` for one) lists the seeds.

    Raises:
        SweepError: neither a count nor a list of integers.
    """
    from orchsim.intervals import ReplicationError as SweepError

    tokens = [t.strip() for t in text.split(",")]
    try:
        if len(tokens) == 1:
            return int(tokens[0])
        return [int(t) for t in tokens if t]
    except ValueError:
        raise SweepError(f"--seeds: {text!r} is neither a count (5) nor a list of integer seeds (1,2,3)") from None


def console() -> Any:
    """A rich console for tables; never truncates when the output is a file or a pipe (CI logs, tests)."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 250, highlight=False)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Print a table of already formatted cells: ``policy`` left-aligned, every other column right.

    Args:
        headers: Column headers, shown in bold.
        rows: One sequence of cell texts per row, in the order of ``headers``; printed as
            given (no rich markup is read from them).
    """
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    for header in headers:
        table.add_column(header, justify="left" if header == "policy" else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    console().print(table, markup=False)
