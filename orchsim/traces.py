"""Trace loaders: turn workload and cluster trace files into columnar numpy arrays.

Three formats are read:

* a plain CSV task list (``submit_time, duration, cpu, memory[, more resources]``),
  the format a user writes by hand or exports from their own system;
* the Alibaba ``openb`` pod and node lists (cluster-trace-gpu-v2023, used by the FGD
  paper, Weng et al., USENIX ATC 2023);
* the Standard Workload Format (SWF) of the Parallel Workloads Archive, plain or gzipped.

Units are those of the simulator everywhere: times in seconds, cpu in millicores,
memory in MiB, gpu in milli-GPU (1000 = one whole GPU). Tasks come back sorted by
submit time (stable, so equal times keep file order), which is what the engine needs.

Every problem with a file surfaces as one ``TraceError`` whose message names the file,
the line as a text editor counts it (1-based, header, comment and blank lines included),
the column and what is wrong, so the CLI can print it as a single line. Files are read
whole with the standard library (``csv``, ``gzip``) and converted column by column with
numpy: a 10,000-row trace loads in tens of milliseconds. No SimPy, pandas or YAML here.
"""

from __future__ import annotations

import csv
import gzip
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MIN_POD_DURATION",
    "TraceError",
    "TraceTasks",
    "load_csv_trace",
    "load_openb_nodes",
    "load_openb_pods",
    "load_swf",
]

#: Columns every CSV task trace must have (any order).
CSV_REQUIRED = ("submit_time", "duration", "cpu", "memory")
#: Optional text column of a CSV task trace; every other column is a resource.
CSV_NAME = "name"

#: Duration (seconds) given to openb pods deleted at (or before) their creation time.
#: The trace records such pods (Pending pods cut at the end of the capture) with
#: ``deletion_time == creation_time``; the simulator needs a positive duration, and one
#: second keeps them in the workload at a negligible cost in resource-time.
MIN_POD_DURATION = 1.0

OPENB_POD_REQUIRED = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
OPENB_NODE_REQUIRED = ("sn", "cpu_milli", "memory_mib", "gpu")

#: One GPU in milli-GPU, the unit of the ``gpu`` resource.
MILLI_PER_GPU = 1000.0

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


class TraceError(ValueError):
    """A trace file that cannot be read.

    ``str(err)`` names the file, the line (1-based, as a text editor counts, header =
    line 1) when there is one, the column, and the problem, e.g.
    ``"traces/jobs.csv line 7, column 'cpu': 'abc' is not a number"``.
    """


@dataclass(frozen=True)
class TraceTasks:
    """Tasks of a trace, columnar, sorted by submit_time (stable sort).

    Attributes:
        submit_time: float64 ``(T,)``, seconds, >= 0; relative to the trace's first
            submission when loaded with ``rebase=True``.
        duration: float64 ``(T,)``, seconds, > 0; ``inf`` means the task never ends
            (arrival-only traces).
        resources: Resource name -> float64 ``(T,)`` demand, >= 0. Units: ``cpu`` in
            millicores, ``memory`` in MiB, ``gpu`` in milli-GPU.
        names: Task names (object array ``(T,)``) when the trace has them, else None.
        skipped: Records of the file left out (SWF jobs with no run time or no
            processors), so callers can report how much of the trace was used.
        clamped: Records kept but with their duration raised to ``MIN_POD_DURATION``
            (openb pods deleted at their creation time).
    """

    submit_time: np.ndarray
    duration: np.ndarray
    resources: dict[str, np.ndarray]
    names: np.ndarray | None = None
    skipped: int = 0
    clamped: int = 0

    def __post_init__(self) -> None:
        n = len(self.submit_time)
        lengths = [len(self.duration), *(len(v) for v in self.resources.values())]
        if self.names is not None:
            lengths.append(len(self.names))
        if any(length != n for length in lengths):
            raise ValueError(f"TraceTasks columns differ in length: submit_time has {n}, others {lengths}")

    def __len__(self) -> int:
        return len(self.submit_time)


# ------------------------------------------------------------------ reading files
def _error(path: str, problem: str, *, line: int | None = None, at: str | None = None) -> TraceError:
    """A ``TraceError`` reading ``"<path> line <n>, <at>: <problem>"`` (parts optional)."""
    where = path if line is None else f"{path} line {line}"
    if at is not None:
        where = f"{where}, {at}"
    return TraceError(f"{where}: {problem}")


def _read_lines(path: str) -> list[str]:
    """The physical lines of a text file, gunzipped when it starts with the gzip magic.

    Lines are split at LF, CRLF and CR only, as editors do (not on the
    other separators ``str.splitlines`` knows), so line numbers match what users see.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise _error(path, "file not found") from None
    except IsADirectoryError:
        raise _error(path, "is a directory, not a trace file") from None
    except OSError as err:
        raise _error(path, f"cannot be read ({err.strerror})") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise _error(path, f"not a valid gzip file ({err})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise _error(path, f"not UTF-8 text (byte {data[err.start]:#04x})", line=line) from None
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


@dataclass
class _Table:
    """A CSV file as text columns, with the file line of every row for error messages."""

    path: str
    header: list[str]
    header_line: int
    row_lines: list[int]
    columns: dict[str, Sequence[str]]

    def __len__(self) -> int:
        return len(self.row_lines)

    def error(self, row: int, column: str, problem: str) -> TraceError:
        return _error(self.path, problem, line=self.row_lines[row], at=f"column {column!r}")

    def require(self, names: Sequence[str]) -> None:
        """Raise naming the first of ``names`` missing from the header, and the columns found."""
        for name in names:
            if name not in self.columns:
                found = ", ".join(self.header) or "none"
                raise _error(
                    self.path, f"missing required column {name!r} (columns found: {found})", line=self.header_line
                )


def _read_table(path: str) -> _Table:
    """Parse a CSV file; blank lines and lines starting with ``#`` are ignored.

    The first remaining line is the header. Every row must have as many fields as the
    header. Cells are kept as text; ``_numbers`` converts the columns a loader needs.
    """
    kept = [(n, s) for n, s in enumerate(_read_lines(path), 1) if s.strip() and not s.lstrip().startswith("#")]
    if not kept:
        raise _error(path, "empty file: expected a header line naming the columns")
    line_of = [n for n, _ in kept]
    reader = csv.reader((s for _, s in kept), strict=True)
    records: list[list[str]] = []
    record_lines: list[int] = []
    try:
        for record in reader:
            records.append(record)
            record_lines.append(line_of[reader.line_num - 1])  # last physical line of the record
    except csv.Error as err:
        raise _error(path, f"malformed CSV ({err})", line=line_of[min(reader.line_num, len(line_of)) - 1]) from None

    header = [h.strip() for h in records[0]]
    header_line = record_lines[0]
    for i, name in enumerate(header):
        if not name:
            raise _error(path, f"column {i + 1} of the header has no name", line=header_line)
        if name in header[:i]:
            raise _error(path, f"column {name!r} appears twice in the header", line=header_line)
    rows, row_lines = records[1:], record_lines[1:]
    for row, line in zip(rows, row_lines, strict=True):
        if len(row) != len(header):
            raise _error(path, f"expected {len(header)} fields ({', '.join(header)}), found {len(row)}", line=line)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    return _Table(path, header, header_line, row_lines, dict(zip(header, columns, strict=True)))


def _parse_floats(cells: Sequence[str]) -> tuple[np.ndarray, int | None]:
    """``cells`` as float64 and the index of the first cell that is not a number (or None)."""
    try:
        values = np.array(cells, dtype=np.float64) if len(cells) else np.zeros(0)
    except ValueError:
        values = np.empty(len(cells))
        for i, cell in enumerate(cells):
            try:
                values[i] = float(cell)
            except ValueError:
                return values, i
    nan = np.flatnonzero(np.isnan(values))
    return values, (int(nan[0]) if nan.size else None)


def _numbers(table: _Table, column: str, *, allow_inf: bool = False) -> np.ndarray:
    """One column as float64, checked: a number, >= 0, finite (``allow_inf``: or ``+inf``).

    Raises:
        TraceError: naming the line and column of the first bad cell.
    """
    cells = table.columns[column]
    values, bad = _parse_floats(cells)
    if bad is not None:
        raise table.error(bad, column, f"{cells[bad].strip()!r} is not a number")
    _reject(table, column, values < 0, "is negative (must be >= 0)")
    if not allow_inf:
        _reject(table, column, np.isinf(values), "is not finite")
    return values


def _reject(table: _Table, column: str, mask: np.ndarray, problem: str) -> None:
    """Raise for the first row where ``mask`` holds, quoting the cell: ``'-5' is negative``."""
    hits = np.flatnonzero(mask)
    if hits.size:
        i = int(hits[0])
        raise table.error(i, column, f"{table.columns[column][i].strip()!r} {problem}")


def _sorted_tasks(
    submit: np.ndarray,
    duration: np.ndarray,
    resources: dict[str, np.ndarray],
    names: np.ndarray | None,
    *,
    rebase: bool,
    limit: int | None = None,
    skipped: int = 0,
    clamped: int = 0,
) -> TraceTasks:
    """Stable-sort by submit time, keep the first ``limit``, shift to start at 0 if ``rebase``."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    order = np.argsort(submit, kind="stable")[:limit]
    submit = submit[order]
    if rebase and submit.size:
        submit = submit - submit[0]
    return TraceTasks(
        submit_time=submit,
        duration=duration[order],
        resources={name: values[order] for name, values in resources.items()},
        names=None if names is None else names[order],
        skipped=skipped,
        clamped=clamped,
    )


def _text_column(table: _Table, column: str) -> np.ndarray:
    """A text column as an object array of stripped strings."""
    return np.array([cell.strip() for cell in table.columns[column]], dtype=object)


# ------------------------------------------------------------------ CSV task trace
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
    table = _read_table(os.fspath(path))
    table.require(CSV_REQUIRED)
    submit = _numbers(table, "submit_time")
    duration = _numbers(table, "duration", allow_inf=True)
    _reject(table, "duration", duration <= 0, "is not a positive duration (must be > 0 seconds)")
    extra = [c for c in table.header if c not in CSV_REQUIRED and c != CSV_NAME]
    resources = {name: _numbers(table, name) for name in ("cpu", "memory", *extra)}
    names = _text_column(table, CSV_NAME) if CSV_NAME in table.columns else None
    return _sorted_tasks(submit, duration, resources, names, rebase=rebase)


# ------------------------------------------------------------------ Alibaba openb
def _openb_gpu(table: _Table) -> np.ndarray:
    """Milli-GPU demand of every pod: ``gpu_milli`` for one GPU, ``num_gpu * 1000`` beyond.

    In openb a pod asks for ``num_gpu`` GPUs; when ``num_gpu == 1``, ``gpu_milli`` is the
    share of that one GPU it needs (GPU sharing: 460 = 46 % of a GPU); pods with several
    GPUs take them whole (their ``gpu_milli`` is always 1000). The whole-GPU/fractional
    distinction that the FGD paper schedules on is flattened here to a milli-GPU total:
    the simulator treats gpu as one divisible resource per node, so a pod of 460 fits on
    a node with 600 free even if that 600 is spread over two physical GPUs.
    """
    num_gpu = _numbers(table, "num_gpu")
    _reject(table, "num_gpu", num_gpu != np.floor(num_gpu), "is not a whole number of GPUs")
    gpu_milli = _numbers(table, "gpu_milli")
    _reject(table, "gpu_milli", gpu_milli > MILLI_PER_GPU, "exceeds 1000 (it is the share of one GPU)")
    return np.where(num_gpu == 1, gpu_milli, num_gpu * MILLI_PER_GPU)


def _openb_times(table: _Table) -> tuple[np.ndarray, np.ndarray, int]:
    """Submit times, durations and how many durations were clamped, from creation/deletion.

    Without ``creation_time`` (e.g. ``multigpu50``) the trace is arrival-only, as FGD
    replays it: every pod arrives at 0 and never leaves. An empty ``deletion_time``
    means the pod was never deleted (duration ``inf``). A pod deleted at or before its
    creation gets ``MIN_POD_DURATION``.
    """
    n = len(table)
    if "creation_time" not in table.columns:
        if "deletion_time" in table.columns:
            table.require(["creation_time"])
        return np.zeros(n), np.full(n, np.inf), 0
    created = _numbers(table, "creation_time")
    if "deletion_time" not in table.columns:
        return created, np.full(n, np.inf), 0
    # An empty deletion_time: the pod was never deleted.
    table.columns["deletion_time"] = [cell if cell.strip() else "inf" for cell in table.columns["deletion_time"]]
    deleted = _numbers(table, "deletion_time", allow_inf=True)
    duration = deleted - created
    short = duration <= 0
    return created, np.where(short, MIN_POD_DURATION, duration), int(short.sum())


def load_openb_pods(
    path: str | os.PathLike[str], *, rebase: bool = True, limit: int | None = None, gpu_as_milli: bool = True
) -> TraceTasks:
    """Load an Alibaba openb pod list (``openb_pod_list_*.csv``).

    Columns used: ``name``, ``cpu_milli``, ``memory_mib``, ``num_gpu``, ``gpu_milli``
    and, when present, ``creation_time`` and ``deletion_time`` (seconds). The others
    (``gpu_spec``, ``qos``, ``pod_phase``, ``scheduled_time``) are ignored; note that
    ``gpu_spec`` GPU-model constraints are therefore not enforced.

    Time rule: ``submit_time = creation_time`` and ``duration = deletion_time -
    creation_time``. A pod with ``deletion_time <= creation_time`` (in the shipped
    files: Pending pods cut at the capture's end; 1 in ``default``) gets a duration of
    ``MIN_POD_DURATION`` (1 s) and is counted in ``TraceTasks.clamped``. Files without
    those columns (``multigpu50``) are arrival-only: all pods submit at 0 with duration
    ``inf``, the way the FGD paper replays every openb file.

    Args:
        path: The pod list CSV.
        rebase: Shift submit times so the first creation is at 0.
        limit: Keep only the first ``limit`` pods by submit time (file order for
            arrival-only files).
        gpu_as_milli: ``gpu`` in milli-GPU (the simulator's unit); False gives whole GPUs.

    Returns:
        Tasks with resources ``cpu`` (millicores), ``memory`` (MiB) and ``gpu``
        (milli-GPU, see ``_openb_gpu`` for how ``num_gpu`` and ``gpu_milli`` combine).

    Raises:
        TraceError: naming the file, line and column of the first problem.
    """
    table = _read_table(os.fspath(path))
    table.require(OPENB_POD_REQUIRED)
    submit, duration, clamped = _openb_times(table)
    gpu = _openb_gpu(table)
    resources = {
        "cpu": _numbers(table, "cpu_milli"),
        "memory": _numbers(table, "memory_mib"),
        "gpu": gpu if gpu_as_milli else gpu / MILLI_PER_GPU,
    }
    names = _text_column(table, "name")
    return _sorted_tasks(submit, duration, resources, names, rebase=rebase, limit=limit, clamped=clamped)


def load_openb_nodes(path: str | os.PathLike[str]) -> tuple[list[str], dict[str, np.ndarray], list[dict[str, str]]]:
    """Load an Alibaba openb node list (``openb_node_list_*.csv``).

    Columns: ``sn`` (node id), ``cpu_milli``, ``memory_mib``, ``gpu`` (whole GPUs) and
    optional ``model`` (GPU model, empty for CPU-only nodes).

    Returns:
        Node ids in file order; capacities ``{"cpu": millicores, "memory": MiB, "gpu":
        milli-GPU (gpu * 1000)}`` as float64 arrays; one label dict per node,
        ``{"gpu_model": model}``, empty when the model is blank, so node selectors can
        target a GPU model.

    Raises:
        TraceError: missing file or column, bad number, duplicate node id.
    """
    table = _read_table(os.fspath(path))
    table.require(OPENB_NODE_REQUIRED)
    ids = [cell.strip() for cell in table.columns["sn"]]
    first_line: dict[str, int] = {}
    for i, node_id in enumerate(ids):
        if not node_id:
            raise table.error(i, "sn", "empty node id")
        if node_id in first_line:
            raise table.error(i, "sn", f"duplicate node id {node_id!r} (first on line {first_line[node_id]})")
        first_line[node_id] = table.row_lines[i]
    gpus = _numbers(table, "gpu")
    _reject(table, "gpu", gpus != np.floor(gpus), "is not a whole number of GPUs")
    capacity = {
        "cpu": _numbers(table, "cpu_milli"),
        "memory": _numbers(table, "memory_mib"),
        "gpu": gpus * MILLI_PER_GPU,
    }
    models = table.columns.get("model", [""] * len(ids))
    labels = [{"gpu_model": m.strip()} if m.strip() else {} for m in models]
    return ids, capacity, labels


# ------------------------------------------------------------------ SWF
def _swf_records(path: str) -> tuple[np.ndarray, np.ndarray]:
    """The job lines of an SWF file as a float64 ``(J, 18)`` array, and their line numbers.

    Lines starting with ``;`` are header comments; blank lines are ignored.

    Raises:
        TraceError: a line without 18 whitespace-separated fields or with a field that
            is not a finite number.
    """
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    for n, line in enumerate(_read_lines(path), 1):
        text = line.strip()
        if not text or text.startswith(";"):
            continue
        fields = text.split()
        if len(fields) != len(SWF_FIELDS):
            raise _error(path, f"expected {len(SWF_FIELDS)} whitespace-separated fields, found {len(fields)}", line=n)
        rows.append(fields)
        line_numbers.append(n)
    flat = [cell for row in rows for cell in row]
    values, bad = _parse_floats(flat)
    if bad is None:
        inf = np.flatnonzero(np.isinf(values))
        bad = int(inf[0]) if inf.size else None
    if bad is not None:
        job, col = divmod(bad, len(SWF_FIELDS))
        at = f"field {col + 1} ({SWF_FIELDS[col]})"
        raise _error(path, f"{flat[bad]!r} is not a number", line=line_numbers[job], at=at)
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
    return _sorted_tasks(
        submit[keep],
        run[keep],
        resources,
        names,
        rebase=rebase,
        limit=limit,
        skipped=int((~keep).sum()),
    )
