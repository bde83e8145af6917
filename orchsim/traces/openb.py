"""The Alibaba ``openb`` pod and node lists.

From cluster-trace-gpu-v2023, the trace of the FGD paper (Weng et al., USENIX ATC 2023).
"""

from __future__ import annotations

import os

import numpy as np

from orchsim.traces.table import Table, number_column, read_table, reject, text_column
from orchsim.traces.tasks import TraceTasks, sorted_tasks

__all__ = ["MILLI_PER_GPU", "MIN_POD_DURATION", "load_openb_nodes", "load_openb_pods"]

#: Duration (seconds) given to openb pods deleted at (or before) their creation time.
#: The trace records such pods (Pending pods cut at the end of the capture) with
#: ``deletion_time == creation_time``; the simulator needs a positive duration, and one
#: second keeps them in the workload at a negligible cost in resource-time.
MIN_POD_DURATION = 1.0

OPENB_POD_REQUIRED = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
OPENB_NODE_REQUIRED = ("sn", "cpu_milli", "memory_mib", "gpu")

#: One GPU in milli-GPU, the unit of the ``gpu`` resource.
MILLI_PER_GPU = 1000.0


def _openb_gpu(table: Table) -> np.ndarray:
    """Milli-GPU demand of every pod: ``gpu_milli`` for one GPU, ``num_gpu * 1000`` beyond.

    In openb a pod asks for ``num_gpu`` GPUs; when ``num_gpu == 1``, ``gpu_milli`` is the
    share of that one GPU it needs (GPU sharing: 460 = 46 % of a GPU); pods with several
    GPUs take them whole (their ``gpu_milli`` is always 1000). The whole-GPU/fractional
    distinction that the FGD paper schedules on is flattened here to a milli-GPU total:
    the simulator treats gpu as one divisible resource per node, so a pod of 460 fits on
    a node with 600 free even if that 600 is spread over two physical GPUs.
    """
    num_gpu = number_column(table, "num_gpu")
    reject(table, "num_gpu", num_gpu != np.floor(num_gpu), "is not a whole number of GPUs")
    gpu_milli = number_column(table, "gpu_milli")
    reject(table, "gpu_milli", gpu_milli > MILLI_PER_GPU, "exceeds 1000 (it is the share of one GPU)")
    return np.where(num_gpu == 1, gpu_milli, num_gpu * MILLI_PER_GPU)


def _openb_times(table: Table) -> tuple[np.ndarray, np.ndarray, int]:
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
    created = number_column(table, "creation_time")
    if "deletion_time" not in table.columns:
        return created, np.full(n, np.inf), 0
    # An empty deletion_time: the pod was never deleted.
    table.columns["deletion_time"] = [cell if cell.strip() else "inf" for cell in table.columns["deletion_time"]]
    deleted = number_column(table, "deletion_time", allow_inf=True)
    duration = deleted - created
    short = duration <= 0
    return created, np.where(short, MIN_POD_DURATION, duration), int(short.sum())


def load_openb_pods(
    path: str | os.PathLike[str], *, rebase: bool = True, limit: int | None = None, gpu_as_milli: bool = True
) -> TraceTasks:
    """Load an Alibaba openb pod list (``openb_pod_list_*.csv``).

    Columns used: ``name``, ``cpu_milli``, ``memory_mib``, ``num_gpu``, ``gpu_milli``
    and, when present, ``creation_time`` and ``deletion_time`` (seconds) and ``gpu_spec``
    (the GPU models a pod may use, ``V100M16|V100M32``), which becomes the pod's node
    selector ``{"gpu_model": spec}`` (nodes carry their model as that label). The others
    (``qos``, ``pod_phase``, ``scheduled_time``) are ignored.

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
    table = read_table(os.fspath(path))
    table.require(OPENB_POD_REQUIRED)
    submit, duration, clamped = _openb_times(table)
    gpu = _openb_gpu(table)
    resources = {
        "cpu": number_column(table, "cpu_milli"),
        "memory": number_column(table, "memory_mib"),
        "gpu": gpu if gpu_as_milli else gpu / MILLI_PER_GPU,
    }
    names = text_column(table, "name")
    selectors = None
    if "gpu_spec" in table.columns:
        specs = text_column(table, "gpu_spec")
        selectors = np.array([{"gpu_model": spec} if spec else {} for spec in specs], dtype=object)
    return sorted_tasks(
        submit, duration, resources, names, rebase=rebase, limit=limit, clamped=clamped, node_selectors=selectors
    )


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
    table = read_table(os.fspath(path))
    table.require(OPENB_NODE_REQUIRED)
    ids = [cell.strip() for cell in table.columns["sn"]]
    first_line: dict[str, int] = {}
    for i, node_id in enumerate(ids):
        if not node_id:
            raise table.error(i, "sn", "empty node id")
        if node_id in first_line:
            raise table.error(i, "sn", f"duplicate node id {node_id!r} (first on line {first_line[node_id]})")
        first_line[node_id] = table.row_lines[i]
    gpus = number_column(table, "gpu")
    reject(table, "gpu", gpus != np.floor(gpus), "is not a whole number of GPUs")
    capacity = {
        "cpu": number_column(table, "cpu_milli"),
        "memory": number_column(table, "memory_mib"),
        "gpu": gpus * MILLI_PER_GPU,
    }
    models = table.columns.get("model", [""] * len(ids))
    labels = [{"gpu_model": m.strip()} if m.strip() else {} for m in models]
    return ids, capacity, labels
