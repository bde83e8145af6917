"""What the three command lines (``python -m orchsim``, ``sweep``, ``report``) share.

A user's mistake (a bad scenario or trace, an unknown policy, a plugin that will not load
or whose policy raises or breaks its contract, an ``--out`` that cannot be written) ends
the command with exit status 2 and one line on stderr naming the file and the field, flag
or line; anything else is a bug and keeps its traceback. Writing that rule once keeps the
three commands from drifting apart, as they had: one of them let an unwritable ``--out``
escape as a traceback.

Light on purpose: the error classes are imported when an error is reported, so ``--help``
and argument errors stay fast.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "NA",
    "console",
    "fail",
    "format_number",
    "parse_seeds",
    "print_table",
    "user_error",
    "user_error_message",
]

USER_ERROR_STATUS = 2
NA = "n/a"  # a statistic with no data, e.g. the wait when no task started


def user_error_message(err: BaseException, out: Path | None = None) -> str | None:
    """The one line (without ``error: ``) for a user's mistake, or ``None`` for anything else.

    Args:
        err: The exception the command raised.
        out: The output folder, named when the system does not say which file failed.
    """
    from orchsim.intervals import ReplicationError  # also SweepError
    from orchsim.plugins import PluginError, raised_in_plugin
    from orchsim.scenario import ScenarioError
    from orchsim.scheduling import PolicyError, UnknownPolicyError
    from orchsim.traces import TraceError

    if isinstance(err, ScenarioError | TraceError | ReplicationError | PolicyError):
        return str(err)  # PolicyError: a scorer broke its contract (wrong shape, a NaN score), named
    if (in_plugin := raised_in_plugin(err)) is not None:
        return in_plugin
    if isinstance(err, PluginError):
        return f"--plugin: {err}"
    if isinstance(err, UnknownPolicyError):
        hint = "" if "did you mean" in str(err) else " (a policy of your own? load its file with --plugin FILE.py)"
        return f"--policy: {err}{hint}"
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


def format_number(value: object) -> str:
    """A table cell: 3 significant digits for floats, whole numbers from 1,000 up, ``n/a`` for NaN.

    Integers (counts) print in full. A float of 1,000 or more keeps all its whole digits
    (``3265``, not ``3.27e+03``): rounding it further would show a number that was never
    measured, while the digits after three rarely matter on a terminal.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return NA
    if math.isinf(value) or abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.3g}"


def console() -> Any:
    """A rich console for tables: the terminal's width, ``COLUMNS`` when set, else room for any table.

    Output to a file or a pipe (CI logs, tests) has no width of its own; without
    ``COLUMNS`` it gets 250 columns, so that nothing is cut in a log.
    """
    from rich.console import Console

    wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS", "").isdigit()
    return Console(width=250 if wide else None, highlight=False)


def print_table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, title: str | None = None, transpose_if_wide: bool = False
) -> None:
    r"""Print a table of already formatted cells: ``policy`` left-aligned, every other column right.

    A cell is never cut: a table wider than the terminal is printed at its own width (the
    terminal wraps it) or, with ``transpose_if_wide``, turned on its side (one line per
    column, one column per row) when that fits, since a few policies by many metrics read
    better that way than wrapped.

    Args:
        headers: Column headers, shown in bold; a ``\n`` splits one over two lines.
        rows: One sequence of cell texts per row, in the order of ``headers``; printed as
            given (no rich markup is read from them).
        title: A line printed above the table (the units, for instance).
        transpose_if_wide: Turn a table that does not fit on its side (first column as headers).
    """
    out = console()
    rows = [list(row) for row in rows]
    table = _table(headers, rows)
    width = _natural_width(out, table)
    if width > out.width and transpose_if_wide and rows:
        turned = _table(
            ["metric", *(row[0] for row in rows)],
            [[header.replace("\n", " "), *(row[i] for row in rows)] for i, header in enumerate(headers) if i],
        )
        if _natural_width(out, turned) <= out.width:
            table, width = turned, _natural_width(out, turned)
    if title:
        out.print(title, markup=False, soft_wrap=True)
    out.print(table, markup=False, width=max(width, out.width))


_LEFT = ("policy", "metric")  # text columns; every other column holds numbers


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> Any:
    """A borderless table (a rule under the header, two spaces between columns), like kubectl's."""
    from rich import box
    from rich.table import Table

    table = Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True, padding=(0, 1), header_style="bold"
    )
    for header in headers:
        table.add_column(header, justify="left" if header in _LEFT else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def _natural_width(out: Any, table: Any) -> int:
    """The columns ``table`` needs with no cell cut."""
    return int(out.measure(table, options=out.options.update_width(100_000)).maximum)
