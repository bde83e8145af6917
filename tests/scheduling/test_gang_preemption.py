"""Preemption for a gang (``gang_preemption``): replica by replica, each by the single-task rule, all or nothing.

The cluster of every case (cpu millicores; memory left out, every request asks 0):

    n0 (4000): a (priority 1, 2000), b (5, 2000)        n1 (4000): c (2, 2000), d (3, 2000)

A gang of two replicas of 2000 at priority 10, worked by hand:
    replica 1: nothing is free. n0 frees 2000 by evicting a alone (b reprieved), highest
               victim 1; n1 by evicting c (d reprieved), highest 2     -> n0, victims [a]
    replica 2: n0 holds b and replica 1; a is gone. n0 would evict b (5), n1 c (2)
                                                                       -> n1, victims [c]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from orchsim.scheduling import NodeMatrix, PreparedPolicy
from orchsim.scheduling.gang_preemption import plan_gang_preemption
from orchsim.scheduling.preemption import RunningTasks
from orchsim.scheduling.queueing import PassExtensions, schedule_pass

TASKS = {"a": (0, 1, 2000.0), "b": (0, 5, 2000.0), "c": (1, 2, 2000.0), "d": (1, 3, 2000.0)}  # node, priority, cpu
REPLICA = np.array([2000.0, 0.0])


def _filled() -> tuple[NodeMatrix, dict[str, tuple[int, int, float]]]:
    nodes = NodeMatrix.from_capacities({"cpu": [4000.0, 4000.0], "memory": [1024.0, 1024.0]})
    for node, _, cpu in TASKS.values():
        nodes.allocate(node, np.array([cpu, 0.0]))
    return nodes, dict(TASKS)


def _running(tasks: dict[str, tuple[int, int, float]]) -> RunningTasks:
    names = sorted(tasks)
    return RunningTasks(
        task=names,
        node=np.array([tasks[n][0] for n in names], dtype=np.int64),
        priority=np.array([tasks[n][1] for n in names], dtype=np.int64),
        demand=np.array([[tasks[n][2], 0.0] for n in names]),
        start=np.arange(len(names), dtype=np.float64),
    )


def _plan(gang: tuple[int, int], priority: int) -> tuple[list[int], list[tuple[list[str], int]]] | None:
    nodes, tasks = _filled()
    before = nodes.allocated.copy()
    running = _running(tasks)
    plan = plan_gang_preemption(
        nodes, REPLICA, gang, priority, running, np.ones(2, bool), PreparedPolicy("bin_packing")
    )
    assert np.array_equal(nodes.allocated, before)  # planned on a copy
    if plan is None:
        return None
    placements, evictions = plan
    return [n for n, _ in placements], [([running.task[i] for i in rows.tolist()], node) for rows, node in evictions]


@pytest.mark.parametrize(
    ("gang", "priority", "expected"),
    [
        ((2, 2), 10, ([0, 1], [(["a"], 0), (["c"], 1)])),  # the worked example
        ((1, 1), 10, ([0], [(["a"], 0)])),  # one replica: the single-task rule exactly
        ((2, 2), 2, None),  # only a (1) is lower than 2: one replica at most, so nothing is evicted
        ((2, 1), 2, ([0], [(["a"], 0)])),  # ...unless one is enough
        # b (5) stays; on n1 d (3) is reprieved for replica 2 (c is enough), then goes for replica 3
        ((3, 3), 4, ([0, 1, 1], [(["a"], 0), (["c"], 1), (["d"], 1)])),
        ((2, 2), 1, None),  # nothing is lower than 1
    ],
)
def test_the_plan(gang: tuple[int, int], priority: int, expected: Any) -> None:
    assert _plan(gang, priority) == expected


def test_optional_replicas_take_only_free_room() -> None:
    """With min_replicas met, a replica that fits nowhere is left out instead of evicting."""
    nodes, tasks = _filled()
    nodes.release(0, np.array([2000.0, 0.0]))  # a has ended: 2000 free on n0
    del tasks["a"]
    plan = plan_gang_preemption(
        nodes, REPLICA, (3, 1), 10, _running(tasks), np.ones(2, bool), PreparedPolicy("bin_packing")
    )
    assert plan is not None and [n for n, _ in plan[0]] == [0] and plan[1] == []


def test_the_pass_evicts_for_a_gang_then_places_it_and_the_owner_sees_both() -> None:
    nodes, tasks = _filled()
    priority = {name: p for name, (_, p, _) in tasks.items()} | {"g": 10}
    evicted: list[tuple[list[str], int]] = []
    placed: dict[str, list[int]] = {}

    def evict(victims: list[str], node: int) -> None:
        for victim in victims:
            nodes.release(node, np.array([tasks.pop(victim)[2], 0.0]))
        evicted.append((victims, node))

    def place_gang(task: str, placements: list[tuple[int, Any]]) -> None:
        for node, _ in placements:
            nodes.allocate(node, REPLICA)
        placed[task] = [node for node, _ in placements]

    extensions = PassExtensions(
        priority_of=priority.__getitem__,
        running_of=lambda: _running(tasks),
        evict=evict,
        gang_of=lambda task: (2, 2),
        place_gang=place_gang,
    )
    result = schedule_pass(
        nodes, ["g"], "bin_packing", request_of=lambda task: REPLICA, place=lambda *a: None, extensions=extensions
    )
    assert result.placed == ["g"] and placed == {"g": [0, 1]}
    assert evicted == [(["a"], 0), (["c"], 1)]
    assert result.preempted == [("a", "g", 0), ("c", "g", 1)]
    assert nodes.allocated[0].tolist() == [4000.0, 4000.0]  # b + replica on n0, d + replica on n1


def test_a_gang_asking_for_a_device_does_not_preempt() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [4000.0], "memory": [1024.0], "gpu": [1000.0]})
    nodes.track_devices("gpu")
    nodes.allocate(0, np.array([4000.0, 0.0, 0.0]))
    running = RunningTasks(["a"], np.array([0]), np.array([1]), np.array([[4000.0, 0.0, 0.0]]), np.zeros(1))
    request = np.array([2000.0, 0.0, 500.0])
    assert (
        plan_gang_preemption(nodes, request, (1, 1), 10, running, np.ones(1, bool), PreparedPolicy("bin_packing"))
        is None
    )
