"""Victim selection (kube-scheduler DefaultPreemption rules), as table tests with the arithmetic worked out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchsim.scheduling.preemption import PRIORITY_OFFSET, RunningTasks, choose_victims


@dataclass(frozen=True)
class Case:
    name: str
    free: list[list[float]]  # (R, N)
    request: list[float]
    priority: int
    running: list[tuple[str, int, int, list[float], float]]  # (task, node, priority, demand, start)
    expected: tuple[int, list[str]] | None  # (node, victims most important first) or None
    candidates: list[bool] | None = None


CASES = [
    Case(
        # One node, cpu only: free 0; tasks a (1000, prio 0) and b (2000, prio 1); request 1000 at prio 5.
        # Take both away: room 0 + 3000 = 3000 >= 1000. Reprieve most important first:
        # b (prio 1): 3000 - 2000 = 1000 >= 1000, b stays; a: 1000 - 1000 = 0 < 1000, a goes.
        name="fewest victims on the node: the more important one is reprieved",
        free=[[0.0]],
        request=[1000.0],
        priority=5,
        running=[("a", 0, 0, [1000.0], 0.0), ("b", 0, 1, [2000.0], 0.0)],
        expected=(0, ["a"]),
    ),
    Case(
        # Same shape, but b is as important as the preemptor (5 is not strictly lower): only a may go,
        # and 0 + 1000 = 1000 >= 1000 is room enough.
        name="equal priority is never a victim",
        free=[[0.0]],
        request=[1000.0],
        priority=5,
        running=[("a", 0, 0, [1000.0], 0.0), ("b", 0, 5, [2000.0], 0.0)],
        expected=(0, ["a"]),
    ),
    Case(
        # Request 1500: a alone frees 1000 < 1500, and b may not go: no candidate at all.
        name="not enough lower-priority work anywhere",
        free=[[0.0]],
        request=[1500.0],
        priority=5,
        running=[("a", 0, 0, [1000.0], 0.0), ("b", 0, 5, [2000.0], 0.0)],
        expected=None,
    ),
    Case(
        # Two nodes, request 1000. Node 0 needs victim of prio 3; node 1 needs one of prio 1.
        # Criterion a: highest victim priority 3 vs 1: node 1 wins.
        name="lowest highest-priority victim wins",
        free=[[0.0, 0.0]],
        request=[1000.0],
        priority=9,
        running=[("n0", 0, 3, [1000.0], 0.0), ("n1", 1, 1, [1000.0], 0.0)],
        expected=(1, ["n1"]),
    ),
    Case(
        # Node 0: one victim of prio 2 (2000). Node 1: two victims of prio 2 and 0 (1000 each).
        # a: highest 2 on both. b: node 0 sums 2 + 2**31; node 1 sums 2 + 0 + 2 * 2**31: node 0 is lower.
        name="with kube's offset, one victim beats two of lower priority",
        free=[[0.0, 0.0]],
        request=[2000.0],
        priority=9,
        running=[("big", 0, 2, [2000.0], 0.0), ("x", 1, 2, [1000.0], 0.0), ("y", 1, 0, [1000.0], 0.0)],
        expected=(0, ["big"]),
    ),
    Case(
        # Both nodes: one victim of prio 1. a, b, c tie; d: the latest start of the highest victims:
        # node 0's started at 10, node 1's at 50: node 1 (it has run least, loses least work).
        name="ties go to the victim that started last",
        free=[[0.0, 0.0]],
        request=[1000.0],
        priority=2,
        running=[("old", 0, 1, [1000.0], 10.0), ("young", 1, 1, [1000.0], 50.0)],
        expected=(1, ["young"]),
    ),
    Case(
        # Full tie (same priority, same start): the lowest node index.
        name="full tie: first node",
        free=[[0.0, 0.0]],
        request=[1000.0],
        priority=2,
        running=[("p", 1, 1, [1000.0], 0.0), ("q", 0, 1, [1000.0], 0.0)],
        expected=(0, ["q"]),
    ),
    Case(
        # Two resources (cpu, memory). Node 0 free (500, 0); request (1000, 512).
        # Lower tasks: c (cpu 500, mem 0, prio 1) and m (cpu 0, mem 512, prio 0). Both needed:
        # reprieve c: cpu 500 + 500 - 500 = 500 < 1000 -> victim; m: mem 512 - 512 = 0 < 512 -> victim.
        name="every resource must fit",
        free=[[500.0], [0.0]],
        request=[1000.0, 512.0],
        priority=3,
        running=[("c", 0, 1, [500.0, 0.0], 0.0), ("m", 0, 0, [0.0, 512.0], 0.0)],
        expected=(0, ["c", "m"]),
    ),
    Case(
        # Node 1 would be best (prio 0 victim) but is no candidate (labels, cordoned): node 0.
        name="only candidate nodes",
        free=[[0.0, 0.0]],
        request=[1000.0],
        priority=5,
        running=[("n0", 0, 4, [1000.0], 0.0), ("n1", 1, 0, [1000.0], 0.0)],
        expected=(0, ["n0"]),
        candidates=[True, False],
    ),
    Case(
        # Free 400 + victim 600 = 1000 >= 1000: the free room counts; the 800 task of prio 1
        # is reprieved first (1400 + 800 = 2200; minus 800 leaves 1400 >= 1000), the 600 one
        # goes (1400 - 600 = 800 < 1000).
        name="free room counts toward the request",
        free=[[400.0]],
        request=[1000.0],
        priority=5,
        running=[("a", 0, 1, [800.0], 0.0), ("b", 0, 0, [600.0], 0.0)],
        expected=(0, ["b"]),
    ),
]


def running_of(rows: list[tuple[str, int, int, list[float], float]], n_resources: int) -> RunningTasks:
    if not rows:
        return RunningTasks.empty(n_resources)
    return RunningTasks(
        task=[r[0] for r in rows],
        node=np.array([r[1] for r in rows], dtype=np.int64),
        priority=np.array([r[2] for r in rows], dtype=np.int64),
        demand=np.array([r[3] for r in rows], dtype=np.float64),
        start=np.array([r[4] for r in rows], dtype=np.float64),
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_victim_selection(case: Case) -> None:
    free = np.array(case.free, dtype=np.float64)
    running = running_of(case.running, free.shape[0])
    candidates = np.ones(free.shape[1], bool) if case.candidates is None else np.array(case.candidates)
    before = free.copy()
    got = choose_victims(free, np.array(case.request), case.priority, running, candidates)
    assert np.array_equal(free, before)  # inputs are not mutated
    if case.expected is None:
        assert got is None
        return
    assert got is not None
    node, victims = case.expected
    assert got.node == node
    assert [running.task[i] for i in got.victims] == victims


def test_no_running_tasks_no_preemption() -> None:
    got = choose_victims(np.zeros((1, 2)), np.array([1.0]), 10, RunningTasks.empty(1), np.ones(2, bool))
    assert got is None


def test_negative_priorities_sum_with_the_offset() -> None:
    # Node 0: one victim of -5: sum -5 + 2**31. Node 1: victims -5 and -100 (500 each):
    # -105 + 2 * 2**31, larger: node 0, although node 1's victims are less important on average.
    assert PRIORITY_OFFSET == 2**31
    running = running_of([("a", 0, -5, [1000.0], 0.0), ("b", 1, -5, [500.0], 0.0), ("c", 1, -100, [500.0], 0.0)], 1)
    got = choose_victims(np.zeros((1, 2)), np.array([1000.0]), 0, running, np.ones(2, bool))
    assert got is not None and got.node == 0 and list(got.victims) == [0]


def test_the_pass_evicts_through_its_owner_then_places() -> None:
    # As the live master will call it: the pass names the victims, the owner's evict releases them.
    from orchsim.scheduling import NodeMatrix
    from orchsim.scheduling.queueing import PassExtensions, schedule_pass

    nodes = NodeMatrix.from_capacities({"cpu": [2000.0]})
    nodes.allocate(0, {"cpu": 2000.0})  # "low" runs there

    def running_of() -> RunningTasks:
        return RunningTasks(["low"], np.array([0]), np.array([0]), np.array([[2000.0]]), np.array([0.0]))

    def evict(victims: list[str], node: int) -> None:
        for _ in victims:
            nodes.release(node, {"cpu": 2000.0})

    placed: list[tuple[str, int]] = []

    def place(task: str, node: int, devices: object) -> None:
        nodes.allocate(node, {"cpu": 2000.0})
        placed.append((task, node))

    extensions = PassExtensions(priority_of={"high": 5, "same": 0}.__getitem__, running_of=running_of, evict=evict)
    same = schedule_pass(
        nodes, ["same"], "bin_packing", request_of=lambda t: np.array([2000.0]), place=place, extensions=extensions
    )
    assert same.preempted == [] and placed == [] and same.blocked  # priority 0 may not evict priority 0
    result = schedule_pass(
        nodes, ["high"], "bin_packing", request_of=lambda t: np.array([2000.0]), place=place, extensions=extensions
    )
    assert result.preempted == [("low", "high", 0)]
    assert placed == [("high", 0)] and result.placed == ["high"]


Case4 = tuple[np.ndarray, np.ndarray, int, RunningTasks]  # free, request, priority, running


@st.composite
def preemption_cases(draw: st.DrawFn) -> Case4:
    n_nodes, n_resources = draw(st.integers(1, 4)), draw(st.integers(1, 2))
    n_tasks = draw(st.integers(0, 10))
    amounts = st.integers(0, 4).map(lambda k: k * 500.0)
    free = np.array([[draw(amounts) for _ in range(n_nodes)] for _ in range(n_resources)])
    request = np.array([draw(amounts) for _ in range(n_resources)])
    running = RunningTasks(
        task=list(range(n_tasks)),
        node=np.array([draw(st.integers(0, n_nodes - 1)) for _ in range(n_tasks)], dtype=np.int64),
        priority=np.array([draw(st.integers(-2, 3)) for _ in range(n_tasks)], dtype=np.int64),
        demand=np.array([[draw(amounts) for _ in range(n_resources)] for _ in range(n_tasks)]).reshape(
            n_tasks, n_resources
        ),
        start=np.array([draw(st.integers(0, 5)) for _ in range(n_tasks)], dtype=np.float64),
    )
    return free, request, draw(st.integers(-1, 4)), running


@given(preemption_cases())
@settings(max_examples=200, deadline=None)
def test_victims_make_room_are_lower_and_none_could_stay(case: Case4) -> None:
    free, request, priority, running = case
    got = choose_victims(free, request, priority, running, np.ones(free.shape[1], bool))
    if got is None:
        return
    victims = got.victims
    assert len(victims) and np.all(running.priority[victims] < priority)
    assert np.all(running.node[victims] == got.node)
    room = free[:, got.node] + running.demand[victims].sum(axis=0)
    assert np.all(room >= request)  # evicting them makes room
    # Minimal in kube's sense: none of them could be given back. Room only shrinks as tasks are
    # reprieved, so a victim that did not fit back when its turn came does not fit back at the end.
    for victim in victims.tolist():
        assert not np.all(room - running.demand[victim] >= request)
