"""Group commit of submissions: concurrent ``POST /api/v1/tasks`` share one etcd transaction.

Under load the API spends most of a submission waiting on its own ``create_task``
transaction, one round trip and one raft entry per task. Here a single task (no gang, no
parents: gangs and DAGs keep their own transaction) joins a queue; while one transaction
is in flight the next ones gather, and go together in the next (``groups.create_tasks``
with no edges: each task keeps its compare, its record and its ``task.created`` event). A
lone submission still goes at once, alone: nothing waits on a timer.

A batch that does not apply (some id already taken: a 64-bit collision) is retried task
by task, so that only the colliding submission gets its ``ConflictError``; an etcd
failure fails every submission of the batch (each answers 503; none is half-written,
since a transaction applies whole or not at all).
"""

from __future__ import annotations

from orchlive.models import Task
from orchlive.store import Store
from orchlive.transitions.batching import GroupCommit
from orchlive.transitions.core import ConflictError, record_size
from orchlive.transitions.groups import create_tasks
from orchlive.transitions.tasks import create_task

__all__ = ["CreateBatcher"]

# etcd refuses a transaction of more than 128 operations by default (``--max-txn-ops``); a
# creation costs 2 puts and 1 compare. And about 1 MiB of records and events at most, below
# etcd's 1.5 MiB request limit (each task is written twice: its record and its event).
MAX_TASKS = 32
MAX_BYTES = 1024 * 1024


class CreateBatcher:
    """Creates tasks for the API, grouping the submissions that arrive together (``GroupCommit``)."""

    def __init__(self, store: Store, *, max_tasks: int = MAX_TASKS, max_bytes: int = MAX_BYTES) -> None:
        self.store = store
        # An id twice in one batch (one Idempotency-Key resent) would make etcd refuse it.
        self.batches: GroupCommit[Task, None] = GroupCommit(
            self._commit,
            max_items=max_tasks,
            max_bytes=max_bytes,
            size=lambda task: 2 * record_size(task),
            key=lambda task: task.id,
        )

    @property
    def transactions(self) -> int:
        """How many transactions carried creations (tests, benchmarks)."""
        return self.batches.transactions

    async def create(self, task: Task) -> Task:
        """``create_task``, sharing a transaction with the submissions that arrive meanwhile."""
        await self.batches.submit(task)
        return task

    async def _commit(self, tasks: list[Task]) -> list[Exception | None]:
        """One transaction for the batch; if an id was taken, task by task, so that only that one fails."""
        try:
            await create_tasks(self.store, tasks, [])
        except ConflictError:
            pass
        else:
            return [None] * len(tasks)
        answers: list[Exception | None] = []
        for task in tasks:
            try:
                await create_task(self.store, task)
            except Exception as err:
                answers.append(err)
            else:
                answers.append(None)
        return answers
