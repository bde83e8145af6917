"""The format of a live cluster's recording, in one place for the writer and the reader.

``orchlive.record`` writes a recording and ``orchsim.traces.orchlive`` reads it; the
layer rules keep the two apart (the live side never imports the simulator), so the
column names live here, in a module of constants that imports nothing, which both may
import. The README's "Recording a cluster and replaying it" documents every column.

A recording is a folder of ``tasks.csv`` (one row per task attempt), ``nodes.csv`` (one
row per node), ``node_events.csv`` (every join, loss and drain; format 2) and ``policy.json``;
``record --follow`` adds ``cursor.json`` (the last event id read, so that a restarted recorder
resumes without duplicates).

Versions (``policy.json``'s ``format``; a recording without it is format 1). Format 2 adds
``node_events.csv`` and the optional task columns ``TASK_OPTIONAL`` (gangs, dependencies). A
format-2 reader reads format 1 (the missing columns are empty, the node history comes from
``nodes.csv``'s columns); a format-1 reader would take the new task columns for resources.
Format 3 adds the task columns ``TASK_EVENTS``: the ids of the events that opened and ended
each attempt, whose order is the order etcd committed them (a time is stamped before its
transaction commits, and on a loaded machine the commit may come well after it). A
format-3 reader reads formats 1 and 2 (without them, the replay check falls back on times).
Format 4 adds ``created_event``: the id of the task's ``task.created``, which the master had
seen through its watch when it first placed the task; without it the decision check bounds
what the master had not yet seen by time stamps.
"""

from __future__ import annotations

__all__ = [
    "COLUMN_RESOURCES",
    "CURSOR_FILE",
    "FORMAT",
    "NODE_EVENTS_FILE",
    "NODE_EVENT_COLUMNS",
    "NODES_FILE",
    "NODE_COLUMNS",
    "NODE_OPTIONAL",
    "POLICY_FILE",
    "RESOURCE_COLUMNS",
    "TASKS_FILE",
    "TASK_COLUMNS",
    "TASK_EVENTS",
    "TASK_FIXED",
    "TASK_OPTIONAL",
    "TASK_TAIL",
]

#: The format this package writes (``policy.json``'s ``format``); see the module.
FORMAT = 4

TASKS_FILE = "tasks.csv"
NODES_FILE = "nodes.csv"
POLICY_FILE = "policy.json"
CURSOR_FILE = "cursor.json"
NODE_EVENTS_FILE = "node_events.csv"

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
#: ``tasks.csv`` columns of format 2, after ``TASK_TAIL`` (empty cells: none):
#: ``gang`` (the gang's id: its replica 0's task id), ``replica`` (0..k-1), ``replicas`` (k),
#: ``min_replicas``; ``after`` (parent task ids, ``;``-separated), ``on`` (``success`` or
#: ``completion``), ``if_parent_fails`` (``fail`` or ``skip``).
TASK_OPTIONAL = ("gang", "replica", "replicas", "min_replicas", "after", "on", "if_parent_fails")
#: ``tasks.csv`` columns of format 3, after ``TASK_OPTIONAL``: the event ids (``revision * 1000 +
#: index``, see ``orchlive.event_ids``) of the attempt's ``task.assigned`` and of the event that
#: ended it (empty: none). Ids compare in commit order: the replay check uses them to tell what
#: the master could have known when it placed a task. Format 4 adds ``created_event``: the id of
#: the task's ``task.created`` (the same on each of its rows; empty: none).
TASK_EVENTS = ("assigned_event", "end_event", "created_event")
#: Every ``tasks.csv`` column that is not a resource.
TASK_FIXED = TASK_COLUMNS + TASK_TAIL + TASK_OPTIONAL + TASK_EVENTS

#: ``nodes.csv``: these first, then one column per resource (capacity).
NODE_COLUMNS = ("node_id", "labels", "devices", "joined", "lost", "drained")
#: Columns of ``nodes.csv`` that recordings written before them lack (read as empty).
#: ``rejoined``: the node joined again after its loss or drain (s).
NODE_OPTIONAL = ("rejoined",)
#: ``node_events.csv`` (format 2): one row per ``node.joined``, ``node.lost``, ``node.drained``
#: event in time order; ``state`` is the node's as the event reported it (a join in state
#: ``DRAINING`` is a drained worker restarting: still cordoned, not back in service).
NODE_EVENT_COLUMNS = ("node_id", "time", "event", "state")
