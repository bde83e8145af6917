"""Every write orchlive makes to etcd, each a named function with its compare-and-swap and its event.

Tasks (``tasks.py``; master, worker and API share these, so the rules live in one place):

* ``create_task``  -> PENDING                    (API ``POST``; ``task.created``); the API's
  ``CreateBatcher`` (``creates.py``) writes single submissions arriving together in one transaction
* ``place``        PENDING  -> ASSIGNED           (master; the node's ledger gains the request)
* ``note_reason``  why a PENDING task waits       (master; no event: not a transition)
* ``start``        ASSIGNED -> RUNNING            (worker); ``runs.start_batches`` writes starts
  going together in one transaction
* ``finish``       RUNNING  -> COMPLETED | FAILED (worker; the node's releases take the request back); the
  worker's ``runs.report_batches`` writes the reports of tasks ending together in one transaction
* ``requeue``      ASSIGNED | RUNNING -> PENDING, or FAILED past the retry limit (node lost, eviction)
* ``preempt``      ASSIGNED | RUNNING -> PENDING  (master, for a higher priority; ``task.preempted``)
* ``stopped``      the copy an eviction left on a node stopped (worker; clears ``stopping``, no event)
* ``remove``       any -> deleted                 (API ``DELETE``)

Groups (``groups.py``): ``create_tasks`` (a gang's replicas, a DAG's tasks, in one
transaction), ``move`` (a task to PENDING, FAILED or SKIPPED, releasing its node: a gang
kept whole, a child of a failed parent settled), ``remove_tree`` (a task, its gang and its
descendants). ``place`` takes a gang's spare replicas too (PENDING -> SKIPPED).

Nodes (``nodes.py``): ``register_node`` (worker; ``node.joined``), ``drain_node`` (API;
``node.drained``, then evictions through ``requeue``), ``node_lost`` (master; ``node.lost``),
and the leader key, ``claim_leadership``. Two plain writes without a compare live here too,
so that nothing else writes: ``beat`` (the heartbeat's timestamp) and ``save_log_tail``.

A transition compares the mod revision it read of every key it depends on (the task, and the
node's ledger when it places, its releases when it frees: ``orchlive.releases``); if another
party changed one in between, the transaction does not apply, and the transition re-reads
(``core.until_applied``, the one retry loop) or reports the conflict (``ConflictError``).
The assignment key (a worker's inbox) is created and deleted in the same transactions (it
holds the task as placed, at the same revision: the worker starts from it without a read), and
the event describing the change is written with them, so the event stream never shows a
transition that did not happen. Callers keep what a transition returns and never rebuild it.
"""

from orchlive.transitions.core import (
    ConflictError,
    keep_totals,
    read_allocation,
    read_ledger,
    read_released,
    read_task,
    record_size,
)
from orchlive.transitions.creates import CreateBatcher
from orchlive.transitions.groups import create_tasks, move, remove_tree
from orchlive.transitions.nodes import (
    NodeNameInUseError,
    beat,
    claim_leadership,
    drain_node,
    node_lost,
    register_node,
    remove_node,
    uncordon_node,
)
from orchlive.transitions.runs import Report, batchable, read_batches, report_batches, start_batches
from orchlive.transitions.tasks import (
    Placed,
    Placement,
    Preempted,
    create_task,
    finish,
    note_reason,
    place,
    place_size,
    preempt,
    remove,
    requeue,
    save_log_tail,
    start,
    stopped,
)

__all__ = [
    "ConflictError",
    "Placed",
    "Placement",
    "beat",
    "claim_leadership",
    "CreateBatcher",
    "create_task",
    "create_tasks",
    "keep_totals",
    "move",
    "remove_tree",
    "drain_node",
    "finish",
    "node_lost",
    "note_reason",
    "place",
    "place_size",
    "preempt",
    "Preempted",
    "read_allocation",
    "read_ledger",
    "read_released",
    "read_task",
    "record_size",
    "register_node",
    "remove_node",
    "uncordon_node",
    "NodeNameInUseError",
    "Report",
    "batchable",
    "read_batches",
    "report_batches",
    "start_batches",
    "remove",
    "requeue",
    "save_log_tail",
    "start",
    "stopped",
]
