"""The named transitions, called directly on a real etcd (no master or worker processes).

Each test gets its own key prefix. What is checked is the contract the callers rely on:
a transition returns exactly what it stored (so a caller may cache it), writes its event
in the same transaction, and reports a lost compare-and-swap instead of overwriting.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from orchlive import transitions
from orchlive.cache import read_nodes
from orchlive.master import Master
from orchlive.models import NodeRecord, Resources, Task, TaskState
from orchlive.store import Store
from orchlive.store_types import WatchEvent
from orchlive.worker_checks import assigned_copy

pytestmark = pytest.mark.live


def run(etcd: Any, body: Callable[[Store], Awaitable[None]]) -> None:
    """Run ``body`` with a store on a fresh prefix of the session's etcd."""

    async def main() -> None:
        async with Store(etcd.endpoint, f"/transitions-{uuid.uuid4().hex[:8]}") as store:
            await body(store)

    asyncio.run(main())


async def events(store: Store) -> list[str]:
    entries, _ = await store.range(store.keys.events())
    return [e.json()["type"] for e in sorted(entries, key=lambda e: e.create_revision)]


async def join(store: Store, node_id: str, cpu: int = 4000) -> int:
    """Register a node under a fresh lease; returns the lease."""
    lease = await store.grant_lease(30)
    record = NodeRecord(id=node_id, capacity=Resources(cpu=cpu, memory=8192))
    await transitions.register_node(store, record, lease)
    return lease


def test_create_task_refuses_to_overwrite(etcd) -> None:  # type: ignore[no-untyped-def]
    async def body(store: Store) -> None:
        task = Task(name="a", image="alpine")
        assert await transitions.create_task(store, task) == task
        with pytest.raises(transitions.ConflictError, match="collision"):
            await transitions.create_task(store, task.model_copy(update={"name": "b"}))
        assert (await transitions.read_task(store, task.id))[0].name == "a"  # type: ignore[index]
        assert await events(store) == ["task.created"]

    run(etcd, body)


def test_concurrent_creates_share_transactions_and_only_a_collision_fails(etcd) -> None:  # type: ignore[no-untyped-def]
    async def body(store: Store) -> None:
        taken = Task(name="first", image="alpine")
        await transitions.create_task(store, taken)
        batcher = transitions.CreateBatcher(store, max_tasks=8)
        tasks = [Task(name=f"t{i}", image="alpine") for i in range(20)]
        clash = taken.model_copy(update={"name": "clash"})
        results = await asyncio.gather(*(batcher.create(t) for t in [*tasks, clash]), return_exceptions=True)
        assert results[:-1] == tasks  # each caller gets its own task back
        assert isinstance(results[-1], transitions.ConflictError)
        # 21 submissions gathered before the first transaction: 8 + 8 + 5 in three batches; the
        # last one fails on the clash and is retried task by task (not counted as batches).
        assert batcher.transactions == 3
        for task in tasks:
            assert (await transitions.read_task(store, task.id))[0] == task  # type: ignore[index]
        assert (await transitions.read_task(store, taken.id))[0].name == "first"  # type: ignore[index]
        assert await events(store) == ["task.created"] * 21

    run(etcd, body)


def test_place_returns_what_it_stored_and_the_master_caches_that(etcd) -> None:  # type: ignore[no-untyped-def]
    async def body(store: Store) -> None:
        await join(store, "w1")
        task = await transitions.create_task(store, Task(name="a", image="alpine", resources=Resources(cpu=500)))
        _, revision = await transitions.read_task(store, task.id)  # type: ignore[misc]
        noted = await transitions.note_reason(store, task, revision, "0/0 nodes fit")
        assert noted is not None and noted[0].reason == "0/0 nodes fit"
        assert await transitions.note_reason(store, task, revision, "stale") is None  # compared, lost
        master = Master(store, "bin_packing")
        await master.load()
        assert await master.schedule_pass() == 1
        stored, stored_revision = await transitions.read_task(store, task.id)  # type: ignore[misc]
        assert stored.state == TaskState.ASSIGNED and stored.reason is None and stored.attempts == 1
        # The master's cache holds the very task the transition wrote, reason cleared.
        assert master.cache.tasks[task.id] == (stored, stored_revision)
        ledger, _ = await transitions.read_ledger(store, "w1")
        assert master.cache.ledger("w1") == ledger and ledger.count == 1 and master.cache.on_node("w1") == [task.id]
        assert await events(store) == ["node.joined", "task.created", "task.assigned"]

    run(etcd, body)


def test_the_inbox_key_carries_the_task_as_placed_so_the_worker_starts_it_without_a_read(etcd) -> None:  # type: ignore[no-untyped-def]
    async def body(store: Store) -> None:
        await join(store, "w1")
        task = await transitions.create_task(store, Task(name="a", image="alpine", resources=Resources(cpu=500)))
        master = Master(store, "bin_packing")
        await master.load()
        assert await master.schedule_pass() == 1
        stored, stored_revision = await transitions.read_task(store, task.id)  # type: ignore[misc]
        (inbox,), _ = await store.range(store.keys.assignments("w1"))
        event = WatchEvent("put", inbox.key, inbox.value, inbox.mod_revision, inbox.create_revision)
        fresh, joined = time.monotonic() + 5, stored_revision - 1
        assert assigned_copy(event, fresh, joined) == (stored, stored_revision)  # the start compares this revision
        assert assigned_copy(event, time.monotonic() - 0.01, joined) is None  # past the lease deadline: read it
        assert assigned_copy(event, fresh, stored_revision) is None  # placed before the worker (re)registered
        assert assigned_copy(WatchEvent("put", inbox.key, b"1", inbox.mod_revision, 0), fresh, joined) is None  # older
        assert assigned_copy(WatchEvent("put", inbox.key, b"{nope", inbox.mod_revision, 0), fresh, joined) is None
        started = await transitions.start(store, task.id, "w1", 1, read=assigned_copy(event, fresh, joined))
        assert started is not None and started[0].state == TaskState.RUNNING
        # A copy that moved on starts nothing: the transaction compares the revision it carries.
        assert await transitions.start(store, task.id, "w1", 1, read=(stored, stored_revision)) is None

    run(etcd, body)


def test_register_keeps_a_cordon_and_the_ledger(etcd) -> None:  # type: ignore[no-untyped-def]
    async def body(store: Store) -> None:
        await join(store, "w1")
        ledger, first = await transitions.read_ledger(store, "w1")
        assert first > 0 and ledger.count == 0
        assert await transitions.drain_node(store, "missing") is None
        drained = await transitions.drain_node(store, "w1")
        assert drained is not None and drained.cordoned
        await join(store, "w1")  # a restarted worker: still cordoned, ledger untouched
        view = (await read_nodes(store))["w1"]
        assert view.cordoned and view.state == "DRAINING" and dict(view.free) == {"cpu": 4000, "memory": 8192}
        assert (await transitions.read_ledger(store, "w1"))[1] == first
        assert await events(store) == ["node.joined", "node.drained", "node.joined"]

    run(etcd, body)


def test_node_lost_only_while_the_heartbeat_is_gone(etcd) -> None:  # type: ignore[no-untyped-def]
    async def body(store: Store) -> None:
        lease = await join(store, "w1")
        view = (await read_nodes(store))["w1"]
        assert view.state == "READY"
        assert not await transitions.node_lost(store, view)  # still alive: nothing written
        await store.revoke_lease(lease)
        lost = (await read_nodes(store))["w1"]
        assert lost.state == "NOT_READY"
        assert await transitions.node_lost(store, lost)
        assert await events(store) == ["node.joined", "node.lost"]

    run(etcd, body)


def test_a_reload_keeps_what_the_watch_brought_during_its_read(etcd, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A master leading again reloads while its watch runs: a task created during the read is not lost."""
    from orchlive import master as master_module

    async def body(store: Store) -> None:
        await join(store, "w1")
        master = Master(store, "bin_packing")
        watching = asyncio.create_task(master.watch_loop(await master.load()))
        real_read = master_module.read_cache
        created: list[Task] = []

        async def read_then_create(*args: Any) -> Any:
            read = await real_read(*args)  # the snapshot, then a submission the watch brings before load returns
            created.append(await transitions.create_task(store, Task(name="late", resources=Resources(cpu=100))))
            for _ in range(200):
                if created[0].id in master.cache.tasks:  # the old cache has it: the watch applied it
                    return read
                await asyncio.sleep(0.01)
            raise AssertionError("the watch never brought the task")

        monkeypatch.setattr(master_module, "read_cache", read_then_create)
        await master.load()
        watching.cancel()
        assert [task.id for task, _ in master.cache.pending()] == [created[0].id]

    run(etcd, body)


def test_a_lost_nodes_requeue_applies_only_while_the_node_is_still_gone(etcd) -> None:  # type: ignore[no-untyped-def]
    """The master requeues a lost node's tasks with ``node_lost``: if the worker restarted and
    registered meanwhile (it then starts what is assigned to it), nothing is requeued, so no
    second copy is placed elsewhere (a race the fault campaign met: 0.12 s from two copies)."""

    async def body(store: Store) -> None:
        lease = await join(store, "w1")
        tasks = [await transitions.create_task(store, Task(name=f"t{i}", image="alpine")) for i in range(2)]
        reads = [await transitions.read_task(store, task.id) for task in tasks]
        ledger = await transitions.read_ledger(store, "w1")
        placed = [transitions.Placement(*read, "w1") for read in reads if read is not None]
        assert (await transitions.place(store, placed, {"w1": ledger})).applied
        await store.revoke_lease(lease)  # the node is lost: its heartbeat key is gone
        assert await store.get(store.keys.alive("w1")) is None
        first = await transitions.requeue(store, tasks[0].id, "w1", "node w1 lost", node_lost=True)
        assert first is not None and first.state == TaskState.PENDING  # gone: requeued
        await join(store, "w1")  # the worker restarts and registers before the next requeue
        assert await transitions.requeue(store, tasks[1].id, "w1", "node w1 lost", node_lost=True) is None
        read = await transitions.read_task(store, tasks[1].id)
        assert read is not None and (read[0].state, read[0].node_id) == (TaskState.ASSIGNED, "w1")
        assert await store.get(store.keys.assignment("w1", tasks[1].id)) is not None  # still in its inbox

    run(etcd, body)
