"""The shortcuts of the hot path decide exactly what the full pipeline decides.

* ``select`` skips the scorer when one node fits and the policy neither vetoes nor
  draws (it cannot change the answer); a vetoing policy is always asked.
* A ``SchedulingPass`` skips tasks that found no room and cannot have gained any, and
  places one that fits the only node that gained room there without scoring (it
  provably fits nowhere else).
* ``allocate_unchecked``/``release_unchecked`` leave the matrix as the checked calls do.

Each is compared with the slow path (``explain=True`` tries every task and always runs
the scorer) on random clusters and random arrival, completion and scale-out sequences.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchsim.scheduling import POLICIES, NodeMatrix, PolicyRegistry, select
from orchsim.scheduling.queueing import SchedulingPass

DETERMINISTIC = sorted(name for name in POLICIES if POLICIES.spec(name).skippable)


def counting_registry(vetoes: bool) -> tuple[PolicyRegistry, list[int]]:
    calls: list[int] = []
    registry = PolicyRegistry()

    def scorer(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
        calls.append(1)
        return np.full(nodes.n_nodes, -np.inf)  # refuses every node

    registry.register("counted", scorer, vetoes=vetoes)
    return registry, calls


def one_node_free() -> NodeMatrix:
    nodes = NodeMatrix.from_capacities({"cpu": [1000, 1000, 1000]})
    nodes.allocate(0, {"cpu": 1000})
    nodes.allocate(2, {"cpu": 1000})
    return nodes


def test_the_scorer_of_a_non_vetoing_policy_is_skipped_when_one_node_fits() -> None:
    registry, calls = counting_registry(vetoes=False)
    decision = select(one_node_free(), {"cpu": 500}, "counted", registry=registry, explain=False)
    assert (decision.node, decision.score, calls) == (1, None, [])
    assert "the only one of 3 nodes that fits" in decision.reason
    # explain=True (the live master's choice) always scores, so the decision reports one.
    select(one_node_free(), {"cpu": 500}, "counted", registry=registry, explain=True)
    assert calls == [1]


def test_a_vetoing_policy_is_asked_even_about_the_only_node() -> None:
    registry, calls = counting_registry(vetoes=True)
    decision = select(one_node_free(), {"cpu": 500}, "counted", registry=registry, explain=False)
    assert decision.node is None and decision.vetoed and calls == [1]


def test_user_policies_veto_unless_they_promise_not_to() -> None:
    registry = PolicyRegistry()
    spec = registry.register("mine", lambda nodes, request: np.zeros(nodes.n_nodes))
    assert spec.vetoes and not spec.skippable
    assert not POLICIES.spec("random").skippable  # it draws: skipping would shift its stream
    assert POLICIES.spec("bin_packing").skippable


def run_fifo(
    capacities: list[int], ops: list[tuple[str, int]], policy: str, explain: bool, discipline: str
) -> list[tuple[int, int]]:
    """A minimal engine: arrivals join the queue, completions free a node, nodes join; a pass after each."""
    nodes = NodeMatrix.from_capacities({"cpu": capacities, "memory": [4096] * len(capacities)})
    sizes: list[np.ndarray] = []
    log: list[tuple[int, int]] = []
    running: dict[int, int] = {}

    def place(task: int, node: int, devices: object) -> None:
        nodes.allocate(node, sizes[task])
        running[task] = node
        log.append((task, node))

    scheduler = SchedulingPass(
        policy, request_of=sizes.__getitem__, place=place, discipline=discipline, explain=explain, window=3
    )
    queue: deque[int] = deque()
    for kind, value in ops:
        gained, new = None, ()
        if kind == "arrive":
            sizes.append(nodes.request_vector({"cpu": value, "memory": value}))
            queue.append(len(sizes) - 1)
            new = (len(sizes) - 1,)
        elif kind == "grow":
            nodes.add_nodes([f"new-{len(nodes)}"], np.array([[value], [4096.0]]))
            scheduler.forget()
        elif running:
            task = sorted(running)[value % len(running)]
            gained = running.pop(task)
            nodes.release(gained, sizes[task])
        result = scheduler.run(nodes, queue, gained=gained, new=new)
        for task in result.placed:
            queue.remove(task)
    return log


operations = st.lists(
    st.one_of(
        st.tuples(st.just("arrive"), st.integers(100, 1500)),
        st.tuples(st.just("complete"), st.integers(0, 50)),
        st.tuples(st.just("grow"), st.integers(500, 2000)),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(capacities=st.lists(st.integers(500, 2000), min_size=1, max_size=5), ops=operations)
@pytest.mark.parametrize("discipline", ["fifo", "backfill"])
def test_fast_pass_places_exactly_as_the_full_pipeline(
    discipline: str, capacities: list[int], ops: list[tuple[str, int]]
) -> None:
    for policy in DETERMINISTIC:
        fast = run_fifo(capacities, ops, policy, explain=False, discipline=discipline)
        full = run_fifo(capacities, ops, policy, explain=True, discipline=discipline)
        assert fast == full, policy


@settings(max_examples=60, deadline=None)
@given(
    capacities=st.lists(st.integers(1, 5000), min_size=1, max_size=6),
    steps=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3000), st.integers(0, 3000)), max_size=30),
)
def test_unchecked_allocation_matches_the_checked_one(capacities: list[int], steps: list[tuple[int, int, int]]) -> None:
    checked = NodeMatrix.from_capacities({"cpu": capacities, "memory": capacities})
    unchecked = checked.copy()
    placed: list[tuple[int, np.ndarray]] = []
    for node, cpu, memory in steps:
        node %= len(capacities)
        vec = np.array([float(cpu), float(memory)])
        if np.all(checked.free[:, node] >= vec):
            checked.allocate(node, vec)
            unchecked.allocate_unchecked(node, vec.tolist())
            placed.append((node, vec))
        elif placed:
            node, vec = placed.pop(0)
            checked.release(node, vec)
            unchecked.release_unchecked(node, vec.tolist())
        for name in ("allocated", "free", "tasks"):
            np.testing.assert_allclose(getattr(unchecked, name), getattr(checked, name), rtol=0, atol=1e-9)
