"""Every built-in scorer on small hand-made clusters, with the arithmetic worked out in comments."""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any

import numpy as np
import pytest

from orchsim.scheduling import (
    POLICIES,
    NodeMatrix,
    PreparedPolicy,
    UnknownResourceError,
    decide,
    feasible,
    select,
    utilisation_after,
)

BUILTINS = {
    "round_robin",
    "bin_packing",
    "spread",
    "least_allocated",
    "most_allocated",
    "best_fit",
    "worst_fit",
    "first_fit",
    "random",
    "balanced",
    "dot_product",
    "dominant_resource",
    "nomad_binpack",
    "nomad_spread",
    "hybrid",
}


def scores_of(
    name: str,
    nodes: NodeMatrix,
    request: dict[str, float],
    *,
    rng: np.random.Generator | None = None,
    **params: Any,
) -> np.ndarray:
    """Call a registered scorer directly, handing it ``rng``/``feasible``/``last`` the way ``select`` does."""
    spec = POLICIES.spec(name)
    req = nodes.request_vector(request)
    if spec.uses_rng:
        params["rng"] = rng if rng is not None else np.random.default_rng(0)
    if spec.uses_feasible:
        params["feasible"] = feasible(nodes, req)
    if spec.uses_last:
        params.setdefault("last", -1)
    return spec.scorer(nodes, req, **params)


def cluster_a() -> NodeMatrix:
    """Three nodes; after the allocations below:

    node   cpu cap  cpu alloc  mem cap  mem alloc  tasks
    0      4000     1000       8192     0          1
    1      8000     2000       16384    8192       2
    2      2000     0          4096     1024       1
    """
    nodes = NodeMatrix.from_capacities({"cpu": [4000, 8000, 2000], "memory": [8192, 16384, 4096]})
    nodes.allocate(1, {"cpu": 1000, "memory": 4096})
    nodes.allocate(1, {"cpu": 1000, "memory": 4096})
    nodes.allocate(2, {"memory": 1024})
    nodes.allocate(0, {"cpu": 1000})
    return nodes


REQ_A = {"cpu": 1000, "memory": 2048}
# Utilisation after placing REQ_A (cpu, memory):
#   node 0: (1000+1000)/4000 = 0.5,    (0+2048)/8192     = 0.25
#   node 1: (2000+1000)/8000 = 0.375,  (8192+2048)/16384 = 0.625
#   node 2: (0+1000)/2000    = 0.5,    (1024+2048)/4096  = 0.75
# Free before placement (cpu, memory): node 0 (3000, 8192), node 1 (6000, 8192), node 2 (2000, 3072):
# REQ_A fits all three.

TABLE_A: dict[str, tuple[list[float], int]] = {
    # a bare select remembers no placement: cursor -1, forward distance i, score = -distance
    # (the cursor moving is tested below, with a PreparedPolicy)
    "round_robin": ([0.0, -1.0, -2.0], 0),
    # 0.7 * cpu_util + 0.3 * mem_util:
    #   node 0: 0.7*0.5   + 0.3*0.25  = 0.35   + 0.075  = 0.425
    #   node 1: 0.7*0.375 + 0.3*0.625 = 0.2625 + 0.1875 = 0.45
    #   node 2: 0.7*0.5   + 0.3*0.75  = 0.35   + 0.225  = 0.575
    "bin_packing": ([0.425, 0.45, 0.575], 2),
    # 1 / (tasks + 1) with tasks [1, 2, 1]: [1/2, 1/3, 1/2]; tie 0/2 -> lowest index
    "spread": ([0.5, 1 / 3, 0.5], 0),
    # mean free fraction after: node 0 (0.5 + 0.75)/2 = 0.625, node 1 (0.625 + 0.375)/2 = 0.5,
    # node 2 (0.5 + 0.25)/2 = 0.375
    "least_allocated": ([0.625, 0.5, 0.375], 0),
    # mean utilisation after: (0.5+0.25)/2 = 0.375, (0.375+0.625)/2 = 0.5, (0.5+0.75)/2 = 0.625
    "most_allocated": ([0.375, 0.5, 0.625], 2),
    # leftover = sum_r (free_r - req_r) / max capacity_r, max cpu 8000, max memory 16384:
    #   node 0: 2000/8000 + 6144/16384 = 0.25  + 0.375  = 0.625
    #   node 1: 5000/8000 + 6144/16384 = 0.625 + 0.375  = 1.0
    #   node 2: 1000/8000 + 1024/16384 = 0.125 + 0.0625 = 0.1875
    # best fit = -leftover, worst fit = +leftover
    "best_fit": ([-0.625, -1.0, -0.1875], 2),
    "worst_fit": ([0.625, 1.0, 0.1875], 1),
    "first_fit": ([0.0, -1.0, -2.0], 0),
    # 1 - |f_cpu - f_mem| / 2: |0.5-0.25|/2 = |0.375-0.625|/2 = |0.5-0.75|/2 = 0.125 -> 0.875 each
    "balanced": ([0.875, 0.875, 0.875], 0),
    # sum_r (req_r / cap_r) * (free_r / cap_r), free before placement:
    #   node 0: (1000/4000)(3000/4000) + (2048/8192)(8192/8192)   = 0.1875  + 0.25   = 0.4375
    #   node 1: (1000/8000)(6000/8000) + (2048/16384)(8192/16384) = 0.09375 + 0.0625 = 0.15625
    #   node 2: (1000/2000)(2000/2000) + (2048/4096)(3072/4096)   = 0.5     + 0.375  = 0.875
    "dot_product": ([0.4375, 0.15625, 0.875], 2),
    # -max(util after): -max(0.5, 0.25), -max(0.375, 0.625), -max(0.5, 0.75)
    "dominant_resource": ([-0.5, -0.625, -0.75], 0),
    # free pct after (cpu, mem): node 0 (0.5, 0.75), node 1 (0.625, 0.375), node 2 (0.5, 0.25)
    # total = 10^f_cpu + 10^f_mem: 3.16228 + 5.62341 = 8.78569; 4.21697 + 2.37137 = 6.58834;
    #                              3.16228 + 1.77828 = 4.94056
    # binpack (20 - total)/18 = 0.623017, 0.745092, 0.836636
    "nomad_binpack": (
        [(20 - (10**0.5 + 10**0.75)) / 18, (20 - (10**0.625 + 10**0.375)) / 18, (20 - (10**0.5 + 10**0.25)) / 18],
        2,
    ),
    # spread (total - 2)/18 = 0.376983, 0.254908, 0.163364
    "nomad_spread": (
        [(10**0.5 + 10**0.75 - 2) / 18, (10**0.625 + 10**0.375 - 2) / 18, (10**0.5 + 10**0.25 - 2) / 18],
        0,
    ),
    # critical (max) utilisation after: [0.5, 0.625, 0.75], none below the 0.5 threshold;
    # k = max(1, int(0.2 * 3) = 0, 1) = 1: the single best (least critical) node 0 gets score 1,
    # the others -critical.
    "hybrid": ([1.0, -0.625, -0.75], 0),
}


def test_every_builtin_is_registered_and_covered() -> None:
    assert set(POLICIES) >= BUILTINS
    assert set(TABLE_A) | {"random"} == BUILTINS


def test_spec_flags_of_builtins() -> None:
    assert {n for n in BUILTINS if POLICIES.spec(n).uses_rng} == {"random", "hybrid"}
    assert {n for n in BUILTINS if POLICIES.spec(n).uses_feasible} == {"hybrid"}
    # hybrid ranks equal scores by node order before its random draw, so it depends on order too.
    assert {n for n in BUILTINS if POLICIES.spec(n).order_dependent} == {"round_robin", "first_fit", "hybrid"}
    assert POLICIES.spec("bin_packing").params == ("weights",)
    assert POLICIES.spec("least_allocated").params == ("weights",)
    assert POLICIES.spec("most_allocated").params == ("weights",)
    assert POLICIES.spec("balanced").params == ("resources",)
    assert POLICIES.spec("hybrid").params == ("threshold", "top_k_fraction", "top_k_absolute")
    assert POLICIES.spec("spread").params == ()
    assert all(POLICIES.spec(n).summary for n in BUILTINS)


@pytest.mark.parametrize("name", sorted(TABLE_A))
def test_scores_on_cluster_a(name: str) -> None:
    expected, choice = TABLE_A[name]
    nodes = cluster_a()
    scores = scores_of(name, nodes, REQ_A)
    assert scores.shape == (3,)
    assert scores.dtype == np.float64
    assert scores.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12)
    decision = select(nodes, REQ_A, name, rng=np.random.default_rng(0))
    assert decision.node == choice
    assert decision.score == pytest.approx(expected[choice], rel=1e-12, abs=1e-12)


def test_bin_packing_worked_example_from_the_brief() -> None:
    # node cpu 4000 alloc 1000, mem 8192 alloc 0; request cpu 1000, mem 2048:
    # 0.7 * 2000/4000 + 0.3 * 2048/8192 = 0.35 + 0.075 = 0.425
    nodes = NodeMatrix.from_capacities({"cpu": [4000], "memory": [8192]})
    nodes.allocate(0, {"cpu": 1000})
    assert scores_of("bin_packing", nodes, {"cpu": 1000, "memory": 2048})[0] == pytest.approx(0.425)


# ---------------------------------------------------------------------------- weights
def test_bin_packing_custom_weights_are_not_normalised() -> None:
    nodes = cluster_a()
    # weights cpu 1, memory 1: 0.5+0.25 = 0.75, 0.375+0.625 = 1.0, 0.5+0.75 = 1.25
    s = scores_of("bin_packing", nodes, REQ_A, weights={"cpu": 1.0, "memory": 1.0})
    assert s.tolist() == pytest.approx([0.75, 1.0, 1.25])
    # memory only, weight 2: 2*0.25, 2*0.625, 2*0.75
    s = scores_of("bin_packing", nodes, REQ_A, weights={"memory": 2})
    assert s.tolist() == pytest.approx([0.5, 1.25, 1.5])
    # cpu only, weight 1: [0.5, 0.375, 0.5] -> node 0 wins the 0/2 tie via select
    d = select(nodes, REQ_A, "bin_packing", weights={"cpu": 1})
    assert d.node == 0
    assert d.score == pytest.approx(0.5)
    # no weights at all: zero everywhere
    assert scores_of("bin_packing", nodes, REQ_A, weights={}).tolist() == [0.0, 0.0, 0.0]


def test_most_and_least_allocated_custom_weights_are_normalised() -> None:
    nodes = cluster_a()
    # weights cpu 3, memory 1 (sum 4):
    #   most:  (3*0.5 + 0.25)/4 = 0.4375, (3*0.375 + 0.625)/4 = 1.75/4 = 0.4375, (3*0.5 + 0.75)/4 = 0.5625
    #   least: (3*0.5 + 0.75)/4 = 0.5625, (3*0.625 + 0.375)/4 = 2.25/4 = 0.5625, (3*0.5 + 0.25)/4 = 0.4375
    w = {"cpu": 3, "memory": 1}
    assert scores_of("most_allocated", nodes, REQ_A, weights=w).tolist() == pytest.approx([0.4375, 0.4375, 0.5625])
    assert scores_of("least_allocated", nodes, REQ_A, weights=w).tolist() == pytest.approx([0.5625, 0.5625, 0.4375])
    assert select(nodes, REQ_A, "most_allocated", weights=w).node == 2
    assert select(nodes, REQ_A, "least_allocated", weights=w).node == 0  # tie 0/1 -> 0
    # memory only (cpu weight 0): most = mem util [0.25, 0.625, 0.75], least = 1 - that
    w = {"cpu": 0, "memory": 5}
    assert scores_of("most_allocated", nodes, REQ_A, weights=w).tolist() == pytest.approx([0.25, 0.625, 0.75])
    assert scores_of("least_allocated", nodes, REQ_A, weights=w).tolist() == pytest.approx([0.75, 0.375, 0.25])
    assert select(nodes, REQ_A, "least_allocated", weights=w).node == 0
    # weights summing to 0: every node scores 0
    for name in ("most_allocated", "least_allocated"):
        assert scores_of(name, nodes, REQ_A, weights={"cpu": 0}).tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("name", ["most_allocated", "least_allocated"])
def test_weights_must_be_non_negative_and_known(name: str) -> None:
    nodes = cluster_a()
    with pytest.raises(ValueError, match=">= 0"):
        select(nodes, REQ_A, name, weights={"cpu": -1, "memory": 1})
    with pytest.raises(UnknownResourceError):
        select(nodes, REQ_A, name, weights={"gpu": 1})


def test_default_weights_skip_missing_resources_but_bin_packing_needs_memory() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000, 2000]})
    # most_allocated default weights cpu=1, memory=1; memory is absent so only cpu counts:
    # 500/1000 = 0.5 and 500/2000 = 0.25
    assert scores_of("most_allocated", nodes, {"cpu": 500}).tolist() == pytest.approx([0.5, 0.25])
    assert scores_of("least_allocated", nodes, {"cpu": 500}).tolist() == pytest.approx([0.5, 0.75])
    # bin_packing's Go weights name cpu and memory; on a cpu-only cluster it says what is missing
    with pytest.raises(UnknownResourceError, match="memory"):
        select(nodes, {"cpu": 500}, "bin_packing")


# ---------------------------------------------------------------------------- balanced
def test_balanced_prefers_equal_utilisation() -> None:
    nodes = cluster_a()
    # request cpu 1000 only; fractions after (cpu, mem):
    #   node 0: (0.5, 0)     -> 1 - 0.5/2    = 0.75
    #   node 1: (0.375, 0.5) -> 1 - 0.125/2  = 0.9375
    #   node 2: (0.5, 0.25)  -> 1 - 0.25/2   = 0.875
    s = scores_of("balanced", nodes, {"cpu": 1000})
    assert s.tolist() == pytest.approx([0.75, 0.9375, 0.875])
    assert select(nodes, {"cpu": 1000}, "balanced").node == 1


def test_balanced_caps_fractions_at_one_and_takes_a_resource_list() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [4000], "memory": [8192], "gpu": [1000]})
    # request cpu 6000 on a 4000 node: fraction 1.5 capped to 1; memory 0 -> 1 - |1 - 0|/2 = 0.5
    assert scores_of("balanced", nodes, {"cpu": 6000})[0] == pytest.approx(0.5)
    # three resources, fractions (0.5, 0.25, 0): mean 0.25, population variance
    # (0.0625 + 0 + 0.0625)/3 = 0.0416667, std 0.2041241 -> 0.7958759
    s = scores_of("balanced", nodes, {"cpu": 2000, "memory": 2048}, resources=["cpu", "memory", "gpu"])
    assert s[0] == pytest.approx(1 - np.sqrt(0.125 / 3))
    assert s[0] == pytest.approx(0.7958759, abs=1e-7)
    # one resource: std 0 -> 1
    assert scores_of("balanced", nodes, {"cpu": 2000}, resources=["cpu"])[0] == pytest.approx(1.0)


def test_balanced_on_cluster_without_cpu_or_memory_is_neutral() -> None:
    nodes = NodeMatrix.from_capacities({"gpu": [1000, 2000]})
    assert scores_of("balanced", nodes, {"gpu": 500}).tolist() == [1.0, 1.0]


# ---------------------------------------------------------------------------- nomad
def test_nomad_empty_node_clamps_to_binpack_zero_spread_one() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [4000], "memory": [8192]})
    # request 0 on an empty node: free pct 1 and 1 -> total 10 + 10 = 20 (in floats 10^1 may come out
    # as 10.000000000000002, i.e. a total just above 20): binpack (20-20)/18 = 0, spread 18/18 = 1,
    # and the clamp to [0, 1] must hold both exactly.
    binpack = scores_of("nomad_binpack", nodes, {})
    spread = scores_of("nomad_spread", nodes, {})
    assert binpack[0] == 0.0
    assert spread[0] == 1.0


def test_nomad_full_node_gives_binpack_one_spread_zero() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [4000], "memory": [8192]})
    nodes.allocate(0, {"cpu": 1000, "memory": 2048})
    # the request fills the rest: free pct 0 and 0 -> total 1 + 1 = 2 -> binpack 18/18 = 1, spread 0/18 = 0
    full = {"cpu": 3000, "memory": 6144}
    assert scores_of("nomad_binpack", nodes, full)[0] == pytest.approx(1.0)
    assert scores_of("nomad_spread", nodes, full)[0] == pytest.approx(0.0, abs=1e-15)


def test_nomad_overfull_node_is_clamped() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000], "memory": [1000]})
    # util 2 and 2 (an infeasible request; select masks it, but the scorer must stay in [0, 1]):
    # total 10^-1 + 10^-1 = 0.2 -> binpack (20-0.2)/18 = 1.1 -> 1; spread (0.2-2)/18 < 0 -> 0
    over = {"cpu": 2000, "memory": 2000}
    assert scores_of("nomad_binpack", nodes, over)[0] == 1.0
    assert scores_of("nomad_spread", nodes, over)[0] == 0.0


def test_nomad_half_used_node() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000], "memory": [2000]})
    # free pct after: cpu 0.5, memory 0.5 -> total 2 * 10^0.5 = 6.3245553
    # binpack (20 - 6.3245553)/18 = 0.7597469, spread (6.3245553 - 2)/18 = 0.2402531
    req = {"cpu": 500, "memory": 1000}
    assert scores_of("nomad_binpack", nodes, req)[0] == pytest.approx(0.7597469, abs=1e-7)
    assert scores_of("nomad_spread", nodes, req)[0] == pytest.approx(0.2402531, abs=1e-7)


# ---------------------------------------------------------------------------- edge cases
def cluster_z() -> NodeMatrix:
    """Zero capacities: node 0 has no gpu, node 1 no memory, node 2 nothing at all."""
    return NodeMatrix.from_capacities(
        {"cpu": [4000, 4000, 0], "memory": [8192, 0, 0], "gpu": [0, 1000, 0]},
    )


@pytest.mark.parametrize("name", sorted(BUILTINS))
@pytest.mark.parametrize("request_", [{"cpu": 1000}, {}, {"gpu": 500}, {"cpu": 1000, "memory": 1024, "gpu": 0}])
def test_zero_capacity_never_divides_by_zero(name: str, request_: dict[str, float]) -> None:
    nodes = cluster_z()
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = scores_of(name, nodes, request_)
        decision = select(nodes, request_, name, rng=np.random.default_rng(1))
    assert scores.shape == (3,)
    assert np.all(np.isfinite(scores)), scores
    req = nodes.request_vector(request_)
    fits = [bool(np.all(nodes.free[:, i] >= req)) for i in range(3)]
    if any(fits):
        assert decision.node is not None
        assert fits[decision.node]
    else:
        assert decision.node is None


def test_zero_capacity_scores_by_hand() -> None:
    nodes = cluster_z()
    req = {"cpu": 1000}
    # cpu util after: node 0 1000/4000 = 0.25, node 1 0.25, node 2 reads 0 (capacity 0, inv 0);
    # memory and gpu requested at 0 read 0 everywhere.
    # least_allocated (cpu, memory): node 0 (0.75 + 1)/2 = 0.875; node 1 (0.75 + 0)/2 = 0.375
    # (zero-capacity memory scores 0, as in Kubernetes); node 2 (0 + 0)/2 = 0
    assert scores_of("least_allocated", nodes, req).tolist() == pytest.approx([0.875, 0.375, 0.0])
    # most_allocated: (0.25 + 0)/2 = 0.125, 0.125, 0
    assert scores_of("most_allocated", nodes, req).tolist() == pytest.approx([0.125, 0.125, 0.0])
    # bin_packing: 0.7 * 0.25 = 0.175, 0.175, 0
    assert scores_of("bin_packing", nodes, req).tolist() == pytest.approx([0.175, 0.175, 0.0])
    # dominant_resource: -max(0.25, 0, 0) = -0.25, -0.25, -0
    assert scores_of("dominant_resource", nodes, req).tolist() == pytest.approx([-0.25, -0.25, 0.0])
    # dot_product, cpu only: (1000/4000)(4000/4000) = 0.25, 0.25, 0
    assert scores_of("dot_product", nodes, req).tolist() == pytest.approx([0.25, 0.25, 0.0])
    # nomad: free pct (cpu, memory) (0.75, 1), (0.75, 1) (zero-capacity memory reads free), (1, 1):
    # binpack (20 - 10^0.75 - 10)/18 = (20 - 5.6234133 - 10)/18 = 0.2431437, same, 0
    assert scores_of("nomad_binpack", nodes, req).tolist() == pytest.approx([0.2431437, 0.2431437, 0.0], abs=1e-7)
    # balanced (cpu, mem): (0.25, 0) -> 0.875, 0.875, (0, 0) -> 1
    assert scores_of("balanced", nodes, req).tolist() == pytest.approx([0.875, 0.875, 1.0])
    # best_fit: scale cpu 4000, memory 8192, gpu 1000; leftover
    #   node 0: 3000/4000 + 8192/8192 + 0         = 1.75
    #   node 1: 3000/4000 + 0         + 1000/1000 = 1.75
    #   node 2: -1000/4000 + 0 + 0                = -0.25 (infeasible, but the best raw score)
    assert scores_of("best_fit", nodes, req).tolist() == pytest.approx([-1.75, -1.75, 0.25])
    # select masks node 2 and takes the lowest of the tied feasible nodes
    assert select(nodes, req, "best_fit").node == 0


def test_request_of_zero_scores_current_state() -> None:
    nodes = cluster_a()
    # bin_packing with nothing requested: current utilisation 0.7 * cpu + 0.3 * memory:
    #   node 0: 0.7*1000/4000 = 0.175; node 1: 0.7*0.25 + 0.3*0.5 = 0.325; node 2: 0.3*1024/4096 = 0.075
    assert scores_of("bin_packing", nodes, {}).tolist() == pytest.approx([0.175, 0.325, 0.075])
    assert select(nodes, {}, "bin_packing").node == 1
    # dot_product has nothing to align with: all zero, node 0 by the tie rule
    assert scores_of("dot_product", nodes, {}).tolist() == [0.0, 0.0, 0.0]
    assert select(nodes, {}, "dot_product").node == 0


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_empty_cluster(name: str) -> None:
    nodes = NodeMatrix(["cpu", "memory"])
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = scores_of(name, nodes, {"cpu": 500})
        decision = select(nodes, {"cpu": 500}, name)
    assert scores.shape == (0,)
    assert decision.node is None
    assert decision.node_id is None
    assert decision.reason.startswith("0/0 nodes fit")
    assert decision.reason == "0/0 nodes fit: the cluster has no nodes"


def test_utilisation_after_by_name_and_row() -> None:
    nodes = cluster_a()
    req = nodes.request_vector(REQ_A)
    np.testing.assert_allclose(utilisation_after(nodes, req, "cpu"), [0.5, 0.375, 0.5])
    np.testing.assert_allclose(utilisation_after(nodes, req, 1), [0.25, 0.625, 0.75])


# ---------------------------------------------------------------------------- round robin
def place_sequence(
    nodes: NodeMatrix, request: dict[str, float], policy: str | PreparedPolicy, count: int, **kw: Any
) -> list:
    """Decide and allocate ``count`` times with one prepared policy (its state kept); the chosen indices.

    None stops the sequence.
    """
    prepared = (
        policy if isinstance(policy, PreparedPolicy) else PreparedPolicy(policy, rng=kw.pop("rng", None), params=kw)
    )
    chosen = []
    for _ in range(count):
        d = decide(nodes, request, prepared)
        chosen.append(d.node)
        if d.node is None:
            break
        nodes.allocate(d.node, request)
    return chosen


def test_round_robin_cycles_in_order() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000] * 4, "memory": [1000] * 4})
    assert place_sequence(nodes, {"cpu": 10}, "round_robin", 9) == [0, 1, 2, 3, 0, 1, 2, 3, 0]


def test_round_robin_skips_infeasible_nodes() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000, 1000, 1000, 5, 1000], "memory": [1000] * 5})
    nodes.set_schedulable(1, False)  # cordoned
    # node 3 has only 5 cpu: too small for 10
    assert place_sequence(nodes, {"cpu": 10}, "round_robin", 7) == [0, 2, 4, 0, 2, 4, 0]


def test_round_robin_cursor_is_the_node_this_policy_chose_last_and_wraps() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000] * 4, "memory": [1000] * 4})
    # no placement yet: cursor -1, distance i -> scores [0, -1, -2, -3]
    assert scores_of("round_robin", nodes, {}).tolist() == [0.0, -1.0, -2.0, -3.0]
    # cursor on node 1: distance (i - 2) % 4 = [2, 3, 0, 1]
    assert scores_of("round_robin", nodes, {}, last=1).tolist() == [-2.0, -3.0, 0.0, -1.0]
    prepared = PreparedPolicy("round_robin")
    prepared.last = "node-1"
    assert decide(nodes, {"cpu": 1}, prepared).node == 2
    assert prepared.last == "node-2"  # the decision moved the cursor
    prepared.last = "node-3"  # cursor on the last node: wrap to 0
    assert decide(nodes, {"cpu": 1}, prepared).node == 0
    # another owner's allocations do not move it: the cursor is this policy's, not the matrix's
    nodes.allocate(3, {"cpu": 1})
    assert decide(nodes, {"cpu": 1}, prepared).node == 1
    prepared.last = "node-3"
    nodes.set_schedulable(0, False)
    nodes.set_schedulable(1, False)
    assert decide(nodes, {"cpu": 1}, prepared).node == 2  # wraps past 0 and 1
    # the only feasible node is the cursor's own node: it is reached last, after a full turn
    nodes.set_schedulable(3, False)
    assert decide(nodes, {"cpu": 1}, prepared).node == 2
    # and with explain off the scorer is skipped (one node fits), the cursor still moves
    prepared.last = "node-0"
    assert decide(nodes, {"cpu": 1}, prepared, explain=False).score is None
    assert prepared.last == "node-2"


def test_order_dependent_policies_after_nodes_leave_and_join() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000] * 5, "memory": [1000] * 5})
    prepared = PreparedPolicy("round_robin")
    assert place_sequence(nodes, {"cpu": 1}, prepared, 3) == [0, 1, 2]
    assert select(nodes, {"cpu": 1}, "first_fit").node == 0
    # remove old nodes 0 and 2: old 1, 3, 4 become 0, 1, 2; the cursor (node-2) was removed -> -1
    nodes.remove_nodes([0, 2])
    assert prepared.last_index(nodes) == -1
    assert scores_of("first_fit", nodes, {}).tolist() == [0.0, -1.0, -2.0]
    assert scores_of("round_robin", nodes, {}, last=prepared.last_index(nodes)).tolist() == [0.0, -1.0, -2.0]
    assert decide(nodes, {"cpu": 1}, prepared).node_id == "node-1"
    prepared.last = "node-4"  # the cursor on the last node (now index 2)
    nodes.add_node("new", {"cpu": 1000, "memory": 1000})
    # 4 nodes, cursor 2: distance (i - 3) % 4 = [1, 2, 3, 0] -> the new node is next
    assert scores_of("round_robin", nodes, {}, last=prepared.last_index(nodes)).tolist() == [-1.0, -2.0, -3.0, 0.0]
    assert decide(nodes, {"cpu": 1}, prepared).node_id == "new"


# ---------------------------------------------------------------------------- first fit / random
def test_first_fit_takes_lowest_feasible_index() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [100, 300, 200, 300], "memory": [1] * 4})
    assert select(nodes, {"cpu": 250}, "first_fit").node == 1
    nodes.allocate(1, {"cpu": 250})
    assert select(nodes, {"cpu": 250}, "first_fit").node == 3
    assert select(nodes, {"cpu": 50}, "first_fit").node == 0


def test_random_is_uniform_over_feasible_nodes_and_seeded() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000] * 5, "memory": [1000] * 5})
    nodes.set_schedulable(2, False)
    rng = np.random.default_rng(123)
    counts = Counter(select(nodes, {"cpu": 1}, "random", rng=rng).node for _ in range(4000))
    # 4 feasible nodes, 4000 draws: each ~Binomial(4000, 1/4), mean 1000, sd ~27; 850..1150 is > 5 sd
    assert set(counts) == {0, 1, 3, 4}
    assert all(850 < c < 1150 for c in counts.values()), counts
    a = [select(nodes, {"cpu": 1}, "random", rng=np.random.default_rng(9)).node for _ in range(3)]
    assert len(set(a)) == 1  # a fresh generator with the same seed: the same node every time
    s = scores_of("random", nodes, {}, rng=np.random.default_rng(5))
    assert s.shape == (5,)
    assert np.all((s >= 0) & (s < 1))


# ---------------------------------------------------------------------------- hybrid
def square_nodes(n: int) -> NodeMatrix:
    return NodeMatrix.from_capacities({"cpu": [1024] * n, "memory": [1024] * n})


def test_hybrid_packs_below_threshold_then_spreads() -> None:
    nodes = square_nodes(4)
    # 4 nodes -> k = max(1, int(0.2 * 4) = 0, 1) = 1: deterministic.
    # Request cpu 128: a node's utilisation after is (alloc + 128)/1024. While it is below 0.5 it
    # reads 0, so every such node ties and node order decides: node 0 takes tasks at 0.125, 0.25,
    # 0.375; the 4th would make it 512/1024 = 0.5 (not below 0.5), so node 1 (still 0) takes over...
    pack = place_sequence(nodes, {"cpu": 128}, "hybrid", 12, rng=np.random.default_rng(0))
    assert pack == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    # ...now every node would be at 0.5: above the threshold the least utilised wins, ties by order,
    # so placements go round: node 0 -> 0.5, then node 0 would be 0.625 vs 0.5 elsewhere -> node 1, ...
    spread = place_sequence(nodes, {"cpu": 128}, "hybrid", 8, rng=np.random.default_rng(0))
    assert spread == [0, 1, 2, 3, 0, 1, 2, 3]


def test_hybrid_scores_by_hand() -> None:
    nodes = square_nodes(4)
    nodes.allocate(0, {"cpu": 512})  # after +128: 640/1024 = 0.625 (above 0.5)
    nodes.allocate(1, {"memory": 256})  # after: cpu 0.125, memory 0.25 -> critical 0.25 -> 0
    nodes.allocate(2, {"cpu": 768})  # after: 896/1024 = 0.875
    # node 3 empty: 0.125 -> 0. Ranking: nodes 1 and 3 (0), then 0 (0.625), then 2 (0.875); k = 1 -> node 1
    s = scores_of("hybrid", nodes, {"cpu": 128})
    assert s.tolist() == pytest.approx([-0.625, 1.0, -0.875, 0.0])
    # cordon node 1: node 3 is the best feasible one
    nodes.set_schedulable(1, False)
    assert select(nodes, {"cpu": 128}, "hybrid").node == 3
    # threshold 0: nothing is read as 0; least critical wins: node 3 (0.125) over node 1 (cordoned)
    assert select(nodes, {"cpu": 128}, "hybrid", threshold=0.0).node == 3
    # threshold 1: everything below it reads 0: pure packing by node order -> node 0
    assert select(nodes, {"cpu": 128}, "hybrid", threshold=1.0).node == 0


def test_hybrid_threshold_zero_spreads_from_the_start() -> None:
    nodes = square_nodes(4)
    got = place_sequence(nodes, {"cpu": 128}, "hybrid", 8, threshold=0.0, rng=np.random.default_rng(1))
    assert got == [0, 1, 2, 3, 0, 1, 2, 3]


def test_hybrid_draws_among_top_k_feasible_and_is_seeded() -> None:
    nodes = square_nodes(10)
    nodes.set_schedulable(1, False)
    # all nodes empty and below the threshold: ranking is node order over feasible nodes 0, 2, 3, 4, ...
    # k = max(top_k_absolute=3, int(0.2 * 10) = 2, 1) = 3 -> candidates {0, 2, 3}
    picks = [
        select(nodes, {"cpu": 128}, "hybrid", rng=np.random.default_rng(seed), top_k_absolute=3).node
        for seed in range(200)
    ]
    assert set(picks) == {0, 2, 3}
    # same seed, same node
    again = [
        select(nodes, {"cpu": 128}, "hybrid", rng=np.random.default_rng(seed), top_k_absolute=3).node
        for seed in range(200)
    ]
    assert again == picks
    # default k = max(1, int(0.2 * 10) = 2, 1) = 2 -> candidates {0, 2}
    picks = {select(nodes, {"cpu": 128}, "hybrid", rng=np.random.default_rng(s)).node for s in range(100)}
    assert picks == {0, 2}
    # top_k_fraction 0.5 -> k = 5 -> {0, 2, 3, 4, 5}
    picks = {
        select(nodes, {"cpu": 128}, "hybrid", rng=np.random.default_rng(s), top_k_fraction=0.5).node for s in range(300)
    }
    assert picks == {0, 2, 3, 4, 5}


def test_hybrid_top_k_above_threshold_spreads_among_least_used() -> None:
    nodes = square_nodes(5)
    # cpu allocations 900, 600, 700, 512, 800 -> after +128: 1028 (infeasible: 124 free < 128),
    # 728, 828, 640, 928 -> /1024 = 0.711, 0.809, 0.625, 0.906, all above 0.5.
    for i, c in enumerate([900, 600, 700, 512, 800]):
        nodes.allocate(i, {"cpu": c})
    # k = max(2, int(0.2 * 5) = 1, 1) = 2 -> the two least used feasible nodes: 3 (0.625) and 1 (0.711)
    picks = {
        select(nodes, {"cpu": 128}, "hybrid", rng=np.random.default_rng(s), top_k_absolute=2).node for s in range(100)
    }
    assert picks == {1, 3}


@pytest.mark.parametrize("policy", ["bin_packing", "least_allocated", "most_allocated"])
@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"cpu": "abc"}, r"weights\.cpu: 'abc' is not a number"),
        ([1, 2], r"weights: a mapping of resource names to numbers"),
        ({"cpu": -1}, r"weights\.cpu: -1: resource weights are finite numbers >= 0"),
        ({"cpu": float("nan")}, r"weights\.cpu: nan: resource weights are finite numbers >= 0"),
        ({"cpu": True}, r"weights\.cpu: True is not a number"),
    ],
)
def test_bad_weights_are_named_not_converted(policy: str, weights: object, message: str) -> None:
    # A user's --policy-param reaches the scorer: 'abc' was a float() error, -1 silently
    # turned bin packing into spreading, NaN failed later as a NaN score on some node.
    nodes = NodeMatrix.from_capacities({"cpu": [1000.0, 2000.0], "memory": [1000.0, 1000.0]})
    with pytest.raises((ValueError, TypeError), match=message):
        select(nodes, {"cpu": 100.0, "memory": 100.0}, policy, weights=weights)
