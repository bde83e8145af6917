"""A worker's starts and reports grouped in one transaction (``orchlive.transitions.runs``), on a real etcd.

Starts arriving together go in one transaction, and so do reports; each writes what one
``start`` or ``finish`` would have written: the task's state, its event and, for a
report, its log tail, the release of its request and the removal of its inbox key. A
batch where one task has moved on writes nothing, and says so, so that each goes alone.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from orchlive import transitions
from orchlive.models import Ledger, NodeRecord, Resources, Task, TaskState
from orchlive.releases import Released
from orchlive.store import Store

pytestmark = pytest.mark.live


async def _running(store: Store, count: int) -> list[tuple[Task, int]]:
    """``count`` tasks of 100 cpu each, placed on w1 and started there together: (task, revision) as RUNNING."""
    lease = await store.grant_lease(30)
    await transitions.register_node(store, NodeRecord(id="w1", capacity=Resources(cpu=4000, memory=8192)), lease)
    tasks = [
        await transitions.create_task(store, Task(name=f"t{i}", resources=Resources(cpu=100))) for i in range(count)
    ]
    reads = [await transitions.read_task(store, task.id) for task in tasks]
    ledger = await transitions.read_ledger(store, "w1")
    placements = [transitions.Placement(*read, "w1") for read in reads if read is not None]
    assert (await transitions.place(store, placements, {"w1": ledger})).applied
    reads = [await transitions.read_task(store, task.id) for task in tasks]  # ASSIGNED, as the worker reads them
    starts = transitions.start_batches(store, "w1")
    started = await asyncio.gather(*(starts.submit(read) for read in reads if read is not None))
    assert starts.transactions == 1  # they arrived together: one transaction
    assert all(s is not None and s[0].state == TaskState.RUNNING for s in started)
    for task, revision in (s for s in started if s is not None):
        assert await transitions.read_task(store, task.id) == (task, revision)  # as stored
    return [s for s in started if s is not None]


def _reports(running: list[tuple[Task, int]]) -> list[transitions.Report]:
    """Exit code i, output "out i" (the last one prints nothing)."""
    tails = [f"out {i}\n".encode() for i in range(len(running) - 1)] + [b""]
    return [transitions.Report(r, exit_code=i, reason=None, log_tail=tails[i]) for i, r in enumerate(running)]


async def _batched(store: Store) -> None:
    running = await _running(store, 5)
    await store.put(store.keys.logs(running[-1][0].id), b"an earlier try's output")
    batcher = transitions.report_batches(store, "w1")
    reports = _reports(running)
    assert all(transitions.batchable(r) for r in reports)
    assert await asyncio.gather(*(batcher.submit(r) for r in reports)) == [True] * 5
    assert batcher.transactions == 1  # they arrived together: one transaction
    for i, (task, _) in enumerate(running):
        read = await transitions.read_task(store, task.id)
        assert read is not None
        done = read[0]
        assert (done.state, done.exit_code) == ((TaskState.COMPLETED, 0) if i == 0 else (TaskState.FAILED, i))
        log = await store.get(store.keys.logs(task.id))
        if i < 4:
            assert log is not None and log.value == f"out {i}\n".encode()
        else:  # no output: no key (the API answers "" either way), and an earlier try's output is gone
            assert log is None
        assert await store.get(store.keys.assignment("w1", task.id)) is None
    assert await transitions.read_allocation(store, "w1") == Ledger({"cpu": 0}, 0)
    events = [e.json()["type"] for e in (await store.range(store.keys.events()))[0]]
    assert events.count("task.completed") == 1 and events.count("task.failed") == 4


async def _one_moved(store: Store) -> None:
    running = await _running(store, 3)
    # The middle task is deleted meanwhile (the API): its known revision no longer holds.
    assert await transitions.remove(store, running[1][0].id)
    held = await transitions.read_allocation(store, "w1")
    batcher = transitions.report_batches(store, "w1")
    assert await asyncio.gather(*(batcher.submit(r) for r in _reports(running))) == [False] * 3
    for task, _ in (running[0], running[2]):  # nothing of the batch was written
        read = await transitions.read_task(store, task.id)
        assert read is not None and read[0].state == TaskState.RUNNING
    assert await transitions.read_allocation(store, "w1") == held
    # Alone, each report reads the task and decides: the deleted one is fenced, the others finish.
    await store.put(store.keys.logs(running[2][0].id), b"an earlier try's output")
    tails = [b"said something\n", b"", b""]
    outcomes = [
        await transitions.finish(store, task.id, "w1", 1, exit_code=0, known=(task, revision), log_tail=tail)
        for (task, revision), tail in zip(running, tails, strict=True)
    ]
    assert [o.state if o else None for o in outcomes] == [TaskState.COMPLETED, None, TaskState.COMPLETED]
    first = await store.get(store.keys.logs(running[0][0].id))
    assert first is not None and first.value == b"said something\n"
    assert await store.get(store.keys.logs(running[2][0].id)) is None  # alone too, no output: no logs key
    assert await transitions.read_allocation(store, "w1") == Ledger({"cpu": 0}, 0)


@pytest.mark.parametrize("scenario", [_batched, _one_moved], ids=["batched", "one-moved"])
def test_reports_arriving_together_share_one_transaction(etcd: Any, scenario: Any) -> None:
    async def main() -> None:
        async with Store(etcd.endpoint, f"/reports-{uuid.uuid4().hex[:8]}") as store:
            await scenario(store)

    asyncio.run(main())


async def _start_moved(store: Store) -> None:
    lease = await store.grant_lease(30)
    await transitions.register_node(store, NodeRecord(id="w1", capacity=Resources(cpu=4000, memory=8192)), lease)
    tasks = [await transitions.create_task(store, Task(name=f"s{i}", resources=Resources(cpu=100))) for i in range(2)]
    ledger = await transitions.read_ledger(store, "w1")
    reads = [await transitions.read_task(store, task.id) for task in tasks]
    placements = [transitions.Placement(*read, "w1") for read in reads if read is not None]
    assert (await transitions.place(store, placements, {"w1": ledger})).applied
    reads = [await transitions.read_task(store, task.id) for task in tasks]
    assert await transitions.remove(store, tasks[0].id)  # deleted after the worker read it
    starts = transitions.start_batches(store, "w1")
    assert await asyncio.gather(*(starts.submit(read) for read in reads if read is not None)) == [None, None]
    read = await transitions.read_task(store, tasks[1].id)
    assert read is not None and read[0].state == TaskState.ASSIGNED  # nothing of the batch was written


def test_starts_where_one_task_moved_write_nothing(etcd: Any) -> None:
    async def main() -> None:
        async with Store(etcd.endpoint, f"/starts-{uuid.uuid4().hex[:8]}") as store:
            await _start_moved(store)

    asyncio.run(main())


async def _kept_totals(store: Store, endpoint: str) -> None:
    running = await _running(store, 6)  # 6 tasks of 100 cpu, RUNNING on w1
    transitions.keep_totals(store, "w1")  # as the worker of w1 does
    reads = 0
    read_many = store.get_many

    async def counted(*keys: str) -> Any:
        nonlocal reads
        reads += store.keys.alloc("w1") in keys  # reads of the ledger (not a registration's)
        return await read_many(*keys)

    store.get_many = counted  # type: ignore[method-assign]
    batcher = transitions.report_batches(store, "w1")
    reports = _reports(running)
    assert await transitions.finish(store, running[0][0].id, "w1", 1, exit_code=0, known=running[0])
    assert reads == 1  # nothing kept yet: the ledger and releases are read
    assert await asyncio.gather(batcher.submit(reports[1]), batcher.submit(reports[2])) == [True, True]
    assert reads == 1  # released against what the first release kept: no read, the same totals written
    assert (await transitions.read_released(store, "w1"))[0] == Released({"cpu": 300}, 3)
    async with Store(endpoint, store.keys.prefix) as other:  # another process (the API) releases one
        assert await transitions.remove(other, running[3][0].id)
    assert await batcher.submit(reports[4]) is False  # what was kept lost its compare: nothing written, forgotten
    assert await transitions.finish(store, running[4][0].id, "w1", 1, exit_code=4, known=running[4])
    assert reads == 2  # alone, it read again
    assert await batcher.submit(reports[5]) is True and reads == 2
    assert await transitions.read_allocation(store, "w1") == Ledger({"cpu": 0}, 0)
    # A task placed after the last read: what was kept would bound its release (6 placed, 6 given back), so it reads.
    (late,) = await _running(store, 1)
    assert await batcher.submit(_reports([late])[0]) is True and reads == 3
    assert await transitions.read_allocation(store, "w1") == Ledger({"cpu": 0}, 0)


def test_a_worker_releases_against_the_totals_it_kept_and_reads_when_they_moved(etcd: Any) -> None:
    async def main() -> None:
        async with Store(etcd.endpoint, f"/kept-{uuid.uuid4().hex[:8]}") as store:
            await _kept_totals(store, etcd.endpoint)

    asyncio.run(main())


async def _kept_then_devices(store: Store) -> None:
    lease = await store.grant_lease(30)
    capacity = Resources.model_validate({"cpu": 4000, "gpu": 1000})
    await transitions.register_node(store, NodeRecord(id="w1", capacity=capacity, devices={"gpu": 1}), lease)
    transitions.keep_totals(store, "w1")

    async def run_one(task: Task, devices: dict[str, tuple[int, ...]]) -> tuple[Task, int]:
        read = await transitions.read_task(store, (await transitions.create_task(store, task)).id)
        assert read is not None
        ledger = await transitions.read_ledger(store, "w1")
        assert (await transitions.place(store, [transitions.Placement(*read, "w1", devices)], {"w1": ledger})).applied
        assigned = await transitions.read_task(store, read[0].id)
        started = await transitions.start(store, read[0].id, "w1", 1, read=assigned)
        assert started is not None
        return started

    plain = await run_one(Task(name="cpu", resources=Resources(cpu=100)), {})
    assert await transitions.finish(store, plain[0].id, "w1", 1, exit_code=0, known=plain)  # keeps a grant-less ledger
    share = Task(name="gpu", resources=Resources.model_validate({"cpu": 100, "gpu": 500}), devices={})
    on_gpu = await run_one(share, {"gpu": (0,)})
    assert list((await transitions.read_ledger(store, "w1"))[0].devices["gpu"]) == [on_gpu[0].id]  # its grant
    assert await transitions.finish(store, on_gpu[0].id, "w1", 1, exit_code=0, known=on_gpu)
    # Its grant goes with it: a task with devices is released against a fresh ledger (the kept one, from before
    # it was placed, holds neither its grant nor its gpu amount: either guard sends it to a read).
    placed, _ = await transitions.read_ledger(store, "w1")
    assert placed.devices == {} and await transitions.read_allocation(store, "w1") == Ledger({"cpu": 0, "gpu": 0}, 0)


def test_a_task_with_devices_releases_against_a_fresh_ledger(etcd: Any) -> None:
    async def main() -> None:
        async with Store(etcd.endpoint, f"/kept-dev-{uuid.uuid4().hex[:8]}") as store:
            await _kept_then_devices(store)

    asyncio.run(main())
