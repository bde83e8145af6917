"""Trace loaders: turn workload and cluster trace files into columnar numpy arrays.

Three formats are read:

* a plain CSV task list (``submit_time, duration, cpu, memory[, more resources]``),
  the format a user writes by hand or exports from their own system;
* the Alibaba ``openb`` pod and node lists (cluster-trace-gpu-v2023, used by the FGD
  paper, Weng et al., USENIX ATC 2023);
* the Standard Workload Format (SWF) of the Parallel Workloads Archive, plain or gzipped;
* a recording of a live orchlive cluster (``python -m orchlive record``): a folder of
  ``tasks.csv`` and ``nodes.csv``.

Units are those of the simulator everywhere: times in seconds, cpu in millicores,
memory in MiB, gpu in milli-GPU (1000 = one whole GPU). Tasks come back sorted by
submit time (stable, so equal times keep file order), which is what the engine needs.

Every problem with a file surfaces as one ``TraceError`` whose message names the file,
the line as a text editor counts it (1-based, header, comment and blank lines included),
the column and what is wrong, so the CLI can print it as a single line. No SimPy, pandas
or YAML here.

One module per format (``plain_csv``, ``openb``, ``swf``, ``orchlive``); ``table`` is the CSV
machinery they share and ``tasks`` what they all return.
"""

from __future__ import annotations

from orchsim.traces.openb import MIN_POD_DURATION, load_openb_nodes, load_openb_pods
from orchsim.traces.orchlive import (
    RecordedTasks,
    load_orchlive_node_history,
    load_orchlive_node_times,
    load_orchlive_nodes,
    load_orchlive_structure,
    load_orchlive_tasks,
)
from orchsim.traces.orchlive_latency import decision_latencies
from orchsim.traces.orchlive_structure import RecordedStructure
from orchsim.traces.plain_csv import load_csv_trace
from orchsim.traces.swf import load_swf
from orchsim.traces.tasks import TraceError, TraceTasks

__all__ = [
    "MIN_POD_DURATION",
    "RecordedStructure",
    "RecordedTasks",
    "TraceError",
    "TraceTasks",
    "decision_latencies",
    "load_csv_trace",
    "load_openb_nodes",
    "load_openb_pods",
    "load_orchlive_node_history",
    "load_orchlive_node_times",
    "load_orchlive_nodes",
    "load_orchlive_structure",
    "load_orchlive_tasks",
    "load_swf",
]
