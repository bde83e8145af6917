"""Group commit of a worker's writes about its runs: the starts, and the reports, of tasks that go together.

A start (ASSIGNED -> RUNNING) is one transaction per task; a report (RUNNING -> COMPLETED
or FAILED) reads the node's ledger and releases, then commits the task, its event, its log
tail and the release: two requests per task, each waiting on the node's ledger lock behind
the others. Under load a worker's tasks start and end many at a time. Here each joins a
queue (``batching.GroupCommit``): while one transaction is in flight the next ones gather
and go together, as ``creates.CreateBatcher`` does for submissions.

Each item knows its task as the worker last read or wrote it (with its mod revision), and
the transaction compares every one (and, for reports, the releases), so a batch applies
whole or not at all. One that does not apply (a task moved on: deleted, requeued by a
master that presumed the node lost) changes nothing, and each of its items is answered
None or False: the worker then goes alone through ``start`` or ``finish``, which read the
task and decide. An etcd failure fails every item of the batch; the worker retries each.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchlive.models import Task, TaskState, now, task_public_json
from orchlive.store import Store
from orchlive.transitions.batching import GroupCommit
from orchlive.transitions.core import commit_releasing, read_tasks, record_json, record_size
from orchlive.transitions.tasks import finished, mark_running

__all__ = ["Report", "batchable", "finish_many", "read_batches", "report_batches", "start_batches", "start_many"]

# etcd refuses more than 128 operations in a transaction (``--max-txn-ops``): a report
# writes 4 (the task, its event, its log tail, the inbox key's delete), the batch 2 more;
# a start writes 2 (the task and its event).
MAX_REPORTS = 24
MAX_STARTS = 32
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
    The releases are ``commit_releasing``'s, for all the tasks at once.
    """
    keys = store.keys
    txn = store.txn()
    done: list[Task] = []
    for report in reports:
        task, revision = report.running
        change = finished(task, node_id, task.attempts, report.exit_code, report.reason)
        if change is None:
            return None
        new_task, event = change
        txn.expect_revision(keys.task(task.id), revision).put_json(keys.task(task.id), record_json(new_task))
        txn.event(event, task_public_json(new_task), now().isoformat())
        if report.log_tail:
            txn.put(keys.logs(task.id), report.log_tail)
        else:  # nothing to keep (GET .../logs answers "" either way): no key, no watch event; an earlier try's goes
            txn.delete(keys.logs(task.id))
        done.append(new_task)
    applied = await commit_releasing(store, txn, *(report.running[0] for report in reports))
    return done if applied else None


def batchable(report: Report) -> bool:
    """Whether ``report`` may share a batch: it knows its revision and is small enough to share."""
    return report.running[1] > 0 and report.size() <= MAX_BYTES // 4


def report_batches(store: Store, node_id: str) -> GroupCommit[Report, bool]:
    """Reports of ``node_id``'s tasks, grouped (``finish_many``); each is answered False if its batch did not apply."""

    async def commit(reports: list[Report]) -> list[bool | Exception]:
        written = await finish_many(store, node_id, reports)
        return [written is not None] * len(reports)

    return GroupCommit(
        commit, max_items=MAX_REPORTS, max_bytes=MAX_BYTES, size=Report.size, key=lambda report: report.running[0].id
    )


async def start_many(store: Store, node_id: str, reads: list[tuple[Task, int]]) -> list[tuple[Task, int]] | None:
    """ASSIGNED -> RUNNING on ``node_id`` for every task as read, in one transaction.

    Returns each running task with its new revision, or None if the batch did not apply
    (a task moved since it was read, or is no longer ASSIGNED here).
    """
    txn = store.txn()
    running: list[Task] = []
    for task, revision in reads:
        if task.state != TaskState.ASSIGNED or task.node_id != node_id:
            return None
        running.append(mark_running(store, txn, task, revision))
    applied, revision = await txn.commit()
    return [(task, revision) for task in running] if applied else None


def start_batches(store: Store, node_id: str) -> GroupCommit[tuple[Task, int], tuple[Task, int] | None]:
    """Starts on ``node_id``, grouped (``start_many``); each is answered None if its batch did not apply."""

    async def commit(reads: list[tuple[Task, int]]) -> list[tuple[Task, int] | Exception | None]:
        started = await start_many(store, node_id, reads)
        return list(started) if started is not None else [None] * len(reads)

    return GroupCommit(
        commit,
        max_items=MAX_STARTS,
        max_bytes=MAX_BYTES,
        size=lambda read: 2 * record_size(read[0]),
        key=lambda read: read[0].id,
    )


def read_batches(store: Store) -> GroupCommit[str, tuple[Task, int] | None]:
    """Reads of tasks, grouped: the tasks a placement batch assigned to a worker arrive together."""

    async def commit(task_ids: list[str]) -> list[tuple[Task, int] | Exception | None]:
        return list(await read_tasks(store, task_ids))

    return GroupCommit(commit, max_items=MAX_STARTS, max_bytes=MAX_BYTES, size=lambda _: 0)
