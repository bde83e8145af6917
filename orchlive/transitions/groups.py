"""Transitions of task groups: a submission's records at once, a gang moved as one, a DAG's cascade.

* ``create_tasks``  -> PENDING for every record of one submission (a gang's replicas, a
  DAG's tasks) and the dependency index, in ONE transaction (``task.created`` each);
* ``move``          a task to PENDING, FAILED or SKIPPED whatever it was doing, its node's
  resources released (the master keeps a gang whole, ``orchlive.gangs``, and settles a
  task whose parent failed, ``orchlive.dependencies``);
* ``remove_tree``   a task, its gang and every descendant, leaves first (API ``DELETE``).
"""

from __future__ import annotations

from collections.abc import Callable

from orchlive.models import Task, TaskState, now, task_public_json
from orchlive.store import Store
from orchlive.transitions.core import ConflictError, read_task, record_json
from orchlive.transitions.tasks import _with_ledger, remove

__all__ = ["create_tasks", "move", "remove_tree"]

_EVENTS = {TaskState.PENDING: "task.rescheduled", TaskState.FAILED: "task.failed", TaskState.SKIPPED: "task.skipped"}


async def create_tasks(store: Store, tasks: list[Task], edges: list[tuple[str, str]]) -> list[Task]:
    """Every task PENDING and each ``(parent, child)`` edge indexed, all or nothing.

    Each parent outside ``tasks`` must still exist (compared): a parent deleted meanwhile
    makes the submission a 409 instead of an orphan. Raises ``ConflictError``.
    """
    keys, made = store.keys, {task.id for task in tasks}
    txn = store.txn()
    for parent in sorted({parent for parent, _ in edges} - made):
        txn.expect_exists(keys.task(parent))
    for task in tasks:
        txn.expect_absent(keys.task(task.id)).put_json(keys.task(task.id), record_json(task))
        txn.event("task.created", task_public_json(task), now().isoformat())
    for parent, child in edges:
        txn.put(keys.child(parent, child), b"")
    applied, _ = await txn.commit()
    if not applied:
        raise ConflictError("a parent task was deleted meanwhile (or a task id collided); retry")
    return tasks


async def move(store: Store, task_id: str, state: TaskState, reason: str, when: Callable[[Task], bool]) -> Task | None:
    """The task to ``state`` (PENDING, FAILED or SKIPPED) if ``when(task)``, releasing what it holds.

    PENDING clears its placement (node, devices, times, exit code) and counts no attempt:
    the gang was requeued for another replica's sake. None when ``when`` no longer holds
    (the task moved on meanwhile) or the task is gone.
    """

    def change(task: Task) -> tuple[Task, str] | None:
        if not when(task):
            return None
        if state == TaskState.PENDING:
            update = {"node_id": None, "start_time": None, "end_time": None, "exit_code": None, "devices": {}}
            update["stopping"] = task.node_id if task.state.holds_resources else task.stopping  # its copy may run
        else:
            update = {"end_time": now()}
        return task.model_copy(update=update | {"state": state, "reason": reason}), _EVENTS[state]

    return await _with_ledger(store, task_id, change)


async def _children(store: Store, task_id: str) -> list[str]:
    entries, _ = await store.range(store.keys.children(task_id), keys_only=True)
    return [store.keys.last(entry.key) for entry in entries]


async def remove_tree(store: Store, task_id: str) -> bool:
    """Delete ``task_id``, the other replicas of its gang and every task that waits on them, transitively.

    Descendants go first, so that the master never sees a child without its parent (it
    would fail the child). Returns False if ``task_id`` does not exist.
    """
    read = await read_task(store, task_id)
    if read is None:
        return False
    order: list[Task] = []
    seen: set[str] = set()
    todo = [read[0]]
    while todo:
        task = todo.pop(0)
        ids = [i for i in task.replica_ids() if i not in seen]
        seen.update(ids)
        for replica in ids:
            found = task if replica == task.id else (await read_task(store, replica) or (None,))[0]
            if found is not None:
                order.append(found)
        for child in await _children(store, task.gang or task.id):
            if child not in seen and (again := await read_task(store, child)) is not None:
                todo.append(again[0])
    for task in reversed(order):
        await remove(store, task.id)
        index = [store.keys.child(parent, task.id) for parent in task.after]
        index += [store.keys.child(task.id, child) for child in await _children(store, task.id)]
        if index:
            txn = store.txn()
            for key in index:
                txn.delete(key)
            await txn.commit()
    return True
