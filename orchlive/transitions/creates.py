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

import asyncio
import contextlib

from orchlive.models import Task
from orchlive.store import Store
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
    """Creates tasks for the API, grouping the submissions that arrive together."""

    def __init__(self, store: Store, *, max_tasks: int = MAX_TASKS, max_bytes: int = MAX_BYTES) -> None:
        self.store = store
        self.max_tasks = max_tasks
        self.max_bytes = max_bytes
        self._waiting: list[tuple[Task, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.transactions = 0  # how many transactions carried creations (tests, benchmarks)

    async def create(self, task: Task) -> Task:
        """``create_task``, sharing a transaction with the submissions that arrive meanwhile."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((task, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await done
        return task

    def _take(self) -> list[tuple[Task, asyncio.Future[None]]]:
        """The next batch: the oldest waiting submissions, within ``max_tasks`` and ``max_bytes``."""
        size, count, ids = 0, 0, set()
        for task, _ in self._waiting:
            cost = 2 * record_size(task)
            if count and (count >= self.max_tasks or size + cost > self.max_bytes or task.id in ids):
                break  # an id twice (one Idempotency-Key resent) would make etcd refuse the transaction
            size, count = size + cost, count + 1
            ids.add(task.id)
        batch, self._waiting = self._waiting[:count], self._waiting[count:]
        return batch

    async def _flush(self) -> None:
        while self._waiting:
            batch = self._take()
            try:
                await self._commit(batch)
            except asyncio.CancelledError:
                for _, done in batch + self._waiting:
                    done.cancel()
                raise

    async def _commit(self, batch: list[tuple[Task, asyncio.Future[None]]]) -> None:
        """Commit one batch and answer its submissions (a result or the error each gets)."""
        live = [(task, done) for task, done in batch if not done.cancelled()]  # clients that left
        if not live:
            return
        self.transactions += 1
        try:
            await create_tasks(self.store, [task for task, _ in live], [])
        except ConflictError:
            pass  # some id was taken: below, task by task
        except Exception as err:  # etcd unavailable: every submission of the batch says so
            for _, done in live:
                _answer(done, err)
            return
        else:
            for _, done in live:
                _answer(done, None)
            return
        for task, done in live:  # an id was taken: alone, only that one fails
            try:
                await create_task(self.store, task)
            except Exception as err:
                _answer(done, err)
            else:
                _answer(done, None)


def _answer(done: asyncio.Future[None], err: Exception | None) -> None:
    with contextlib.suppress(asyncio.InvalidStateError):  # the client left (cancelled) meanwhile
        if err is None:
            done.set_result(None)
        else:
            done.set_exception(err)
