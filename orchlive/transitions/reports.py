"""Group commit of a worker's reports: tasks that end together share one etcd transaction.

A report (RUNNING -> COMPLETED or FAILED) reads the node's ledger and releases and
commits the task, its event, its log tail and the release: two requests and one raft
entry per task. Under load a worker's tasks end many at a time, and each report waited
on the node's ledger lock behind the others. Here a report joins a queue; while one
transaction is in flight the next ones gather and go together (one read of the ledger
and releases, one transaction), as ``creates.CreateBatcher`` does for submissions.

Only reports that know the task as the worker wrote it (RUNNING, with its mod revision)
join: the transaction compares each task's revision and the releases' revision, so it
applies whole or not at all. One that does not apply (a task moved on: deleted, requeued
by a master that presumed the node lost) changes nothing, and each of its reports goes
again alone through ``finish``, which reads the task and decides. An etcd failure fails
every report of the batch; the worker retries each.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from orchlive.models import Task, now, task_public_json
from orchlive.releases import drop_grants
from orchlive.store import Store
from orchlive.transitions.core import ledger_lock, read_ledger_and_released, record_json, record_size
from orchlive.transitions.tasks import finished

__all__ = ["Report", "ReportBatcher", "finish_many"]

# etcd refuses more than 128 operations in a transaction (``--max-txn-ops``): a report
# writes 4 (the task, its event, its log tail, the inbox key's delete), the batch 2 more.
MAX_REPORTS = 24
MAX_BYTES = 1024 * 1024  # below etcd's 1.5 MiB request limit: records, events and log tails


@dataclass(frozen=True)
class Report:
    """How a task's run ended, as its worker reports it.

    ``running``: the task as the worker marked it RUNNING, with that write's mod revision.
    """

    running: tuple[Task, int]
    exit_code: int | None
    reason: str | None
    log_tail: bytes

    def size(self) -> int:
        """An upper estimate of the bytes it writes (its record twice, with the event, and its tail)."""
        return 2 * record_size(self.running[0]) + len(self.log_tail)


async def finish_many(store: Store, node_id: str, reports: list[Report]) -> list[Task] | None:
    """Every report's transition in one transaction; the tasks as written, or None if it did not apply.

    Each task must still be at its known revision, RUNNING on ``node_id`` at its attempt.
    """
    keys = store.keys
    txn = store.txn()
    done: list[tuple[Task, Task, str]] = []
    for report in reports:
        task, revision = report.running
        change = finished(task, node_id, task.attempts, report.exit_code, report.reason)
        if change is None:
            return None
        txn.expect_revision(keys.task(task.id), revision)
        done.append((task, *change))
    async with ledger_lock(store, node_id):
        (placed, placed_revision), (released, released_revision) = await read_ledger_and_released(store, node_id)
        ledger_changed = False
        for (task, new_task, event), report in zip(done, reports, strict=True):
            released.release(task, placed)
            ledger_changed |= drop_grants(placed, task.id)
            txn.put_json(keys.task(task.id), record_json(new_task))
            txn.event(event, task_public_json(new_task), now().isoformat())
            txn.put(keys.logs(task.id), report.log_tail)
            txn.delete(keys.assignment(node_id, task.id))
        txn.expect_revision(keys.released(node_id), released_revision)
        txn.put_json(keys.released(node_id), released.to_json())
        if ledger_changed:  # a device's share is per task: the ledger itself must change
            txn.expect_revision(keys.alloc(node_id), placed_revision).put_json(keys.alloc(node_id), placed.to_json())
        applied, _ = await txn.commit()
    return [new_task for _, new_task, _ in done] if applied else None


class ReportBatcher:
    """A worker's reports, grouped when they arrive together (``finish_many``)."""

    def __init__(
        self, store: Store, node_id: str, *, max_reports: int = MAX_REPORTS, max_bytes: int = MAX_BYTES
    ) -> None:
        self.store = store
        self.node_id = node_id
        self.max_reports = max_reports
        self.max_bytes = max_bytes
        self._waiting: list[tuple[Report, asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.transactions = 0  # how many transactions carried reports (tests)

    def fits(self, report: Report) -> bool:
        """Whether ``report`` may join a batch: it knows its revision and is small enough to share."""
        return report.running[1] > 0 and report.size() <= self.max_bytes // 4

    async def finish(self, report: Report) -> bool:
        """True once the report is written with the others; False: it must go alone (``finish``)."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((report, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await done

    def _take(self) -> list[tuple[Report, asyncio.Future[bool]]]:
        """The oldest waiting reports, within ``max_reports`` and ``max_bytes`` (at least one)."""
        size, count = 0, 0
        for report, _ in self._waiting[: self.max_reports]:
            size += report.size()
            if count and size > self.max_bytes:
                break
            count += 1
        batch, self._waiting = self._waiting[:count], self._waiting[count:]
        return batch

    async def _flush(self) -> None:
        while self._waiting:
            batch = self._take()
            try:
                written = await finish_many(self.store, self.node_id, [report for report, _ in batch])
            except Exception as err:  # etcd unavailable: every report of the batch is retried by its worker
                for _, done in batch:
                    if not done.done():
                        done.set_exception(err)
                continue
            self.transactions += 1
            for _, done in batch:
                if not done.done():
                    done.set_result(written is not None)
