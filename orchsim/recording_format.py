"""The format of a live cluster's recording, in one place for the writer and the reader.

``orchlive.record`` writes a recording and ``orchsim.traces.orchlive`` reads it; the
layer rules keep the two apart (the live side never imports the simulator), so the
column names live here, in a module of constants that imports nothing, which both may
import. The README's "Recording a cluster and replaying it" documents every column.

A recording is a folder of ``tasks.csv`` (one row per task attempt), ``nodes.csv`` (one
row per node) and ``policy.json``; ``record --follow`` adds ``cursor.json`` (the last
event id read, so that a restarted recorder resumes without duplicates).
"""

from __future__ import annotations

__all__ = [
    "COLUMN_RESOURCES",
    "CURSOR_FILE",
    "NODES_FILE",
    "NODE_COLUMNS",
    "NODE_OPTIONAL",
    "POLICY_FILE",
    "RESOURCE_COLUMNS",
    "TASKS_FILE",
    "TASK_COLUMNS",
    "TASK_TAIL",
]

TASKS_FILE = "tasks.csv"
NODES_FILE = "nodes.csv"
POLICY_FILE = "policy.json"
CURSOR_FILE = "cursor.json"

#: Live resource name -> recording column (openb's names; millicores, MiB, milli-GPU).
RESOURCE_COLUMNS = {"cpu": "cpu_milli", "memory": "memory_mib", "gpu": "gpu_milli"}
#: Recording column -> resource name (the inverse); any other column is a resource of its own name.
COLUMN_RESOURCES = {column: name for name, column in RESOURCE_COLUMNS.items()}

#: ``tasks.csv``: these first, then one column per resource, then ``TASK_TAIL``.
TASK_COLUMNS = (
    "task_id",
    "name",
    "submit_time",
    "node",
    "devices",
    "assigned_time",
    "start_time",
    "end_time",
    "state",
    "attempt",
)
TASK_TAIL = ("reason", "exit_code")

#: ``nodes.csv``: these first, then one column per resource (capacity).
NODE_COLUMNS = ("node_id", "labels", "devices", "joined", "lost", "drained")
#: Columns of ``nodes.csv`` that recordings written before them lack (read as empty).
#: ``rejoined``: the node joined again after its loss or drain (s).
NODE_OPTIONAL = ("rejoined",)
