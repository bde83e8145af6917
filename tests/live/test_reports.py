"""A worker's reports grouped in one transaction (``orchlive.transitions.reports``), on a real etcd.

Reports arriving together go in one transaction, and write what one ``finish`` each would
have written: the task's end state, its event, its log tail, the release of its request and
the removal of its inbox key. A batch where one task has moved on writes nothing, and says
so, so that each report goes again alone.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from orchlive import transitions
from orchlive.models import Ledger, NodeRecord, Resources, Task, TaskState
from orchlive.store import Store

pytestmark = pytest.mark.live


async def _running(store: Store, count: int) -> list[tuple[Task, int]]:
    """``count`` tasks of 100 cpu each, placed on w1 and started there: (task, revision) as RUNNING."""
    lease = await store.grant_lease(30)
    await transitions.register_node(store, NodeRecord(id="w1", capacity=Resources(cpu=4000, memory=8192)), lease)
    tasks = [
        await transitions.create_task(store, Task(name=f"t{i}", resources=Resources(cpu=100))) for i in range(count)
    ]
    reads = [await transitions.read_task(store, task.id) for task in tasks]
    ledger = await transitions.read_ledger(store, "w1")
    placements = [transitions.Placement(*read, "w1") for read in reads if read is not None]
    assert (await transitions.place(store, placements, {"w1": ledger})).applied
    started = [await transitions.start(store, task.id, "w1", 1) for task in tasks]
    assert all(s is not None for s in started)
    return [s for s in started if s is not None]


def _reports(running: list[tuple[Task, int]]) -> list[transitions.Report]:
    return [
        transitions.Report(r, exit_code=i, reason=None, log_tail=f"out {i}\n".encode()) for i, r in enumerate(running)
    ]


async def _batched(store: Store) -> None:
    running = await _running(store, 5)
    batcher = transitions.ReportBatcher(store, "w1")
    reports = _reports(running)
    assert all(batcher.fits(r) for r in reports)
    assert await asyncio.gather(*(batcher.finish(r) for r in reports)) == [True] * 5
    assert batcher.transactions == 1  # they arrived together: one transaction
    for i, (task, _) in enumerate(running):
        read = await transitions.read_task(store, task.id)
        assert read is not None
        done = read[0]
        assert (done.state, done.exit_code) == ((TaskState.COMPLETED, 0) if i == 0 else (TaskState.FAILED, i))
        log = await store.get(store.keys.logs(task.id))
        assert log is not None and log.value == f"out {i}\n".encode()
        assert await store.get(store.keys.assignment("w1", task.id)) is None
    assert await transitions.read_allocation(store, "w1") == Ledger({"cpu": 0}, 0)
    events = [e.json()["type"] for e in (await store.range(store.keys.events()))[0]]
    assert events.count("task.completed") == 1 and events.count("task.failed") == 4


async def _one_moved(store: Store) -> None:
    running = await _running(store, 3)
    # The middle task is deleted meanwhile (the API): its known revision no longer holds.
    assert await transitions.remove(store, running[1][0].id)
    held = await transitions.read_allocation(store, "w1")
    batcher = transitions.ReportBatcher(store, "w1")
    assert await asyncio.gather(*(batcher.finish(r) for r in _reports(running))) == [False] * 3
    for task, _ in (running[0], running[2]):  # nothing of the batch was written
        read = await transitions.read_task(store, task.id)
        assert read is not None and read[0].state == TaskState.RUNNING
    assert await transitions.read_allocation(store, "w1") == held
    # Alone, each report reads the task and decides: the deleted one is fenced, the others finish.
    outcomes = [
        await transitions.finish(store, task.id, "w1", 1, exit_code=0, known=(task, revision))
        for task, revision in running
    ]
    assert [o.state if o else None for o in outcomes] == [TaskState.COMPLETED, None, TaskState.COMPLETED]
    assert await transitions.read_allocation(store, "w1") == Ledger({"cpu": 0}, 0)


@pytest.mark.parametrize("scenario", [_batched, _one_moved], ids=["batched", "one-moved"])
def test_reports_arriving_together_share_one_transaction(etcd: Any, scenario: Any) -> None:
    async def main() -> None:
        async with Store(etcd.endpoint, f"/reports-{uuid.uuid4().hex[:8]}") as store:
            await scenario(store)

    asyncio.run(main())
