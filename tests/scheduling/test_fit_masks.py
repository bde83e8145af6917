"""Kept feasibility masks (``NodeMatrix.keep_fit_masks``) and ``SchedulingPass.run_alone``.

The masks must equal ``infeasible`` after any sequence of the matrix's changes, and a
decision read from them must be the decision ``select`` makes from scratch; ``run_alone``
must leave what ``run`` over a one-task queue leaves.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchsim.scheduling import NodeMatrix, PreparedPolicy, decide
from orchsim.scheduling.filters import infeasible
from orchsim.scheduling.fit_masks import MAX_SHAPES, few_shapes
from orchsim.scheduling.queueing import SchedulingPass

SHAPES = [np.array([500.0, 1000.0]), np.array([2000.0, 0.0]), np.array([4000.0, 8000.0])]


def check(nodes: NodeMatrix) -> None:
    for shape in SHAPES:
        kept = nodes.fit_masks.get(shape)  # type: ignore[union-attr]
        expected = infeasible(nodes, shape)
        assert kept[0].tolist() == expected.tolist()
        assert kept[1] == int(expected.sum())
        assert kept[3] == expected.tolist()


operation = st.tuples(
    st.sampled_from(["allocate", "release", "cordon", "uncordon", "join", "leave"]), st.integers(0, 99)
)


@settings(max_examples=40, deadline=None)
@given(st.lists(operation, max_size=40), st.integers(0, 2**16))
def test_the_masks_follow_every_change_of_the_matrix(operations: list[tuple[str, int]], seed: int) -> None:
    rng = np.random.default_rng(seed)
    nodes = NodeMatrix.from_capacities(
        {"cpu": rng.choice([2000.0, 4000.0], 6), "memory": rng.choice([4096.0, 8192.0], 6)}
    )
    nodes.keep_fit_masks(SHAPES)
    placed: list[tuple[int, np.ndarray, bool]] = []
    check(nodes)
    for step, (kind, k) in enumerate(operations):
        n = nodes.n_nodes
        if kind == "allocate" and n:
            shape, node = SHAPES[k % len(SHAPES)], k % n
            if bool(np.all(nodes.free[:, node] >= shape)):  # a cordoned node may still take one
                unchecked = k % 2 == 0
                (nodes.allocate_unchecked(node, shape.tolist()) if unchecked else nodes.allocate(node, shape))
                placed.append((node, shape, unchecked))
        elif kind == "release" and placed:
            node, shape, unchecked = placed.pop(k % len(placed))
            (nodes.release_unchecked(node, shape.tolist()) if unchecked else nodes.release(node, shape))
        elif kind in ("cordon", "uncordon") and n:
            nodes.set_schedulable(k % n, kind == "uncordon")
        elif kind == "join":
            nodes.add_node(f"new-{step}", {"cpu": 4000.0, "memory": 8192.0})
        elif kind == "leave" and n:
            gone = k % n
            mapping = nodes.remove_nodes([gone])
            placed = [(int(mapping[nd]), s, u) for nd, s, u in placed if nd != gone]
        check(nodes)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from(["bin_packing", "spread", "first_fit", "round_robin", "best_fit"]))
def test_a_decision_from_the_masks_is_the_decision_from_scratch(seed: int, policy: str) -> None:
    rng = np.random.default_rng(seed)
    kept = NodeMatrix.from_capacities(
        {"cpu": rng.choice([2000.0, 4000.0], 12), "memory": rng.choice([4096.0, 8192.0], 12)}
    )
    kept.keep_fit_masks(SHAPES)
    plain = kept.copy()
    assert plain.fit_masks is None
    with_masks, without = PreparedPolicy(policy), PreparedPolicy(policy)
    for _ in range(30):
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        a = decide(kept, shape, with_masks, explain=False)
        b = decide(plain, shape, without, explain=False)
        assert (a.node, a.score, a.feasible) == (b.node, b.score, b.feasible)
        if a.node is not None:
            kept.allocate_unchecked(a.node, shape.tolist())
            plain.allocate_unchecked(b.node, shape.tolist())  # type: ignore[arg-type]


def test_few_shapes_keeps_only_a_handful() -> None:
    same = np.tile([[1000.0, 1000.0]], (50, 1))
    assert [s.tolist() for s in few_shapes(same)] == [[1000.0, 1000.0]]  # type: ignore[union-attr]
    many = np.column_stack([np.arange(MAX_SHAPES + 1, dtype=float), np.ones(MAX_SHAPES + 1)])
    assert few_shapes(many) is None
    assert few_shapes(np.zeros((0, 2))) is None
    with pytest.raises(ValueError, match="at most"):
        NodeMatrix.from_capacities({"cpu": [1.0], "memory": [1.0]}).keep_fit_masks(list(many))


@pytest.mark.parametrize("free_nodes", [0, 1, 3])
def test_run_alone_leaves_what_a_pass_over_one_task_leaves(free_nodes: int) -> None:
    def cluster() -> NodeMatrix:
        nodes = NodeMatrix.from_capacities({"cpu": [1000.0] * 4, "memory": [1000.0] * 4})
        for node in range(4 - free_nodes):
            nodes.allocate(node, {"cpu": 1000.0, "memory": 1000.0})
        return nodes

    request = np.array([1000.0, 1000.0])
    outcomes = []
    for alone in (True, False):
        nodes, placed = cluster(), []

        def place(task: int, node: int, devices: object, nodes: NodeMatrix = nodes, placed: list = placed) -> None:
            nodes.allocate(node, request)
            placed.append((task, node))

        scheduler = SchedulingPass("bin_packing", request_of=lambda task: request, place=place)
        if alone:
            node = scheduler.run_alone(nodes, 7)
        else:
            result = scheduler.run(nodes, [7], new=(7,))
            node = placed[0][1] if result.placed else None
        # The memory: a blocked task is skipped by the next pass with no room gained.
        again = scheduler.run(nodes, [7])
        outcomes.append((node, placed, again.decisions))
    assert outcomes[0] == outcomes[1]
    assert (outcomes[0][0] is None) == (free_nodes == 0)


def test_run_alone_sets_aside_a_task_that_never_fits() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000.0]})
    scheduler = SchedulingPass(
        "bin_packing", request_of=lambda task: np.array([5000.0]), place=lambda *a: None, never_fits=lambda task: True
    )
    assert scheduler.run_alone(nodes, 1) == -1
    with pytest.raises(ValueError, match="run_alone"):
        SchedulingPass("bin_packing", request_of=lambda t: np.zeros(1), place=lambda *a: None, explain=True).run_alone(
            nodes, 1
        )
