"""Task state transitions, each one compare-and-swap transaction on etcd.

Master and worker share these so the rules live in one place:

* ``place``     PENDING  -> ASSIGNED   (master; the node's ledger gains the request)
* ``start``     ASSIGNED -> RUNNING    (worker)
* ``finish``    RUNNING  -> COMPLETED | FAILED (worker; the ledger gives the request back)
* ``requeue``   ASSIGNED | RUNNING -> PENDING, or FAILED past the retry limit (node lost, eviction)
* ``remove``    any -> deleted         (API ``DELETE``)

A transition compares the task's mod revision it read and, when resources move, the
node ledger's; if another party changed either in between, the transaction does not
apply and the caller re-reads. The assignment key (a worker's inbox) is created and
deleted in the same transactions, and the event describing the change is written
with them, so the event stream never shows a transition that did not happen.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchlive.models import Resources, Task, TaskState, now
from orchlive.store import Entry, Store, Txn

__all__ = ["Ledger", "Placement", "finish", "place", "read_ledger", "read_task", "remove", "requeue", "start"]

log = logging.getLogger(__name__)
# One lock per node ledger per process: a worker finishing many tasks at once (or the
# master placing many) takes turns instead of racing itself; only cross-process races
# are left to the compare-and-swap, with a jittered back-off.
_ledger_locks: dict[tuple[int, str], asyncio.Lock] = {}


def _ledger_lock(store: Store, node_id: str) -> asyncio.Lock:
    key = (id(store), node_id)
    lock = _ledger_locks.get(key)
    if lock is None:
        lock = _ledger_locks[key] = asyncio.Lock()
    return lock


async def _backoff(attempt: int) -> None:
    await asyncio.sleep(min(0.001 * 2**attempt, 0.1) * random.random())


# Float amounts (any resource but cpu and memory may be fractional) are summed and later
# subtracted by the very same numbers; what drift is left is a few ulps, read as 0.
_DRIFT = 1e-9


@dataclass
class Ledger:
    """What is allocated on one node: an amount per resource name and the task ids holding them.

    Stored as ``{"allocated": {"cpu": 500, "memory": 256, "gpu": 1000}, "tasks": [...]}``;
    the fixed ``{"cpu", "memory", "gpu", "tasks"}`` layout of earlier versions still loads.
    """

    allocated: dict[str, int | float] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ledger:
        if "allocated" in data:
            amounts = dict(data["allocated"])
        else:  # written before resources had names: every key but "tasks" is an amount
            amounts = {name: amount for name, amount in data.items() if name != "tasks"}
        return cls(amounts, list(data.get("tasks", [])))

    def to_json(self) -> dict[str, Any]:
        return {"allocated": dict(self.allocated), "tasks": list(self.tasks)}

    def copy(self) -> Ledger:
        return Ledger(dict(self.allocated), list(self.tasks))

    def add(self, task: Task) -> None:
        if task.id in self.tasks:
            return
        for name, amount in task.resources.items():
            if amount:
                self.allocated[name] = self.allocated.get(name, 0) + amount
        self.tasks.append(task.id)

    def remove(self, task: Task) -> None:
        if task.id not in self.tasks:
            return  # already released: releases are idempotent
        for name, amount in task.resources.items():
            if amount:
                left = self.allocated.get(name, 0) - amount
                self.allocated[name] = 0 if abs(left) < _DRIFT else left
        self.tasks.remove(task.id)

    def on(self, capacity: Resources) -> Resources:
        """The allocation as Resources naming every resource of ``capacity`` (0 where nothing is held)."""
        amounts = dict.fromkeys(capacity, 0) | {name: max(amount, 0) for name, amount in self.allocated.items()}
        return Resources.model_validate(amounts)


async def read_task(store: Store, task_id: str) -> tuple[Task, int] | None:
    """A task and its mod revision, or None if it does not exist."""
    entry = await store.get(store.keys.task(task_id))
    return None if entry is None else (Task.model_validate_json(entry.value), entry.mod_revision)


async def read_ledger(store: Store, node_id: str) -> tuple[Ledger, int]:
    """A node's ledger and its mod revision (0 if it has none yet: an empty ledger)."""
    entry: Entry | None = await store.get(store.keys.alloc(node_id))
    if entry is None:
        return Ledger(), 0
    return Ledger.from_json(entry.json()), entry.mod_revision


def _task_json(task: Task) -> dict[str, Any]:
    return task.model_dump(mode="json")


@dataclass(frozen=True)
class Placement:
    """One decision of the master: put ``task`` (read at ``revision``) on ``node_id``."""

    task: Task
    revision: int
    node_id: str


async def place(
    store: Store, placements: list[Placement], ledgers: dict[str, tuple[Ledger, int]]
) -> tuple[bool, int, dict[str, Ledger]]:
    """PENDING -> ASSIGNED for a batch of decisions, all or nothing, in one transaction.

    The master decided with ``ledgers`` as it read them (ledger, mod revision; revision
    0 for a node without one). The transaction applies only if no task and no touched
    ledger moved since, and every target node is still alive. Batching turns a burst of
    submissions into a few round trips to etcd instead of one per task.

    Returns:
        (applied, revision of the transaction, the new ledgers of the touched nodes).
    """
    keys = store.keys
    txn = store.txn()
    new_ledgers: dict[str, Ledger] = {}
    for p in placements:
        assigned = p.task.model_copy(
            update={"state": TaskState.ASSIGNED, "node_id": p.node_id, "attempts": p.task.attempts + 1, "reason": None}
        )
        if p.node_id not in new_ledgers:
            ledger, ledger_revision = ledgers.get(p.node_id, (Ledger(), 0))
            new_ledgers[p.node_id] = ledger.copy()
            txn.expect_revision(keys.alloc(p.node_id), ledger_revision).expect_exists(keys.alive(p.node_id))
        new_ledgers[p.node_id].add(assigned)
        body = _task_json(assigned)
        txn.expect_revision(keys.task(p.task.id), p.revision)
        txn.put_json(keys.task(p.task.id), body)
        txn.put(keys.assignment(p.node_id, p.task.id), str(assigned.attempts).encode())
        txn.event("task.assigned", body, now().isoformat())
    for node_id, ledger in new_ledgers.items():
        txn.put_json(keys.alloc(node_id), ledger.to_json())
    applied, revision = await txn.commit()
    return applied, revision, new_ledgers


async def _commit_releasing(store: Store, txn: Txn, task: Task) -> bool:
    """Commit ``txn``, first adding the release of ``task``'s resources if it holds any.

    The release compares the node ledger's revision and pulls the task from the worker's
    inbox; it is built under the ledger's lock so that this process does not race itself.
    """
    if not (task.node_id and task.state.holds_resources):
        applied, _ = await txn.commit()
        return applied
    keys = store.keys
    async with _ledger_lock(store, task.node_id):
        ledger, ledger_revision = await read_ledger(store, task.node_id)
        ledger.remove(task)
        txn.expect_revision(keys.alloc(task.node_id), ledger_revision)
        txn.put_json(keys.alloc(task.node_id), ledger.to_json())
        txn.delete(keys.assignment(task.node_id, task.id))
        applied, _ = await txn.commit()
    return applied


async def _with_ledger(
    store: Store,
    task_id: str,
    change: Callable[[Task], tuple[Task, str] | None],
) -> Task | None:
    """Apply ``change`` to the task, releasing its resources from its node's ledger.

    ``change`` returns the new task and the event type, or None when the transition no
    longer applies (the task moved on). Retries, for as long as it takes, while only the
    ledger raced: a report must never be dropped.
    """
    keys = store.keys
    attempt = 0
    while True:
        read = await read_task(store, task_id)
        if read is None:
            return None
        task, revision = read
        result = change(task)
        if result is None:
            return None
        new_task, event = result
        txn = store.txn().expect_revision(keys.task(task_id), revision)
        txn.put_json(keys.task(task_id), _task_json(new_task))
        txn.event(event, _task_json(new_task), now().isoformat())
        applied = await _commit_releasing(store, txn, task)
        if applied:
            return new_task
        attempt += 1
        await _backoff(attempt)


async def start(store: Store, task_id: str, node_id: str, attempt: int) -> Task | None:
    """ASSIGNED -> RUNNING by the worker ``node_id``, for placement number ``attempt`` only."""
    read = await read_task(store, task_id)
    if read is None:
        return None
    task, revision = read
    if task.state != TaskState.ASSIGNED or task.node_id != node_id or task.attempts != attempt:
        return None
    running = task.model_copy(update={"state": TaskState.RUNNING, "start_time": now(), "end_time": None})
    txn = (
        store.txn()
        .expect_revision(store.keys.task(task_id), revision)
        .put_json(store.keys.task(task_id), _task_json(running))
        .event("task.running", _task_json(running), now().isoformat())
    )
    applied, _ = await txn.commit()
    return running if applied else None


async def finish(
    store: Store,
    task_id: str,
    node_id: str,
    attempt: int,
    *,
    exit_code: int | None,
    reason: str | None = None,
) -> Task | None:
    """RUNNING -> COMPLETED (exit 0) or FAILED, reported by the worker that ran it."""

    def change(task: Task) -> tuple[Task, str] | None:
        if task.state != TaskState.RUNNING or task.node_id != node_id or task.attempts != attempt:
            return None  # fenced: the task was rescheduled or deleted meanwhile
        ok = exit_code == 0 and reason is None
        state = TaskState.COMPLETED if ok else TaskState.FAILED
        done = task.model_copy(update={"state": state, "end_time": now(), "exit_code": exit_code, "reason": reason})
        return done, "task.completed" if ok else "task.failed"

    return await _with_ledger(store, task_id, change)


async def requeue(store: Store, task_id: str, node_id: str, reason: str, *, count_attempt: bool = True) -> Task | None:
    """Send a task placed on ``node_id`` back to PENDING (or FAILED once out of attempts).

    ``count_attempt=False`` (a drain eviction, not a failure) skips the retry limit.
    """

    def change(task: Task) -> tuple[Task, str] | None:
        if task.node_id != node_id or not task.state.holds_resources:
            return None
        if count_attempt and task.attempts >= task.max_attempts:
            failed = task.model_copy(
                update={"state": TaskState.FAILED, "end_time": now(), "reason": f"{reason}; retry limit reached"}
            )
            return failed, "task.failed"
        # ``attempts`` keeps counting placements either way: it is also the fencing token
        # that tells a worker's late report from the current placement's.
        pending = task.model_copy(
            update={"state": TaskState.PENDING, "node_id": None, "start_time": None, "reason": reason}
        )
        return pending, "task.rescheduled"

    return await _with_ledger(store, task_id, change)


async def remove(store: Store, task_id: str) -> bool:
    """Delete a task; if placed, free its resources and pull it from the worker's inbox."""
    keys = store.keys
    attempt = 0
    while True:
        read = await read_task(store, task_id)
        if read is None:
            return False
        task, revision = read
        txn = store.txn().expect_revision(keys.task(task_id), revision)
        txn.delete(keys.task(task_id)).delete(keys.logs(task_id))
        txn.event("task.deleted", _task_json(task), now().isoformat())
        applied = await _commit_releasing(store, txn, task)
        if applied:
            return True
        attempt += 1
        await _backoff(attempt)
