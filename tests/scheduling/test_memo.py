"""The decision memo (``memo.py``) decides exactly what the pipeline decides, and only for pure policies.

Random small clusters go through random placements, completions and cordons; at every
step a memoised ``PreparedPolicy`` and a plain one decide the same request on the same
matrix, and must agree on node, score and counts. Stateful policies (a cursor, a
generator) never get a memo, and the memo's counters show that it is used.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from orchsim.scheduling import POLICIES, NodeMatrix, PolicyRegistry, PreparedPolicy, decide
from orchsim.scheduling.memo import MAX_CELLS, DecisionMemo

PURE = sorted(name for name in POLICIES if POLICIES.spec(name).pure)
STATEFUL = ("round_robin", "random", "hybrid")
SHAPES = [np.array([500.0, 256.0]), np.array([1000.0, 1000.0]), np.array([250.0, 2048.0])]


def test_the_built_in_pure_policies_are_the_ones_without_state() -> None:
    assert set(PURE) >= {"bin_packing", "best_fit", "spread", "least_allocated", "first_fit"}
    for name in STATEFUL:
        assert not POLICIES.spec(name).pure
        assert PreparedPolicy(name, memo=True).memo is None


def test_a_policy_that_takes_a_generator_or_a_cursor_is_never_pure() -> None:
    registry = PolicyRegistry()
    spec = registry.register("noisy", lambda nodes, request, *, rng: rng.random(nodes.n_nodes), pure=True)
    assert not spec.pure
    assert PreparedPolicy("noisy", registry=registry, memo=True).memo is None


def test_no_memo_with_sampling_or_by_default() -> None:
    assert PreparedPolicy("bin_packing").memo is None
    assert PreparedPolicy("bin_packing", memo=True, sample="log2").memo is None


@settings(max_examples=60, deadline=None)
@given(
    policy=st.sampled_from(PURE),
    capacities=st.lists(st.sampled_from([1000.0, 2000.0, 4096.0]), min_size=1, max_size=6),
    steps=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 50)), max_size=60),
)
def test_memoised_decisions_equal_the_pipeline_s(policy: str, capacities: list[float], steps: list) -> None:
    nodes = NodeMatrix.from_capacities({"cpu": capacities, "memory": [c * 2 for c in capacities]})
    memoised, plain = PreparedPolicy(policy, memo=True), PreparedPolicy(policy)
    running: list[tuple[int, np.ndarray]] = []
    for kind, shape, pick in steps:
        request = SHAPES[shape]
        if kind <= 1:  # decide and place
            got, want = decide(nodes, request, memoised, explain=False), decide(nodes, request, plain, explain=False)
            assert (got.node, got.node_id, got.score) == (want.node, want.node_id, want.score)
            assert got.feasible == want.feasible
            assert memoised.last == plain.last
            if want.node is not None:
                nodes.allocate_unchecked(want.node, request.tolist())
                running.append((want.node, request))
        elif kind == 2 and running:  # a completion
            node, done = running.pop(pick % len(running))
            nodes.release_unchecked(node, done.tolist())
        elif kind == 3:  # a cordon or uncordon
            node = pick % nodes.n_nodes
            nodes.set_schedulable(node, not bool(nodes.schedulable[node]))


def test_the_memo_answers_repeated_states_and_stays_off_for_large_clusters() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000.0] * 4, "memory": [1000.0] * 4})
    prepared = PreparedPolicy("bin_packing", memo=True)
    for _ in range(3):
        node = decide(nodes, SHAPES[0], prepared, explain=False).node
        nodes.allocate_unchecked(node, SHAPES[0].tolist())
        nodes.release_unchecked(node, SHAPES[0].tolist())
    assert (prepared.memo.hits, prepared.memo.misses) == (2, 1)  # type: ignore[union-attr]
    wide = [1000.0] * (MAX_CELLS // 2 + 1)  # one node more than a memo takes at two resources
    big = NodeMatrix.from_capacities({"cpu": wide, "memory": wide})
    assert DecisionMemo().key(big, SHAPES[0]) is None


def test_a_stored_decision_is_not_reused_under_another_node_id() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000.0, 1000.0], "memory": [1000.0, 1000.0]}, ids=["a", "b"])
    prepared = PreparedPolicy("first_fit", memo=True)
    assert decide(nodes, SHAPES[0], prepared, explain=False).node_id == "a"
    nodes.remove_nodes([0])
    nodes.add_nodes(["c"], np.array([[1000.0], [1000.0]]))  # the same numbers, node "b" now first
    assert decide(nodes, SHAPES[0], prepared, explain=False).node_id == "b"
