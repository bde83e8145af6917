"""Dependencies in the live cluster: a task waits for its parents, and fails or is skipped when one fails.

The rules are the simulator's (``orchsim.engine.task_structure``): a task with ``after``
joins the queue once every parent has completed (``on: success``, the default) or ended at
all (``on: completion``); with ``on: success``, a parent that ended otherwise (failed,
skipped, deleted) ends the child at once, FAILED (``if_parent_fails: fail``, the default)
or SKIPPED (``skip``), which its own children see in turn. A parent that is a gang has
ended when all its replicas have: failed if one failed, completed if one completed.

The master calls ``hold`` at the start of each pass, over the pending tasks: it settles
the children of failed parents (``transitions.move``, event ``task.failed`` or
``task.skipped``) and returns the tasks still held, with why, which the pass leaves out of
the queue (they stay PENDING, their reason says which parents they wait for).
"""

from __future__ import annotations

from orchlive import transitions
from orchlive.cache import ClusterCache
from orchlive.models import Task, TaskState
from orchlive.store import Store

__all__ = ["hold", "parent_state", "verdict"]


def parent_state(cache: ClusterCache, parent: str) -> TaskState | None:
    """A parent's state: the task's, or its gang's (see the module docstring); None if it is gone."""
    read = cache.tasks.get(parent)
    if read is None:
        return None
    task = read[0]
    if task.gang is None:
        return task.state
    states = {cache.tasks[rid][0].state for rid in task.replica_ids() if rid in cache.tasks}
    if not all(state.terminal for state in states):
        return TaskState.RUNNING if states - {TaskState.PENDING} else TaskState.PENDING
    for state in (TaskState.FAILED, TaskState.COMPLETED):
        if state in states:
            return state
    return TaskState.SKIPPED


def verdict(cache: ClusterCache, task: Task) -> tuple[TaskState | None, str]:
    """``(None, "")``: it may run; ``(PENDING, why)``: held; ``(FAILED or SKIPPED, why)``: settle it so."""
    waiting = []
    for parent in task.after:
        state = parent_state(cache, parent)
        if state is not None and not state.terminal:
            waiting.append(f"{parent} ({state.value})")
            continue
        if task.on == "success" and state != TaskState.COMPLETED:
            ended = "no longer exists" if state is None else f"ended {state.value}"
            settled = TaskState.SKIPPED if task.if_parent_fails == "skip" else TaskState.FAILED
            return settled, f"{settled.value.lower()}: parent task {parent} {ended}"
    if waiting:
        return TaskState.PENDING, "waiting for parent task(s): " + ", ".join(waiting)
    return None, ""


async def hold(store: Store, cache: ClusterCache, pending: list[tuple[Task, int]]) -> tuple[dict[str, str], int]:
    """Settle what a failed parent ends; returns the pending tasks still held (with why) and how many were settled."""
    held: dict[str, str] = {}
    settled = 0
    for task, _ in pending:
        if not task.after:
            continue
        state, why = verdict(cache, task)
        if state == TaskState.PENDING:
            held[task.id] = why
        elif state is not None:
            done = await transitions.move(store, task.id, state, why, when=lambda t: t.state == TaskState.PENDING)
            settled += done is not None
            held[task.id] = why  # out of this pass's queue either way
    return held, settled
