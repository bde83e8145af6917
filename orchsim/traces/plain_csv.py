"""The plain CSV task list: the format a user writes by hand or exports from their own system."""

from __future__ import annotations

import os

from orchsim.traces.table import number_column, read_table, reject, text_column
from orchsim.traces.tasks import TraceTasks, sorted_tasks

__all__ = ["CSV_NAME", "CSV_REQUIRED", "load_csv_trace"]

#: Columns every CSV task trace must have (any order).
CSV_REQUIRED = ("submit_time", "duration", "cpu", "memory")
#: Optional text column of a CSV task trace; every other column is a resource.
CSV_NAME = "name"


def load_csv_trace(path: str | os.PathLike[str], *, rebase: bool = False) -> TraceTasks:
    """Load a CSV task list.

    Columns (any order, header required): ``submit_time`` (s, >= 0), ``duration``
    (s, > 0, ``inf`` allowed: the task never ends), ``cpu`` (millicores), ``memory``
    (MiB), an optional ``name``, and any further columns, each one more resource
    (e.g. ``gpu`` in milli-GPU), all numbers >= 0. Every column but ``name`` must be
    numeric: a stray text column is reported rather than silently dropped, since it is
    more often a misspelt resource than a comment. Blank lines and lines starting with
    ``#`` are ignored.

    Args:
        path: The CSV file.
        rebase: Shift submit times so the first submission is at 0 (for traces that
            carry wall-clock timestamps).

    Returns:
        The tasks sorted by submit time; resources ``cpu``, ``memory`` then the extra
        columns in file order.

    Raises:
        TraceError: missing file or column, a row with the wrong number of fields, a
            value that is not a number, negative, or a duration <= 0.
    """
    table = read_table(os.fspath(path))
    table.require(CSV_REQUIRED)
    submit = number_column(table, "submit_time")
    duration = number_column(table, "duration", allow_inf=True)
    reject(table, "duration", duration <= 0, "is not a positive duration (must be > 0 seconds)")
    extra = [c for c in table.header if c not in CSV_REQUIRED and c != CSV_NAME]
    resources = {name: number_column(table, name) for name in ("cpu", "memory", *extra)}
    names = text_column(table, CSV_NAME) if CSV_NAME in table.columns else None
    return sorted_tasks(submit, duration, resources, names, rebase=rebase)
