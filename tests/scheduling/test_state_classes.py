"""State classes (``state_classes.py``) decide exactly what the plain pipeline decides.

Random clusters of a few node kinds go through random placements, completions (checked
and unchecked), cordons, node joins and removals; at every step a decision on the matrix keeping
state classes and one on an identical plain copy must agree on node, id, score, counts
and the policy's cursor, for every ``per_node`` policy. Classes turn themselves off past
``MAX_CLASSES`` states (and hand over to feasibility masks when the owner named shapes).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchsim.scheduling import POLICIES, NodeMatrix, PolicyRegistry, PreparedPolicy, decide, select
from orchsim.scheduling.state_classes import MAX_CLASSES, keep_state_classes

PER_NODE = sorted(name for name in POLICIES if POLICIES.spec(name).per_node)
SHAPES = [np.array([500.0, 256.0]), np.array([1000.0, 1000.0]), np.array([250.0, 2048.0]), np.array([0.0, 0.0])]
KINDS = [(1000.0, 2000.0), (2000.0, 1000.0), (4096.0, 4096.0), (0.0, 1000.0)]


def test_per_node_policies_are_the_pure_ones_that_score_a_node_by_its_own_column() -> None:
    assert {"bin_packing", "spread", "least_allocated", "best_fit", "dot_product"} <= set(PER_NODE)
    for name in ("first_fit", "round_robin", "random", "hybrid", "nomad_binpack"):
        assert not POLICIES.spec(name).per_node  # position, state, draws; exp's last bit may vary by array length
    registry = PolicyRegistry()
    spec = registry.register("ranked", lambda nodes, request, *, feasible: feasible * 1.0, per_node=True)
    assert not spec.per_node  # its scores depend on the other nodes through the mask


def _pair(kinds: list[int]) -> tuple[NodeMatrix, NodeMatrix]:
    caps = [KINDS[k] for k in kinds]
    capacities = {"cpu": [c for c, _ in caps], "memory": [m for _, m in caps]}
    return NodeMatrix.from_capacities(capacities), NodeMatrix.from_capacities(capacities)


def _agree(policy: str, classed: NodeMatrix, plain: NodeMatrix, fast: PreparedPolicy, slow: PreparedPolicy, req):  # type: ignore[no-untyped-def]
    got, want = decide(classed, req, fast, explain=False), decide(plain, req, slow, explain=False)
    assert (got.node, got.node_id, got.score, got.feasible, got.vetoed) == (
        want.node,
        want.node_id,
        want.score,
        want.feasible,
        want.vetoed,
    ), policy
    assert fast.last == slow.last
    bare = select(plain, req, policy, explain=False)  # the one entry point, prepared afresh
    assert (bare.node, bare.score) == (want.node, want.score)
    return want


@settings(max_examples=80, deadline=None)
@given(
    policy=st.sampled_from(PER_NODE),
    kinds=st.lists(st.integers(0, 3), min_size=1, max_size=12),
    steps=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.integers(0, 60)), max_size=80),
)
def test_decisions_by_class_equal_the_plain_pipeline_s(policy: str, kinds: list[int], steps: list) -> None:
    classed, plain = _pair(kinds)
    fast, slow = PreparedPolicy(policy), PreparedPolicy(policy)
    keep_state_classes(classed, fast)
    running: list[tuple[int, np.ndarray, bool]] = []
    for step, (kind, shape, pick) in enumerate(steps):
        request = SHAPES[shape]
        if kind <= 1:  # decide and place, unchecked (the simulator) or checked (the live master)
            want = _agree(policy, classed, plain, fast, slow, request)
            if want.node is not None:
                for nodes in (classed, plain):
                    if kind == 0:
                        nodes.allocate_unchecked(want.node, request.tolist())
                    else:
                        nodes.allocate(want.node, request)
                running.append((want.node, request, kind == 0))
        elif kind == 2 and running:  # a completion, released as it was allocated
            node, done, unchecked = running.pop(pick % len(running))
            for nodes in (classed, plain):
                nodes.release_unchecked(node, done.tolist()) if unchecked else nodes.release(node, done)
        elif kind == 3:  # a cordon or uncordon
            node = pick % plain.n_nodes
            for nodes in (classed, plain):
                nodes.set_schedulable(node, not bool(nodes.schedulable[node]))
        elif kind == 4 and pick % 2:  # a node joins: class ids start over
            for nodes in (classed, plain):
                nodes.add_nodes([f"new-{step}"], np.array([[KINDS[shape][0]], [KINDS[shape][1]]]))
        elif kind == 4 and plain.n_nodes > 1:  # an idle node leaves: columns move, class ids start over
            idle = np.flatnonzero(plain.tasks == 0)
            if len(idle):
                gone = int(idle[pick % len(idle)])
                mapping = [nodes.remove_nodes([gone]) for nodes in (classed, plain)][-1]
                running = [(int(mapping[node]), request, unchecked) for node, request, unchecked in running]
        for other in SHAPES:  # every shape, so that a node in a wrong class shows
            _agree(policy, classed, plain, fast, slow, other)
        # A move seen before writes the class's columns instead of the arithmetic: the same bits.
        for name in ("allocated", "free", "tasks", "schedulable"):
            assert np.array_equal(getattr(classed, name), getattr(plain, name)), name


def test_whole_node_tasks_leave_two_states_and_the_lowest_free_node_wins() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000.0] * 300, "memory": [1000.0] * 300})
    prepared = PreparedPolicy("bin_packing")
    classes = keep_state_classes(nodes, prepared)
    assert classes is not None and nodes.state_classes is classes
    whole = np.array([1000.0, 1000.0])
    for expected in range(5):
        decision = decide(nodes, whole, prepared, explain=False)
        assert (decision.node, decision.feasible) == (expected, 300 - expected)
        nodes.allocate_unchecked(decision.node, whole.tolist())
    nodes.release_unchecked(2, whole.tolist())
    assert decide(nodes, whole, prepared, explain=False).node == 2  # empty again, and the lowest empty one
    assert len(classes.counts) == 2  # empty and full, whatever the node


@pytest.mark.parametrize("shapes", [None, [np.array([1.0, 1.0])]])
def test_classes_turn_themselves_off_past_the_limit(shapes: list | None) -> None:
    n = MAX_CLASSES + 4
    nodes = NodeMatrix.from_capacities({"cpu": [1000.0] * n, "memory": [1000.0] * n})
    prepared = PreparedPolicy("bin_packing")
    classes = keep_state_classes(nodes, prepared, shapes)
    assert classes is not None
    for node in range(n):  # every node a state of its own
        nodes.allocate_unchecked(node, [float(node + 1), 0.0])
    assert classes.off and nodes.state_classes is None
    assert (nodes.fit_masks is not None) == (shapes is not None)
    decision = decide(nodes, np.array([999.0, 1.0]), prepared, explain=False)
    assert decision.node == 0 and decision.feasible == 1  # the plain pipeline answers


def test_no_classes_for_policies_that_are_not_per_node_or_with_extra_filters() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000.0] * 3, "memory": [1000.0] * 3})
    assert keep_state_classes(nodes, PreparedPolicy("first_fit")) is None
    assert keep_state_classes(nodes, PreparedPolicy("spread", filters={"max_tasks_per_node": {"limit": 2}})) is None
    assert nodes.state_classes is None


@pytest.mark.parametrize("policy", PER_NODE)
def test_a_node_filled_and_emptied_again_decides_as_an_empty_node(policy: str) -> None:
    classed, plain = _pair([0, 0, 0])
    fast, slow = PreparedPolicy(policy), PreparedPolicy(policy)
    keep_state_classes(classed, fast)
    request = SHAPES[0]
    for step in ("+", "+", "-", "-", "+", "-"):  # each change's class is looked up once seen (allocation != release)
        for nodes in (classed, plain):
            if step == "+":
                nodes.allocate_unchecked(1, request.tolist())
            else:
                nodes.release_unchecked(1, request.tolist())
        for shape in SHAPES:
            _agree(policy, classed, plain, fast, slow, shape)
