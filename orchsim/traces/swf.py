"""The Standard Workload Format (SWF) of the Parallel Workloads Archive, plain or gzipped."""

from __future__ import annotations

import os

import numpy as np

from orchsim.traces.table import parse_floats, read_lines, trace_error
from orchsim.traces.tasks import TraceTasks, sorted_tasks

__all__ = ["SWF_FIELDS", "load_swf"]

#: SWF field names, 1-based field ``i`` is ``SWF_FIELDS[i - 1]``.
SWF_FIELDS = (
    "job id",
    "submit time",
    "wait time",
    "run time",
    "allocated processors",
    "average cpu time",
    "used memory",
    "requested processors",
    "requested time",
    "requested memory",
    "status",
    "user",
    "group",
    "executable",
    "queue",
    "partition",
    "preceding job",
    "think time",
)
_SWF_SUBMIT, _SWF_RUN, _SWF_ALLOCATED, _SWF_REQUESTED = 1, 3, 4, 7  # 0-based


def _swf_records(path: str) -> tuple[np.ndarray, np.ndarray]:
    """The job lines of an SWF file as a float64 ``(J, 18)`` array, and their line numbers.

    Lines starting with ``;`` are header comments; blank lines are ignored.

    Raises:
        TraceError: a line without 18 whitespace-separated fields or with a field that
            is not a finite number.
    """
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    for n, line in enumerate(read_lines(path), 1):
        text = line.strip()
        if not text or text.startswith(";"):
            continue
        fields = text.split()
        if len(fields) != len(SWF_FIELDS):
            raise trace_error(
                path, f"expected {len(SWF_FIELDS)} whitespace-separated fields, found {len(fields)}", line=n
            )
        rows.append(fields)
        line_numbers.append(n)
    flat = [cell for row in rows for cell in row]
    values, bad = parse_floats(flat)
    if bad is None:
        inf = np.flatnonzero(np.isinf(values))
        bad = int(inf[0]) if inf.size else None
    if bad is not None:
        job, col = divmod(bad, len(SWF_FIELDS))
        at = f"field {col + 1} ({SWF_FIELDS[col]})"
        raise trace_error(path, f"{flat[bad]!r} is not a number", line=line_numbers[job], at=at)
    return values.reshape(-1, len(SWF_FIELDS)), np.array(line_numbers, dtype=np.int64)


def load_swf(
    path: str | os.PathLike[str],
    *,
    rebase: bool = True,
    cpu_per_processor: float = 1000.0,
    memory_per_processor: float = 0.0,
    limit: int | None = None,
) -> TraceTasks:
    """Load a Standard Workload Format log (``.swf`` or gzipped ``.swf.gz``).

    A job becomes one task: submit time = field 2, duration = run time (field 4),
    processors = allocated (field 5), or requested (field 8) when field 5 is unknown
    (negative, SWF writes -1). Each processor becomes ``cpu_per_processor`` millicores,
    so a 128-node machine modelled as 128 nodes of 1000 millicores maps one processor to
    one node, and ``memory_per_processor`` MiB.

    Jobs that cannot be replayed are skipped and counted in ``TraceTasks.skipped``:
    run time <= 0 (zero or unknown: nothing to simulate, and the simulator needs a
    positive duration), processors <= 0 (unknown size), or an unknown (negative) submit
    time. The count covers the whole file, also when ``limit`` keeps fewer jobs.

    Args:
        path: The log; gzip is detected from the file's first bytes, not its name.
        rebase: Shift submit times so the first kept job submits at 0.
        cpu_per_processor: Millicores per processor, > 0.
        memory_per_processor: MiB per processor, >= 0 (SWF memory fields are mostly
            unknown, so memory is a modelling choice; 0 leaves memory unconstrained).
        limit: Keep only the first ``limit`` kept jobs by submit time.

    Returns:
        Tasks with resources ``cpu`` (millicores) and ``memory`` (MiB); names are the
        SWF job ids.

    Raises:
        TraceError: missing file, or a malformed job line (not 18 fields, not numbers).
        ValueError: a non-positive ``cpu_per_processor`` or negative ``memory_per_processor``.
    """
    if not cpu_per_processor > 0:
        raise ValueError(f"cpu_per_processor must be > 0, got {cpu_per_processor}")
    if not memory_per_processor >= 0:
        raise ValueError(f"memory_per_processor must be >= 0, got {memory_per_processor}")
    records, _ = _swf_records(os.fspath(path))
    submit, run = records[:, _SWF_SUBMIT], records[:, _SWF_RUN]
    allocated, requested = records[:, _SWF_ALLOCATED], records[:, _SWF_REQUESTED]
    processors = np.where(allocated < 0, requested, allocated)
    keep = (run > 0) & (processors > 0) & (submit >= 0)
    processors = processors[keep]
    resources = {"cpu": processors * cpu_per_processor, "memory": processors * memory_per_processor}
    names = np.array([str(int(j)) for j in records[keep, 0]], dtype=object)
    return sorted_tasks(
        submit[keep],
        run[keep],
        resources,
        names,
        rebase=rebase,
        limit=limit,
        skipped=int((~keep).sum()),
    )
