"""Node sampling: kube-scheduler's percentage rule and Nomad's candidate limit, in the core."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from orchsim.scheduling import FILTERS, NodeMatrix, PreparedPolicy, decide, select
from orchsim.scheduling.filters import infeasible
from orchsim.scheduling.sampling import Sampling, parse_sampling, scan
from orchsim.scheduling.subset import NodeSubset


# ---------------------------------------------------------------------------- how many
@pytest.mark.parametrize(
    ("n", "percentage", "wanted"),
    [
        (50, 0, 50),  # under kube's minFeasibleNodesToFind (100): every node
        (99, 10, 99),
        (200, 10, 100),  # 10% of 200 = 20, raised to the minimum 100
        (1_000, 0, 420),  # adaptive: 50 - 1000 // 125 = 42%
        (5_000, 0, 500),  # 50 - 40 = 10%
        (100_000, 0, 5_000),  # 50 - 800 < 5: the 5% floor
        (100_000, 1, 1_000),
        (1_000, 100, 1_000),  # 100%: every node
        (3_000, 12.5, 375),
    ],
)
def test_kube_percentage_rule(n: int, percentage: float, wanted: int) -> None:
    assert Sampling(percentage=percentage).wanted(n) == wanted


@pytest.mark.parametrize(
    ("n", "candidates", "wanted"),
    [
        (1, 0, 1),  # never more than the nodes
        (3, 0, 2),  # log2(3) = 1.58 -> 2; Nomad's floor is 2 anyway
        (100, 0, 7),  # ceil(6.64)
        (1_024, 0, 10),
        (100_000, 0, 17),  # ceil(16.61)
        (100, 5, 5),
        (4, 5, 4),
    ],
)
def test_nomad_candidate_rule(n: int, candidates: int, wanted: int) -> None:
    assert Sampling(candidates=candidates).wanted(n) == wanted


def test_parse_sampling_forms_and_errors() -> None:
    assert parse_sampling(None) is None and parse_sampling("all") is None
    assert parse_sampling("log2") == Sampling(candidates=0, start="random")
    assert parse_sampling({"candidates": 8}) == Sampling(candidates=8, start="random")
    assert parse_sampling({"candidates": 8, "start": "rotating"}) == Sampling(candidates=8, start="rotating")
    assert parse_sampling({"percentage": "adaptive"}) == Sampling(percentage=0.0)
    assert parse_sampling({"candidates": "log2"}) == Sampling(candidates=0, start="random")
    assert parse_sampling({"percentage": 30}) == Sampling(percentage=30.0, start="rotating")
    for bad, words in [
        ("some", "use"),
        ({"percentage": 130}, "percentage"),
        ({"percentage": True}, "percentage"),
        ({"candidates": 2.5}, "candidates"),
        ({"candidates": -1}, "candidates"),
        ({"candidates": 0}, "candidates"),  # 0 is how log2 is held inside, not a count to ask for
        ({"candidates": 2, "start": "middle"}, "start"),
        ({"percentage": 5, "candidates": 2}, "use"),
        ({"fraction": 0.5}, "use"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_sampling(bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- the scan
def cluster(free_cpu: list[int]) -> NodeMatrix:
    """Nodes of 1000 cpu with ``free_cpu`` left each (and 1000 memory, all free)."""
    n = len(free_cpu)
    nodes = NodeMatrix.from_capacities({"cpu": [1000] * n, "memory": [1000] * n})
    for i, free in enumerate(free_cpu):
        if free < 1000:
            nodes.allocate(i, {"cpu": 1000 - free})
    return nodes


def fits(nodes: NodeMatrix, request: np.ndarray):  # type: ignore[no-untyped-def]
    return lambda lo, hi: ~infeasible(NodeSubset(nodes, slice(lo, hi)), request, None)


def test_scan_takes_the_first_feasible_nodes_from_the_start_and_wraps() -> None:
    # free cpu: nodes 1, 3, 4, 7 can hold 500
    nodes = cluster([100, 600, 100, 900, 500, 0, 0, 700, 100, 100])
    req = nodes.request_vector({"cpu": 500})
    found, examined = scan(nodes, 2, 2, fits(nodes, req))
    assert found.tolist() == [3, 4] and examined == 3  # examined 2, 3, 4: stops at the last taken
    found, examined = scan(nodes, 5, 3, fits(nodes, req))
    assert found.tolist() == [7, 1, 3] and examined == 9  # 5..9, wraps to 0..3
    found, examined = scan(nodes, 0, 10, fits(nodes, req))
    assert sorted(found.tolist()) == [1, 3, 4, 7] and examined == 10  # fewer than wanted: every node


def test_scan_windows_grow_over_a_large_cluster() -> None:
    free = [0] * 5_000
    for i in (10, 4_000, 4_999):
        free[i] = 1000
    nodes = cluster(free)
    found, examined = scan(nodes, 100, 2, fits(nodes, nodes.request_vector({"cpu": 1})))
    assert found.tolist() == [4_000, 4_999] and examined == 4_900


# ---------------------------------------------------------------------------- decisions
def test_candidates_score_only_the_first_k_feasible_nodes() -> None:
    # bin_packing prefers the fullest: node 8 (free 150) would win among all, but the scan
    # from node 0 with k=2 finds nodes 1 and 3 first, and of those 3 is fuller.
    nodes = cluster([100, 900, 100, 600, 800, 0, 0, 700, 150, 100])
    req = nodes.request_vector({"cpu": 120})
    assert select(nodes, req, "bin_packing").node == 8
    prepared = PreparedPolicy("bin_packing", sample={"candidates": 2, "start": "rotating"})
    d = decide(nodes, req, prepared)
    assert (d.node, d.node_id, d.feasible, d.n_nodes) == (3, "node-3", 2, 10)
    assert prepared.sample_start == 4  # examined 0..3
    d = decide(nodes, req, prepared)  # the next scan starts at 4: nodes 4 and 7
    assert d.node == 7 and prepared.sample_start == 8
    d = decide(nodes, req, prepared)  # 8, then wraps: 8 and 1 -> 8 (fullest)
    assert d.node == 8 and prepared.sample_start == 2


def test_kube_rotation_advances_by_the_nodes_examined() -> None:
    rng = np.random.default_rng(3)
    nodes = cluster(rng.integers(0, 1001, 400).tolist())
    req = nodes.request_vector({"cpu": 300})
    ok = np.flatnonzero(~infeasible(nodes, req, None))
    prepared = PreparedPolicy("spread", sample={"percentage": 10})  # 10% of 400 = 40 -> at least 100
    decide(nodes, req, prepared)
    # the 100th feasible node from 0 is where the scan stopped
    assert prepared.sample_start == ok[99] + 1


def test_a_sample_of_every_node_is_the_unsampled_decision() -> None:
    rng = np.random.default_rng(5)
    nodes = cluster(rng.integers(0, 1001, 60).tolist())
    for policy in ("bin_packing", "spread", "best_fit", "round_robin"):
        plain, sampled = PreparedPolicy(policy), PreparedPolicy(policy, sample={"percentage": 50})  # 60 < 100
        for cpu in (50, 300, 700, 990):
            assert decide(nodes, {"cpu": cpu}, sampled).node == decide(nodes, {"cpu": cpu}, plain).node


def test_nothing_fits_falls_back_to_the_full_decision_and_its_reasons() -> None:
    nodes = cluster([100] * 300)
    d = select(nodes, {"cpu": 500}, "bin_packing", sample="log2")
    assert d.node is None and d.reason == "0/300 nodes fit: 300 insufficient cpu"


def test_random_start_draws_from_the_policy_generator() -> None:
    nodes = cluster([1000] * 1_000)
    a = PreparedPolicy("first_fit", rng=np.random.default_rng(1), sample="log2")
    b = PreparedPolicy("first_fit", rng=np.random.default_rng(1), sample="log2")
    first = [decide(nodes, {"cpu": 1}, a).node for _ in range(20)]
    assert first == [decide(nodes, {"cpu": 1}, b).node for _ in range(20)]
    assert len(set(first)) > 10  # first_fit over all nodes would always say 0


def test_sampling_with_devices_chooses_devices_on_the_right_node() -> None:
    n = 500
    nodes = NodeMatrix.from_capacities({"cpu": [8000] * n, "memory": [8000] * n, "gpu": [4000] * n})
    nodes.track_devices("gpu")
    for i in range(0, n, 2):  # even nodes: three GPUs taken and half of the fourth
        nodes.allocate(i, {"gpu": 3000}, {"gpu": (0, 1, 2)})
        nodes.allocate(i, {"gpu": 500}, {"gpu": (3,)})
    prepared = PreparedPolicy("gpu_best_fit", sample={"candidates": 3, "start": "rotating"})
    d = decide(nodes, {"cpu": 100, "gpu": 600}, prepared)  # 600 fits no even node's half GPU
    assert d.node is not None and d.node % 2 == 1
    nodes.allocate(d.node, {"cpu": 100, "gpu": 600}, d.devices)  # the chosen devices fit that node
    assert len(d.devices["gpu"]) == 1
    d = decide(nodes, {"cpu": 100, "gpu": 500}, prepared)  # best fit: the half GPU left on an even node
    assert d.node is not None and d.node % 2 == 0 and d.devices == {"gpu": (3,)}


@settings(max_examples=60, deadline=None)
@given(
    free=st.lists(st.integers(0, 1000), min_size=1, max_size=300),
    cpu=st.integers(1, 1000),
    k=st.integers(1, 20),
    start=st.integers(0, 10_000),
)
def test_the_sampled_choice_is_the_best_among_the_nodes_the_scan_found(
    free: list[int], cpu: int, k: int, start: int
) -> None:
    nodes = cluster(free)
    req = nodes.request_vector({"cpu": cpu})
    prepared = PreparedPolicy("bin_packing", sample={"candidates": k, "start": "rotating"})
    prepared.sample_start = start
    d = decide(nodes, req, prepared)
    found, _ = scan(nodes, start % nodes.n_nodes, min(k, nodes.n_nodes), fits(nodes, req))
    if not len(found):
        assert d.node is None
        return
    among = select(NodeSubset(nodes, np.sort(found)), req, "bin_packing")
    assert d.node in found.tolist()
    assert d.score == pytest.approx(among.score, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    free=st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 1000), st.booleans()), min_size=1, max_size=400),
    request=st.tuples(st.integers(0, 1000), st.integers(0, 1000)),
    sample=st.sampled_from(["log2", {"candidates": 5}, {"percentage": 30}, {"percentage": "adaptive"}]),
    start=st.integers(0, 10_000),
)
def test_the_built_in_scan_decides_as_the_filters_on_every_window(
    free: list[tuple[int, int, bool]], request: tuple[int, int], sample: object, start: int
) -> None:
    """``fits_range`` and the remembered window (no ``NodeSubset`` per window) against the generic scan.

    A filter that rejects nothing sends the other decision through the generic path
    (the filters run on a ``NodeSubset`` of every window and of the decision's window).
    """
    n = len(free)
    nodes = NodeMatrix.from_capacities({"cpu": [1000.0] * n, "memory": [1000.0] * n})
    for i, (cpu, memory, up) in enumerate(free):
        nodes.allocate(i, {"cpu": 1000 - cpu, "memory": 1000 - memory})
        nodes.set_schedulable(i, up)
    req = nodes.request_vector({"cpu": request[0], "memory": request[1]})
    FILTERS.register("rejects_nothing", lambda nodes, request, task: np.ones(nodes.n_nodes, dtype=bool))
    try:
        generic = PreparedPolicy("bin_packing", sample=sample, filters={"rejects_nothing": {}})
        built_in = PreparedPolicy("bin_packing", sample=sample)
        for prepared in (generic, built_in):
            prepared.sample_start = start
            prepared._rng = np.random.default_rng(start)
        for _ in range(3):  # the scan moves on (rotating) or draws again (random)
            want, got = decide(nodes, req, generic, explain=False), decide(nodes, req, built_in, explain=False)
            assert (got.node, got.score, got.feasible) == (want.node, want.score, want.feasible)
            assert built_in.sample_start == generic.sample_start
    finally:
        FILTERS.unregister("rejects_nothing")


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(8, 200),
    seed=st.integers(0, 2**32 - 1),
    request=st.tuples(st.integers(0, 4), st.integers(0, 4)),
    k=st.integers(1, 12),
    before_end=st.integers(1, 8),
)
def test_a_scan_that_wraps_decides_as_on_the_nodes_it_found_in_scan_order(
    n: int, seed: int, request: tuple[int, int], k: int, before_end: int
) -> None:
    """The wrapped window (two joined slices, masked) against a subset of exactly the nodes found.

    The scan starts a few nodes before the last one, so it usually wraps. Few distinct
    states, so ties are common: they go to the node found first (scan order).
    """
    rng = np.random.default_rng(seed)
    nodes = NodeMatrix.from_capacities({"cpu": [4.0] * n, "memory": [4.0] * n})
    for i in range(n):
        nodes.allocate(i, {"cpu": float(rng.integers(0, 5)), "memory": float(rng.integers(0, 5))})
        nodes.set_schedulable(i, bool(rng.random() < 0.9))
    req = nodes.request_vector({"cpu": request[0], "memory": request[1]})
    assume(k < n)  # k >= n samples every node: the plain decision, ties to the lowest index
    start = n - min(before_end, n - 1)
    wrapped = 0
    for policy in ("bin_packing", "spread", "first_fit"):
        prepared = PreparedPolicy(policy, sample={"candidates": k, "start": "rotating"})
        prepared.sample_start = start
        d = decide(nodes, req, prepared, explain=False)
        found, _ = scan(nodes, start, k, fits(nodes, req))
        if not len(found):
            continue  # nothing fits: the full decision answers
        wrapped += int(found[-1] < found[0])
        want = decide(NodeSubset(nodes, found), req, PreparedPolicy(policy), explain=False)
        assert (d.node, d.feasible) == (int(found[want.node]), want.feasible), policy
        if policy != "first_fit":  # first_fit scores a position in the window, masked nodes included
            assert d.score == want.score, policy
    assume(wrapped)  # the case this test is for


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 60), first=st.integers(0, 59), last=st.integers(0, 59))
def test_a_subset_of_two_joined_slices_is_the_subset_of_their_indices(n: int, first: int, last: int) -> None:
    first, last = first % n, last % n
    rng = np.random.default_rng(n)
    nodes = NodeMatrix.from_capacities({"cpu": rng.integers(1, 9, n) * 1000.0, "memory": [8.0] * n})
    for i in range(n):
        nodes.allocate(i, {"cpu": float(rng.integers(0, 1000))})
        nodes.set_schedulable(i, bool(rng.integers(2)))
    joined = NodeSubset(nodes, (slice(first, n), slice(0, last + 1)))
    indices = NodeSubset(nodes, np.r_[first:n, 0 : last + 1])
    assert joined.n_nodes == indices.n_nodes == n - first + last + 1
    for name in ("capacity", "allocated", "free", "inv_capacity", "safe_capacity", "tasks", "schedulable"):
        assert np.array_equal(getattr(joined, name), getattr(indices, name)), name
    assert joined.ids == indices.ids
    assert [joined.parent_index(i) for i in range(joined.n_nodes)] == [
        indices.parent_index(i) for i in range(indices.n_nodes)
    ]
