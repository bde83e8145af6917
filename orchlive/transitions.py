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

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchlive.models import Task, TaskState, now
from orchlive.store import Entry, Store

__all__ = ["Ledger", "finish", "place", "read_ledger", "read_task", "remove", "requeue", "start"]

log = logging.getLogger(__name__)
_RETRIES = 50


@dataclass
class Ledger:
    """What is allocated on one node: resource totals and the task ids holding them."""

    cpu: int = 0
    memory: int = 0
    gpu: int = 0
    tasks: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ledger:
        return cls(int(data["cpu"]), int(data["memory"]), int(data.get("gpu", 0)), list(data["tasks"]))

    def to_json(self) -> dict[str, Any]:
        return {"cpu": self.cpu, "memory": self.memory, "gpu": self.gpu, "tasks": self.tasks}

    def add(self, task: Task) -> None:
        if task.id in self.tasks:
            return
        r = task.resources
        self.cpu, self.memory, self.gpu = self.cpu + r.cpu, self.memory + r.memory, self.gpu + r.gpu
        self.tasks.append(task.id)

    def remove(self, task: Task) -> None:
        if task.id not in self.tasks:
            return  # already released: releases are idempotent
        r = task.resources
        self.cpu, self.memory, self.gpu = self.cpu - r.cpu, self.memory - r.memory, self.gpu - r.gpu
        self.tasks.remove(task.id)


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


async def place(
    store: Store, task: Task, task_revision: int, node_id: str, ledger: Ledger, ledger_revision: int
) -> tuple[bool, int]:
    """PENDING -> ASSIGNED on ``node_id``, if neither the task nor the node's ledger moved.

    The caller (the master) decided with ``ledger`` as it read it at ``ledger_revision``.
    The node must still be alive. Returns (applied, revision).
    """
    assigned = task.model_copy(
        update={"state": TaskState.ASSIGNED, "node_id": node_id, "attempts": task.attempts + 1, "reason": None}
    )
    new_ledger = Ledger(ledger.cpu, ledger.memory, ledger.gpu, list(ledger.tasks))
    new_ledger.add(assigned)
    keys = store.keys
    txn = (
        store.txn()
        .expect_revision(keys.task(task.id), task_revision)
        .expect_revision(keys.alloc(node_id), ledger_revision)
        .expect_exists(keys.alive(node_id))
        .put_json(keys.task(task.id), _task_json(assigned))
        .put_json(keys.alloc(node_id), new_ledger.to_json())
        .put(keys.assignment(node_id, task.id), str(assigned.attempts).encode())
        .event("task.assigned", _task_json(assigned), now().isoformat())
    )
    return await txn.commit()


async def _with_ledger(
    store: Store,
    task_id: str,
    change: Callable[[Task], tuple[Task, str] | None],
) -> Task | None:
    """Apply ``change`` to the task, releasing its resources from its node's ledger.

    ``change`` returns the new task and the event type, or None when the transition no
    longer applies (the task moved on). Retries while only the ledger raced.
    """
    keys = store.keys
    for _ in range(_RETRIES):
        read = await read_task(store, task_id)
        if read is None:
            return None
        task, revision = read
        result = change(task)
        if result is None:
            return None
        new_task, event = result
        txn = store.txn().expect_revision(keys.task(task_id), revision)
        if task.node_id and task.state.holds_resources:
            ledger, ledger_revision = await read_ledger(store, task.node_id)
            ledger.remove(task)
            txn.expect_revision(keys.alloc(task.node_id), ledger_revision)
            txn.put_json(keys.alloc(task.node_id), ledger.to_json())
            txn.delete(keys.assignment(task.node_id, task_id))
        txn.put_json(keys.task(task_id), _task_json(new_task))
        txn.event(event, _task_json(new_task), now().isoformat())
        applied, _ = await txn.commit()
        if applied:
            return new_task
    log.warning("task %s: gave up after %d conflicting transactions", task_id, _RETRIES)
    return None


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
    for _ in range(_RETRIES):
        read = await read_task(store, task_id)
        if read is None:
            return False
        task, revision = read
        txn = store.txn().expect_revision(keys.task(task_id), revision)
        if task.node_id and task.state.holds_resources:
            ledger, ledger_revision = await read_ledger(store, task.node_id)
            ledger.remove(task)
            txn.expect_revision(keys.alloc(task.node_id), ledger_revision)
            txn.put_json(keys.alloc(task.node_id), ledger.to_json())
            txn.delete(keys.assignment(task.node_id, task_id))
        txn.delete(keys.task(task_id)).delete(keys.logs(task_id))
        txn.event("task.deleted", _task_json(task), now().isoformat())
        applied, _ = await txn.commit()
        if applied:
            return True
    return False
