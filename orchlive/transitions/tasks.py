"""Task transitions: created, placed, started, finished, requeued, removed (see the package docstring).

Events carry a task as the API serves it (``TaskPublic``: env names, never values).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from orchlive.models import Ledger, Task, TaskState, now, task_public_json
from orchlive.releases import Release, Released
from orchlive.store import Store, Txn
from orchlive.store_types import dumps
from orchlive.transitions.core import (
    ConflictError,
    commit_released,
    commit_releasing,
    read_task,
    record_json,
    record_size,
    until_applied,
)

__all__ = [
    "Placed",
    "Placement",
    "create_task",
    "finish",
    "finished",
    "mark_running",
    "note_reason",
    "place",
    "place_size",
    "preempt",
    "Preempted",
    "remove",
    "requeue",
    "save_log_tail",
    "start",
    "stopped",
]


async def create_task(store: Store, task: Task) -> Task:
    """A new task, PENDING; raises ``ConflictError`` if its id is taken (never overwrite)."""
    body = record_json(task)
    applied, _ = await (
        store.txn()
        .expect_absent(store.keys.task(task.id))
        .put_json(store.keys.task(task.id), body)
        .event("task.created", task_public_json(task), now().isoformat())
        .commit()
    )
    if not applied:  # a 64-bit id collision: vanishingly rare
        raise ConflictError("task id collision; retry")
    return task


@dataclass(frozen=True)
class Placement:
    """One decision of the master: put ``task`` (read at ``revision``) on ``node_id``, on ``devices``.

    ``devices`` is the decision's ``{kind: device indices}`` (empty when the task needs none).
    """

    task: Task
    revision: int
    node_id: str
    devices: Mapping[str, tuple[int, ...]] = field(default_factory=dict)


# A task's record up to this size (``record_size``'s estimate) is copied into its inbox key.
# Past it the key holds the attempt number and the worker reads the task: a placement's
# transaction must stay far below etcd's 1.5 MiB request limit.
INBOX_COPY_BYTES = 16 * 1024


def place_size(task: Task) -> int:
    """An upper estimate of what placing ``task`` writes: its record, its event, and the inbox's copy."""
    size = record_size(task)
    return 2 * size + (size if _copied_to_inbox(size) else 0)


def _copied_to_inbox(size: int) -> bool:
    """Whether placing a task of ``record_size`` ``size`` (as the pass read it) copies its record to the inbox.

    ``place_size`` and ``place`` both ask here, on the same estimate, so a batch counts every copy it writes.
    """
    return size <= INBOX_COPY_BYTES


@dataclass(frozen=True)
class Placed:
    """What ``place`` wrote: the tasks as now stored and the new ledgers, all at ``revision``."""

    applied: bool
    revision: int
    tasks: list[Task]
    ledgers: dict[str, Ledger]


async def place(
    store: Store,
    placements: list[Placement],
    ledgers: dict[str, tuple[Ledger, int]],
    *,
    spare: Sequence[tuple[Task, int]] = (),
) -> Placed:
    """PENDING -> ASSIGNED for a batch of decisions, all or nothing, in one transaction.

    The master decided with ``ledgers`` as it read them (ledger, mod revision; revision
    0 for a node without one). The transaction applies only if no task and no touched
    ledger moved since, and every target node is still alive. Batching turns a burst of
    submissions into a few round trips to etcd instead of one per task. The reason a task
    waited is cleared. The devices chosen are stored on the task and, as grants, in the
    ledger, under the same compare: two masters can never both take the same share of a device.
    ``spare``: a gang's replicas beyond those placed (``min_replicas``), PENDING -> SKIPPED in
    the same transaction (``orchlive.gangs``); they are in ``Placed.tasks`` too.

    Raises:
        DeviceConflictError: a placement's devices cannot hold it on the ledger given (a
            decision made on other devices than the ledger's; nothing is written).
    """
    keys = store.keys
    txn = store.txn()
    new_ledgers: dict[str, Ledger] = {}
    assigned_tasks: list[Task] = []
    for p in placements:
        update = {"state": TaskState.ASSIGNED, "node_id": p.node_id, "attempts": p.task.attempts + 1, "reason": None}
        update["stopping"] = None
        devices = {kind: [int(i) for i in ids] for kind, ids in p.devices.items()}
        assigned = p.task.model_copy(update=update | {"devices": devices})
        if p.node_id not in new_ledgers:
            ledger, ledger_revision = ledgers.get(p.node_id, (Ledger(), 0))
            new_ledgers[p.node_id] = ledger.copy()
            txn.expect_revision(keys.alloc(p.node_id), ledger_revision).expect_exists(keys.alive(p.node_id))
        new_ledgers[p.node_id].add(assigned)
        stored = dumps(record_json(assigned))
        txn.expect_revision(keys.task(p.task.id), p.revision).put(keys.task(p.task.id), stored)
        # The inbox key carries the task as written (at the same revision): the worker starts it without a read.
        inbox = stored if _copied_to_inbox(record_size(p.task)) else str(assigned.attempts).encode()
        txn.put(keys.assignment(p.node_id, p.task.id), inbox)
        txn.event("task.assigned", task_public_json(assigned), now().isoformat())
        assigned_tasks.append(assigned)
    for node_id, ledger in new_ledgers.items():
        txn.put_json(keys.alloc(node_id), ledger.to_json())
    for task, task_revision in spare:
        reason = f"spare replica: gang {task.gang} runs with {len(placements)} of {task.replicas}"
        skipped = task.model_copy(update={"state": TaskState.SKIPPED, "end_time": now(), "reason": reason})
        txn.expect_revision(keys.task(task.id), task_revision).put_json(keys.task(task.id), record_json(skipped))
        txn.event("task.skipped", task_public_json(skipped), now().isoformat())
        assigned_tasks.append(skipped)
    applied, revision = await txn.commit()
    return Placed(applied, revision, assigned_tasks, new_ledgers)


async def note_reason(store: Store, task: Task, revision: int, reason: str) -> tuple[Task, int] | None:
    """Keep why a PENDING task waits visible on the task (no event: it is not a transition).

    Returns the task as stored and its new revision, or None if the task moved meanwhile
    (the next pass sees it again).
    """
    updated = task.model_copy(update={"reason": reason})
    key = store.keys.task(task.id)
    txn = store.txn().expect_revision(key, revision).put_json(key, record_json(updated))
    applied, new_revision = await txn.commit()
    return (updated, new_revision) if applied else None


async def start(
    store: Store, task_id: str, node_id: str, attempt: int, *, read: tuple[Task, int] | None = None
) -> tuple[Task, int] | None:
    """ASSIGNED -> RUNNING by the worker ``node_id``, for placement number ``attempt`` only.

    ``read``: the task and its mod revision as the caller just read them (one read less;
    if it has moved since, the transaction compares and does not apply). Returns the
    running task and its new mod revision, or None.
    """
    read = read or await read_task(store, task_id)
    if read is None:
        return None
    task, revision = read
    if task.state != TaskState.ASSIGNED or task.node_id != node_id or task.attempts != attempt:
        return None
    txn = store.txn()
    running = mark_running(store, txn, task, revision)
    applied, new_revision = await txn.commit()
    return (running, new_revision) if applied else None


def mark_running(store: Store, txn: Txn, task: Task, revision: int) -> Task:
    """Add ``task`` RUNNING (compared at ``revision``) and its event to ``txn``; the task as it will be."""
    running = task.model_copy(update={"state": TaskState.RUNNING, "start_time": now(), "end_time": None})
    txn.expect_revision(store.keys.task(task.id), revision).put_json(store.keys.task(task.id), record_json(running))
    txn.event("task.running", task_public_json(running), now().isoformat())
    return running


async def _with_ledger(
    store: Store,
    task_id: str,
    change: Callable[[Task], tuple[Task, str] | None],
    *,
    known: tuple[Task, int] | None = None,
    puts: dict[str, bytes] | None = None,
    absent: str | None = None,
) -> Task | None:
    """Apply ``change`` to the task, releasing its resources from its node's ledger.

    ``change`` returns the new task and the event type, or None when the transition no
    longer applies (the task moved on). Retries, for as long as it takes, while only the
    ledger raced: a report must never be dropped. ``known``: the task and its revision as
    the caller last wrote them, tried first without a read (a stale one only costs a
    retry). ``puts``: keys written in the same transaction, if it applies (an empty value
    deletes the key). ``absent``: a key
    that must not exist when it applies; if it does, nothing is written and None returned.
    """
    keys = store.keys
    untried = [known] if known is not None else []  # the known one, for the first try only

    async def step() -> tuple[bool, Task | None]:
        read = untried.pop() if untried else await read_task(store, task_id)
        result = None if read is None else change(read[0])
        if read is None or result is None:
            return True, None
        (task, revision), (new_task, event) = read, result
        txn = store.txn().expect_revision(keys.task(task_id), revision)
        txn.put_json(keys.task(task_id), record_json(new_task))
        txn.event(event, task_public_json(new_task), now().isoformat())
        for key, value in (puts or {}).items():
            if value:
                txn.put(key, value)
            else:
                txn.delete(key)
        if absent is not None:
            txn.expect_absent(absent)
        applied = await commit_releasing(store, txn, task)
        if not applied and absent is not None and await store.get(absent) is not None:
            return True, None
        return applied, new_task

    return await until_applied(step)


async def finish(
    store: Store,
    task_id: str,
    node_id: str,
    attempt: int,
    *,
    exit_code: int | None,
    reason: str | None = None,
    known: tuple[Task, int] | None = None,
    log_tail: bytes | None = None,
) -> Task | None:
    """RUNNING -> COMPLETED (exit 0) or FAILED, reported by the worker that ran it.

    ``known``: the RUNNING task and its revision as the worker wrote them (``start``).
    ``log_tail``: the tail of its output, saved in the same transaction (``save_log_tail``);
    empty, the logs key is deleted (as ``runs.finish_many`` does: GET .../logs answers "").
    """

    def change(task: Task) -> tuple[Task, str] | None:
        return finished(task, node_id, attempt, exit_code, reason)

    puts = None if log_tail is None else {store.keys.logs(task_id): log_tail}
    return await _with_ledger(store, task_id, change, known=known, puts=puts)


def finished(
    task: Task, node_id: str, attempt: int, exit_code: int | None, reason: str | None
) -> tuple[Task, str] | None:
    """``task`` COMPLETED (exit 0, no reason) or FAILED, and the event type; None if it moved on."""
    if task.state != TaskState.RUNNING or task.node_id != node_id or task.attempts != attempt:
        return None  # fenced: the task was rescheduled or deleted meanwhile
    ok = exit_code == 0 and reason is None
    state = TaskState.COMPLETED if ok else TaskState.FAILED
    done = task.model_copy(update={"state": state, "end_time": now(), "exit_code": exit_code, "reason": reason})
    return done, "task.completed" if ok else "task.failed"


async def requeue(
    store: Store,
    task_id: str,
    node_id: str,
    reason: str,
    *,
    count_attempt: bool = True,
    attempt: int | None = None,
    stopping: bool = False,
    node_lost: bool = False,
) -> Task | None:
    """Send a task placed on ``node_id`` back to PENDING (or FAILED once out of attempts).

    ``count_attempt=False`` (a drain eviction, not a failure) skips the retry limit.
    ``attempt``: only that placement (a worker requeuing what it stopped, which may since
    have been placed on it anew). ``stopping``: its copy may still run there (an eviction):
    it is placed again only once the node confirms the copy stopped (``stopped``).
    ``node_lost``: the master requeuing the tasks of a node whose lease expired; it applies
    only while the node's heartbeat key is still absent, in the same transaction. A worker
    restarting just then registers first and starts what is assigned to it: the requeue
    must not then place that task elsewhere too (None: the node is back, nothing written).
    """

    def change(task: Task) -> tuple[Task, str] | None:
        if task.node_id != node_id or not task.state.holds_resources:
            return None
        if attempt is not None and task.attempts != attempt:
            return None
        if count_attempt and task.attempts >= task.max_attempts:
            failed = task.model_copy(
                update={"state": TaskState.FAILED, "end_time": now(), "reason": f"{reason}; retry limit reached"}
            )
            return failed, "task.failed"
        # ``attempts`` keeps counting placements either way: it is also the fencing token
        # that tells a worker's late report from the current placement's.
        update = {"state": TaskState.PENDING, "node_id": None, "start_time": None, "reason": reason, "devices": {}}
        pending = task.model_copy(update=update | {"stopping": node_id if stopping else None})
        return pending, "task.rescheduled"

    return await _with_ledger(store, task_id, change, absent=store.keys.alive(node_id) if node_lost else None)


@dataclass(frozen=True)
class Preempted:
    """What ``preempt`` wrote: the task, PENDING again, and its former node's release, at ``revision``."""

    task: Task
    release: Release
    revision: int


async def preempt(store: Store, task_id: str, node_id: str, attempt: int, reason: str) -> Preempted | None:
    """ASSIGNED | RUNNING -> PENDING on ``node_id`` for placement ``attempt``: evicted for a higher priority.

    The master calls it for each victim the shared pass chose (``orchsim.scheduling.preemption``),
    before it commits the preemptor's placement. The node's releases take the request back
    and the worker's inbox key goes, in the same transaction as the event ``task.preempted``;
    the worker stops the run as for any task no longer assigned to it. ``attempts`` keeps
    counting placements (the next one is one more, as in the simulator), and never fails the
    task: being preempted is not the task's fault. The victim rejoins the queue behind the
    tasks queued before its eviction (``queued_since``), as in the simulator. None when the task moved on meanwhile
    (finished, deleted, placed anew): then it holds nothing here any more either.
    """

    async def step() -> tuple[bool, Preempted | None]:
        read = await read_task(store, task_id)
        if read is None:
            return True, None
        task, revision = read
        if task.node_id != node_id or not task.state.holds_resources or task.attempts != attempt:
            return True, None
        update = {"state": TaskState.PENDING, "node_id": None, "start_time": None, "reason": reason, "devices": {}}
        evicted = now()  # its new place: behind the tasks queued before it (``Task.queued_since``)
        pending = task.model_copy(update=update | {"stopping": node_id, "queued_since": evicted})
        txn = store.txn().expect_revision(store.keys.task(task_id), revision)
        txn.put_json(store.keys.task(task_id), record_json(pending))
        txn.event("task.preempted", task_public_json(pending), evicted.isoformat())
        applied, new_revision, release = await commit_released(store, txn, task)
        return applied, Preempted(pending, release or Release(Released()), new_revision) if applied else None

    return await until_applied(step)


async def stopped(store: Store, task_id: str, node_id: str) -> bool:
    """The copy an eviction left on ``node_id`` has stopped: the task may be placed again (worker; no event).

    Clears ``stopping`` if it names ``node_id``; False when there was nothing to clear.
    """

    async def step() -> tuple[bool, bool]:
        read = await read_task(store, task_id)
        if read is None or read[0].stopping != node_id:
            return True, False
        task, revision = read
        key = store.keys.task(task_id)
        cleared = task.model_copy(update={"stopping": None})
        applied, _ = await store.txn().expect_revision(key, revision).put_json(key, record_json(cleared)).commit()
        return applied, applied

    return await until_applied(step)


async def remove(store: Store, task_id: str) -> bool:
    """Delete a task; if placed, free its resources and pull it from the worker's inbox."""
    keys = store.keys

    async def step() -> tuple[bool, bool]:
        read = await read_task(store, task_id)
        if read is None:
            return True, False
        task, revision = read
        txn = store.txn().expect_revision(keys.task(task_id), revision)
        txn.delete(keys.task(task_id)).delete(keys.logs(task_id))
        txn.event("task.deleted", task_public_json(task), now().isoformat())
        applied = await commit_releasing(store, txn, task)
        return applied, applied

    return await until_applied(step)


async def save_log_tail(store: Store, task_id: str, tail: bytes) -> None:
    """The tail of a task's output, written by its worker before it reports (no compare: last one wins)."""
    await store.put(store.keys.logs(task_id), tail)
