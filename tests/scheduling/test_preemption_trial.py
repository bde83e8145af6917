"""Single-task preemption evicts only when the task is then placed (tried first on a copy of the matrix).

An audit found a task of priority 100 asking for a whole GPU on a node with two GPUs shared
by three low-priority tasks (500, 600 and 400 milli-GPU): victims were chosen by the node's
total free GPU, the 600 task was evicted, the 1000 still did not fit on one GPU, and at the
next pass the evicted task came back and was evicted again, about 50 times a second.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from orchsim.scheduling import POLICIES, NodeMatrix, PreparedPolicy
from orchsim.scheduling.preemption import RunningTasks
from orchsim.scheduling.queueing import PassExtensions, schedule_pass


def _pass(nodes: NodeMatrix, tasks: dict[str, Any], urgent: np.ndarray, name: str, *, devices: bool = True) -> Any:
    """One pass for task ``u`` (priority 100) over ``tasks`` (name: node, priority, demand[, devices])."""
    evicted: list[tuple[list[str], int]] = []

    def evict(victims: list[str], node: int) -> None:
        for victim in victims:
            _, _, demand, *held = tasks.pop(victim)
            nodes.release(node, demand, held[0] if held else None)
        evicted.append((victims, node))

    def running() -> RunningTasks:
        names = sorted(tasks)
        return RunningTasks(
            task=names,
            node=np.array([tasks[n][0] for n in names], dtype=np.int64),
            priority=np.array([tasks[n][1] for n in names], dtype=np.int64),
            demand=np.array([tasks[n][2] for n in names]),
            start=np.arange(len(names), dtype=np.float64),
            devices=[(tasks[n][3:] or (None,))[0] for n in names] if devices else None,
        )

    priorities = {n: t[1] for n, t in tasks.items()} | {"u": 100}
    extensions = PassExtensions(priority_of=priorities.__getitem__, running_of=running, evict=evict)
    placed: list[int] = []

    def place(task: str, node: int, devices: Any = None) -> None:
        placed.append(node)

    result = schedule_pass(nodes, ["u"], name, request_of=lambda t: urgent, place=place, extensions=extensions)
    return result, evicted, placed


def _gpu_node() -> tuple[NodeMatrix, dict[str, Any]]:
    """One node, two GPUs: g500 on GPU 0, g600 and g400 sharing GPU 1 (the audit's live case)."""
    nodes = NodeMatrix.from_capacities({"cpu": [8000.0], "gpu": [2000.0]})
    nodes.track_devices("gpu")
    tasks = {}
    for name, share, gpu in (("g500", 500.0, 0), ("g600", 600.0, 1), ("g400", 400.0, 1)):
        demand = np.array([100.0, share])
        nodes.allocate(0, demand, {"gpu": (gpu,)})
        tasks[name] = (0, 0, demand, {"gpu": (gpu,)})
    return nodes, tasks


def test_no_eviction_for_a_gpu_that_the_victims_would_not_free() -> None:
    nodes, tasks = _gpu_node()
    # Victims by amount: g600 (the node's free 500 plus 600 makes 1000), which leaves no GPU whole.
    result, evicted, placed = _pass(nodes, tasks, np.array([100.0, 1000.0]), "first_fit")
    assert evicted == [] and placed == [] and result.preempted == [] and len(tasks) == 3
    nodes, tasks = _gpu_node()
    _, evicted, placed = _pass(nodes, tasks, np.array([100.0, 1000.0]), "first_fit", devices=False)
    assert evicted == [] and placed == []  # devices not said: a device request does not preempt


def test_a_victim_holding_a_whole_gpu_makes_room_for_it() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [8000.0], "gpu": [1000.0]})
    nodes.track_devices("gpu")
    nodes.allocate(0, np.array([100.0, 1000.0]), {"gpu": (0,)})
    tasks = {"low": (0, 0, np.array([100.0, 1000.0]), {"gpu": (0,)})}
    _, evicted, placed = _pass(nodes, tasks, np.array([100.0, 500.0]), "first_fit")
    assert evicted == [(["low"], 0)] and placed == [0]


def veto_node_0(nodes, request):  # type: ignore[no-untyped-def]
    scores = np.zeros(nodes.n_nodes)
    scores[0] = -np.inf
    return scores


def test_nothing_is_evicted_when_the_task_would_still_not_be_placed() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000.0]})
    nodes.allocate(0, np.array([1000.0]))
    tasks = {"low": (0, 0, np.array([1000.0]))}
    POLICIES.register("veto_node_0_probe", veto_node_0)
    try:
        _, evicted, placed = _pass(nodes, tasks, np.array([500.0]), "veto_node_0_probe")
    finally:
        POLICIES.unregister("veto_node_0_probe")
    assert evicted == [] and placed == [] and "low" in tasks
    _, evicted, placed = _pass(nodes, tasks, np.array([500.0]), "first_fit")
    assert evicted == [(["low"], 0)] and placed == [0]  # the same case, placeable: evicted and placed


def test_the_trial_leaves_a_cursor_where_it_was() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000.0, 1000.0, 1000.0]})
    for node in range(3):
        nodes.allocate(node, np.array([1000.0]))
    prepared = PreparedPolicy("round_robin", rng=np.random.default_rng(3))
    prepared.last = nodes.ids[1]
    state = prepared.snapshot()
    before = prepared.rng.bit_generator.state
    prepared.rng.random()
    prepared.last = nodes.ids[2]
    prepared.restore(state)
    assert prepared.last == nodes.ids[1] and prepared.rng.bit_generator.state == before
