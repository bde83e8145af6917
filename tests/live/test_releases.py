"""A node's releases kept apart from its ledger (``orchlive.releases``): the arithmetic, then the race it removes.

The allocation is the ledger of placements minus the releases. It must say exactly what
the single ledger used to say (``Ledger.remove``, kept as the reference: never below 0,
nothing given back by a ledger that counts no task), and a finish report must no longer
move the key a placement compares.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchlive import transitions
from orchlive.cache import ClusterCache
from orchlive.models import Ledger, NodeRecord, Resources, Task, TaskState
from orchlive.releases import Released, allocation, drop_grants
from orchlive.store import Store

from .test_devices_ledger import gpu_task


def _task(cpu: int, memory: int = 64) -> Task:
    return Task(name="t", resources=Resources(cpu=cpu, memory=memory))


def test_the_allocation_is_placed_minus_released_and_never_below_zero() -> None:
    placed, released = Ledger(), Released()
    a, b, huge = _task(300), _task(200, 128), _task(5000, 1000)
    placed.add(a)
    placed.add(b)
    assert allocation(placed, None) is placed and allocation(placed, released) is placed  # nothing released yet
    assert released.release(a, placed)
    # placed 500 cpu / 192 MiB in 2 tasks, released 300 / 64 in 1: 200 / 128 held by 1.
    assert allocation(placed, released) == Ledger({"cpu": 200, "memory": 128}, 1)
    # A task the ledger never counted (a faulty writer's) frees at most what is left: 200 cpu, not 5000.
    assert released.release(huge, placed)
    assert allocation(placed, released) == Ledger({"cpu": 0, "memory": 0}, 0)
    assert released.allocated == {"cpu": 500, "memory": 192}
    # Every placed task is released: the real b's release gives nothing back (no count below 0).
    assert not released.release(b, placed)
    assert released == Released({"cpu": 500, "memory": 192}, 2)
    assert Released.from_json(released.to_json()) == released and Released.from_json({}) == Released()
    # Placed again: the new task's room shows whole.
    placed.add(_task(100))
    assert allocation(placed, released) == Ledger({"cpu": 100, "memory": 64}, 1)


def test_a_release_takes_a_tasks_device_grants_out_of_the_ledger() -> None:
    placed = Ledger()
    a, b = gpu_task(600, [0]), gpu_task(2000, [1, 2])
    placed.add(a)
    placed.add(b)
    assert drop_grants(placed, a.id) and not drop_grants(placed, a.id)
    assert set(placed.devices["gpu"]) == {b.id}
    assert drop_grants(placed, b.id) and placed.devices == {}
    assert not drop_grants(placed, "never-here")


# One step: place a task of (cpu, memory), or release the i-th placed task still held.
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("place"), st.integers(1, 4000), st.integers(0, 512)),
        st.tuples(st.just("release"), st.integers(0, 50), st.just(0)),
        st.tuples(st.just("stray"), st.integers(1, 9000), st.integers(0, 512)),  # a task never placed here
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(STEPS)
def test_placed_minus_released_says_what_the_single_ledger_said(steps: list[tuple[str, int, int]]) -> None:
    reference, placed, released = Ledger(), Ledger(), Released()
    held: list[Task] = []
    for kind, a, b in steps:
        if kind == "place":
            task = _task(a, b)
            reference.add(task)
            placed.add(task)
            held.append(task)
            continue
        if kind == "release":
            if not held:
                continue
            task = held.pop(a % len(held))
        else:
            task = _task(a, b)
        reference.remove(task)
        released.release(task, placed)
    net = allocation(placed, released)
    assert net.count == reference.count
    for name in ("cpu", "memory"):
        assert net.allocated.get(name, 0) == pytest.approx(reference.allocated.get(name, 0), abs=1e-6)


def test_the_cache_shows_the_allocation_and_keeps_what_a_release_wrote() -> None:
    cache = ClusterCache()
    placed = Ledger()
    a, b = _task(300), _task(200)
    placed.add(a)
    placed.add(b)
    cache.ledgers["w1"] = (placed, 7)
    gone = Released()
    gone.release(a, placed)
    cache.released["w1"] = (gone, 9)
    assert cache.ledger("w1") == Ledger({"cpu": 200, "memory": 64}, 1)
    assert cache.ledgers["w1"] == (placed, 7)  # a placement still compares revision 7


# ---------------------------------------------------------------------- on etcd
async def _finish_beside_a_placement(store: Store) -> None:
    lease = await store.grant_lease(30)
    await transitions.register_node(store, NodeRecord(id="w1", capacity=Resources(cpu=4000, memory=8192)), lease)
    first = await transitions.create_task(store, _task(1000))
    read = await transitions.read_task(store, first.id)
    assert read is not None
    placed = await transitions.place(
        store, [transitions.Placement(*read, "w1")], {"w1": await transitions.read_ledger(store, "w1")}
    )
    assert placed.applied
    # The master's view right after its placement: the ledger it wrote, at that revision.
    ledgers = {"w1": (placed.ledgers["w1"], placed.revision)}
    second = await transitions.create_task(store, _task(500))
    # Meanwhile the worker runs the first task and reports it done.
    assert await transitions.start(store, first.id, "w1", 1) is not None
    done = await transitions.finish(store, first.id, "w1", 1, exit_code=0)
    assert done is not None and done.state == TaskState.COMPLETED
    assert (await transitions.read_ledger(store, "w1"))[1] == placed.revision  # the finish left the ledger alone
    assert await transitions.read_allocation(store, "w1") == Ledger({"cpu": 0, "memory": 0}, 0)
    # So the placement decided before the finish still applies.
    read = await transitions.read_task(store, second.id)
    assert read is not None
    again = await transitions.place(store, [transitions.Placement(*read, "w1")], ledgers)
    assert again.applied
    assert await transitions.read_allocation(store, "w1") == Ledger({"cpu": 500, "memory": 64}, 1)
    # A late second report of the same run is fenced by the task's state: nothing given back twice.
    assert await transitions.finish(store, first.id, "w1", 1, exit_code=0) is None
    assert await transitions.read_allocation(store, "w1") == Ledger({"cpu": 500, "memory": 64}, 1)
    # Deleting the placed task frees the rest; the API's view agrees.
    assert await transitions.remove(store, second.id)
    released, _ = await transitions.read_released(store, "w1")
    assert released == Released({"cpu": 1500, "memory": 128}, 2)
    assert await transitions.read_allocation(store, "w1") == Ledger({"cpu": 0, "memory": 0}, 0)


@pytest.mark.live
def test_a_finish_report_no_longer_makes_a_placement_lose(etcd: Any) -> None:
    async def main() -> None:
        async with Store(etcd.endpoint, f"/releases-{uuid.uuid4().hex[:8]}") as store:
            await _finish_beside_a_placement(store)

    asyncio.run(main())
