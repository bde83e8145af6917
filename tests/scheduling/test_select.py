"""select: filter -> score -> argmax, the Decision it returns, and the policy registry."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import orchsim.scheduling
from orchsim.scheduling import (
    POLICIES,
    Decision,
    NodeMatrix,
    PolicyError,
    PolicyRegistry,
    PreparedPolicy,
    UnknownPolicyError,
    decide,
    policy,
    rejections,
    select,
)

BUILTINS = sorted(n for n in POLICIES if POLICIES[n].__module__ == "orchsim.scheduling.policies")


def test_readme_api_snippet_works_verbatim() -> None:
    import numpy as np

    from orchsim.scheduling import POLICIES, NodeMatrix, select

    nodes = NodeMatrix.from_capacities({"cpu": [4000, 8000], "memory": [8192, 16384]})
    decision = select(nodes, {"cpu": 500, "memory": 256}, "bin_packing")  # .node (int | None), .reason
    # bin_packing: node 0: 0.7*500/4000 + 0.3*256/8192 = 0.0875 + 0.009375 = 0.096875
    #              node 1: 0.7*500/8000 + 0.3*256/16384 = 0.04375 + 0.0046875 = 0.0484375 -> node 0
    assert decision.node == 0
    assert decision.reason == "placed on node-0 by bin_packing (score 0.096875; 2/2 nodes fit)"
    decision = select(nodes, {"cpu": 500}, "random", rng=np.random.default_rng(7))
    assert decision.node in (0, 1)
    nodes.allocate(decision.node, {"cpu": 500, "memory": 256})
    scores = POLICIES["spread"](nodes, nodes.request_vector({"cpu": 500, "memory": 256}))
    # the node that got the task has 1 task: 1/(1+1) = 0.5; the other 1/(0+1) = 1
    expected = [1.0, 1.0]
    expected[decision.node] = 0.5
    assert scores.tolist() == expected


def test_package_docstring_example() -> None:
    result = doctest.testmod(orchsim.scheduling, verbose=False)
    assert result.attempted >= 2
    assert result.failed == 0


# ---------------------------------------------------------------------------- ties and placement
def identical(n: int) -> NodeMatrix:
    return NodeMatrix.from_capacities({"cpu": [1000] * n, "memory": [1000] * n})


@pytest.mark.parametrize("name", ["bin_packing", "spread", "best_fit", "least_allocated", "dot_product"])
def test_ties_go_to_the_lowest_index(name: str) -> None:
    nodes = identical(5)
    assert select(nodes, {"cpu": 10}, name).node == 0
    nodes.set_schedulable(0, False)
    nodes.set_schedulable(1, False)
    assert select(nodes, {"cpu": 10}, name).node == 2


@pytest.mark.parametrize("name", BUILTINS)
def test_the_only_feasible_node_is_chosen_by_every_policy(name: str) -> None:
    # request cpu 1000, memory 1000, node_selector zone=a
    nodes = NodeMatrix.from_capacities(
        {"cpu": [4000, 500, 4000, 4000, 4000], "memory": [4000, 4000, 500, 4000, 4000]},
        labels=[{"zone": "a"}, {"zone": "a"}, {"zone": "a"}, {"zone": "b"}, {"zone": "a"}],
    )
    nodes.set_schedulable(0, False)  # 0 cordoned, 1 short of cpu, 2 short of memory, 3 wrong zone
    d = select(nodes, {"cpu": 1000, "memory": 1000}, name, node_selector={"zone": "a"})
    assert d.node == 4
    assert d.node_id == "node-4"
    assert d.feasible == 1
    assert d.n_nodes == 5
    assert d.placed
    assert d.rejected == {}
    assert d.policy == name


@pytest.mark.parametrize("name", BUILTINS)
def test_node_is_none_only_when_nothing_fits(name: str) -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000, 2000], "memory": [1000, 2000]})
    assert select(nodes, {"cpu": 2000}, name).node == 1  # exactly the free capacity fits
    d = select(nodes, {"cpu": 2001}, name)
    assert d.node is None
    assert d.node_id is None
    assert d.score is None
    assert not d.placed
    assert not d.vetoed
    assert d.feasible == 0
    assert d.reason == "0/2 nodes fit: 2 insufficient cpu"


# ---------------------------------------------------------------------------- reasons
def test_reason_counts_each_node_under_its_first_failing_check() -> None:
    request = {"cpu": 1000, "memory": 1024}
    kinds = {
        "cpu": (500, 4096),  # insufficient cpu only
        "both": (500, 100),  # insufficient cpu and memory: counted under cpu (checked first)
        "mem": (4000, 512),  # insufficient memory only
    }
    # 20 cpu + 11 both = 31 insufficient cpu; 9 insufficient memory; interleaved so order cannot matter
    layout = ["cpu"] * 20 + ["both"] * 11 + ["mem"] * 9
    layout = [layout[(7 * i) % 40] for i in range(40)]  # 7 is coprime to 40: a permutation
    assert sorted(layout) == sorted(["cpu"] * 20 + ["both"] * 11 + ["mem"] * 9)
    nodes = NodeMatrix.from_capacities(
        {"cpu": [kinds[k][0] for k in layout], "memory": [kinds[k][1] for k in layout]},
    )
    d = select(nodes, request, "bin_packing")
    assert d.node is None
    assert d.reason == "0/40 nodes fit: 31 insufficient cpu, 9 insufficient memory"
    assert d.rejected == {"insufficient cpu": 31, "insufficient memory": 9}
    assert d.n_nodes == 40
    assert d.feasible == 0


def test_reason_order_unschedulable_selector_then_resources() -> None:
    request = {"cpu": 1000, "memory": 1024}
    #          cpu   memory zone  schedulable -> first failing check
    spec = [
        (500, 100, "b", False),  # unschedulable (fails everything)
        (4000, 4096, "a", False),  # unschedulable
        (4000, 4096, "b", True),  # node_selector mismatch
        (500, 100, "b", True),  # node_selector mismatch (also short of both)
        (4000, 4096, "c", True),  # node_selector mismatch
        (500, 4096, "a", True),  # insufficient cpu
        (500, 100, "a", True),  # insufficient cpu (also memory)
        (999, 1024, "a", True),  # insufficient cpu
        (0, 0, "a", True),  # insufficient cpu
        (4000, 1023, "a", True),  # insufficient memory
    ]
    nodes = NodeMatrix.from_capacities(
        {"cpu": [s[0] for s in spec], "memory": [s[1] for s in spec]},
        labels=[{"zone": s[2]} for s in spec],
    )
    for i, s in enumerate(spec):
        nodes.set_schedulable(i, s[3])
    d = select(nodes, request, "spread", node_selector={"zone": "a"})
    assert d.reason == (
        "0/10 nodes fit: 2 unschedulable, 3 node_selector mismatch, 4 insufficient cpu, 1 insufficient memory"
    )
    assert list(d.rejected) == ["unschedulable", "node_selector mismatch", "insufficient cpu", "insufficient memory"]
    # the counts add up to N
    assert sum(d.rejected.values()) == 10
    # without the selector the three zone mismatches count under their resources: node 3 is short of
    # cpu (500 < 1000), nodes 2 and 4 fit -> a placement
    assert select(nodes, request, "spread").node == 2


def test_reason_follows_resource_order_not_request_order() -> None:
    nodes = NodeMatrix.from_capacities({"memory": [100, 4096], "cpu": [100, 100]})
    # node 0 short of both -> counted under memory (the first row); node 1 short of cpu only
    d = select(nodes, {"cpu": 1000, "memory": 1024}, "first_fit")
    assert d.reason == "0/2 nodes fit: 1 insufficient memory, 1 insufficient cpu"


def test_zero_amounts_are_never_reasons() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [100], "memory": [0], "gpu": [0]})
    d = select(nodes, {"cpu": 200, "memory": 0}, "bin_packing")
    assert d.reason == "0/1 nodes fit: 1 insufficient cpu"
    assert select(nodes, {"cpu": 100, "gpu": 0}, "bin_packing").node == 0


def test_explain_false_skips_the_counts() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [100, 100], "memory": [100, 100]})
    d = select(nodes, {"cpu": 200}, "bin_packing", explain=False)
    assert d.node is None
    assert d.rejected == {}
    assert d.reason == "0/2 nodes fit"


def test_rejections_function_directly() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [100, 300], "memory": [100, 100]})
    assert rejections(nodes, nodes.request_vector({"cpu": 200})) == {"insufficient cpu": 1}
    assert rejections(nodes, nodes.request_vector({"cpu": 50})) == {}


def test_placed_reason_and_repr() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [4000, 8000], "memory": [8192, 16384]}, ids=["a", "b"])
    nodes.set_schedulable(0, False)
    d = select(nodes, {"cpu": 1000}, "spread")
    # only node b fits; spread score 1/(0+1) = 1
    assert d.reason == "placed on b by spread (score 1; 1/2 nodes fit)"
    assert repr(d) == f"Decision(node=1, node_id='b', reason={d.reason!r})"
    assert isinstance(d, Decision)


# ---------------------------------------------------------------------------- node_selector
def test_node_selector_restricts_the_choice() -> None:
    nodes = NodeMatrix.from_capacities(
        {"cpu": [8000, 4000, 2000], "memory": [8000, 4000, 2000]},
        labels=[{"zone": "a"}, {"zone": "b", "disk": "ssd"}, {"zone": "b"}],
    )
    req = {"cpu": 1000}
    # worst_fit without a selector: node 0 has the most free
    assert select(nodes, req, "worst_fit").node == 0
    assert select(nodes, req, "worst_fit", node_selector={"zone": "b"}).node == 1
    assert select(nodes, req, "best_fit", node_selector={"zone": "b"}).node == 2
    assert select(nodes, req, "best_fit", node_selector={"zone": "b", "disk": "ssd"}).node == 1
    d = select(nodes, req, "best_fit", node_selector={"zone": "c"})
    assert d.node is None
    assert d.reason == "0/3 nodes fit: 3 node_selector mismatch"
    assert select(nodes, req, "best_fit", node_selector={}).node == 2  # empty selector: no constraint


# ---------------------------------------------------------------------------- registry errors
def test_unknown_policy_lists_valid_names() -> None:
    nodes = identical(2)
    with pytest.raises(UnknownPolicyError) as info:
        select(nodes, {"cpu": 1}, "bin_pakcing")
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "'bin_pakcing' (did you mean 'bin_packing'?)" in message
    assert ", ".join(sorted(POLICIES)) in message
    with pytest.raises(UnknownPolicyError, match=r"^unknown policy 'tetris'; valid"):  # nothing close: no guess
        select(nodes, {"cpu": 1}, "tetris")
    with pytest.raises(KeyError):
        POLICIES["nope"]
    assert "nope" not in POLICIES


def test_unknown_parameter_raises_type_error() -> None:
    nodes = identical(2)
    with pytest.raises(TypeError, match="has no parameter wieghts; it takes: weights"):
        select(nodes, {"cpu": 1}, "bin_packing", wieghts={"cpu": 1})
    with pytest.raises(TypeError, match="it takes: none"):
        select(nodes, {"cpu": 1}, "spread", threshold=0.5)
    # rng and feasible are supplied by select, not user parameters
    with pytest.raises(TypeError):
        select(nodes, {"cpu": 1}, "hybrid", feasible=np.ones(2, dtype=bool))


def test_unknown_parameter_raises_even_when_nothing_fits() -> None:
    full = NodeMatrix.from_capacities({"cpu": [100], "memory": [100]})
    with pytest.raises(TypeError):
        select(full, {"cpu": 200}, "bin_packing", wieghts={"cpu": 1})


def test_policy_decorator_registers_a_user_policy() -> None:
    @policy("test_least_tasks_then_cpu")
    def least_tasks_then_cpu(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
        """Fewest tasks, then least cpu used."""
        cpu = nodes.row("cpu")
        return -nodes.tasks - nodes.allocated[cpu] * nodes.inv_capacity[cpu]

    try:
        spec = POLICIES.spec("test_least_tasks_then_cpu")
        assert spec.scorer is least_tasks_then_cpu
        assert spec.summary == "Fewest tasks, then least cpu used."
        assert spec.params == ()
        assert not spec.uses_rng
        nodes = identical(3)
        nodes.allocate(0, {"cpu": 10})
        nodes.allocate(1, {"cpu": 20})
        nodes.allocate(2, {"cpu": 30})
        nodes.allocate(1, {"cpu": 1})
        # tasks [1, 2, 1], cpu used [10, 21, 30]: scores -1.01, -2.021, -1.03 -> node 0
        d = select(nodes, {"cpu": 1}, "test_least_tasks_then_cpu")
        assert d.node == 0
        assert d.policy == "test_least_tasks_then_cpu"
        assert d.score == pytest.approx(-1.01)
        with pytest.raises(ValueError, match="already registered"):
            policy("test_least_tasks_then_cpu")(least_tasks_then_cpu)
        # replace=True swaps it
        policy("test_least_tasks_then_cpu", replace=True)(lambda nodes, request: nodes.allocated[0].copy())
        assert select(nodes, {"cpu": 1}, "test_least_tasks_then_cpu").node == 2
    finally:
        POLICIES.unregister("test_least_tasks_then_cpu")
    assert "test_least_tasks_then_cpu" not in POLICIES
    with pytest.raises(UnknownPolicyError):
        select(identical(1), {"cpu": 1}, "test_least_tasks_then_cpu")
    with pytest.raises(UnknownPolicyError):
        POLICIES.unregister("test_least_tasks_then_cpu")


def test_user_policy_with_parameters_rng_and_feasible() -> None:
    seen: dict[str, object] = {}

    @policy("test_param_policy")
    def param_policy(
        nodes: NodeMatrix, request: np.ndarray, *, rng: np.random.Generator, feasible: np.ndarray, bonus: float = 0.0
    ) -> np.ndarray:
        seen["rng"] = rng
        seen["feasible"] = feasible.copy()
        out = np.zeros(nodes.n_nodes)
        out[-1] = bonus
        return out

    try:
        spec = POLICIES.spec("test_param_policy")
        assert spec.uses_rng
        assert spec.uses_feasible
        assert spec.params == ("bonus",)
        nodes = identical(3)
        nodes.set_schedulable(1, False)
        rng = np.random.default_rng(3)
        assert select(nodes, {"cpu": 1}, "test_param_policy", rng=rng, bonus=1.0).node == 2
        assert seen["rng"] is rng
        np.testing.assert_array_equal(seen["feasible"], [True, False, True])
        assert select(nodes, {"cpu": 1}, "test_param_policy").node == 0  # bonus 0: tie -> 0
        assert isinstance(seen["rng"], np.random.Generator) and seen["rng"] is not rng  # a fresh default
    finally:
        POLICIES.unregister("test_param_policy")


def test_register_rejects_scorers_without_nodes_and_request() -> None:
    registry = PolicyRegistry()
    with pytest.raises(TypeError, match="takes"):
        registry.register("bad", lambda nodes: nodes.tasks)
    assert len(registry) == 0


def test_private_registry() -> None:
    registry = PolicyRegistry()
    registry.register("last", lambda nodes, request: nodes.index_range.astype(float))
    nodes = identical(3)
    assert select(nodes, {"cpu": 1}, "last", registry=registry).node == 2
    with pytest.raises(UnknownPolicyError):
        select(nodes, {"cpu": 1}, "bin_packing", registry=registry)
    assert list(registry) == ["last"]


def test_a_callable_can_be_passed_directly() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000, 3000, 2000], "memory": [1] * 3})

    def most_free_cpu(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
        return nodes.free[0].copy()

    d = select(nodes, {"cpu": 100}, most_free_cpu)
    assert d.node == 1
    assert d.policy == "most_free_cpu"
    assert d.score == 3000.0
    nodes.allocate(1, {"cpu": 2500})  # free now 1000, 500, 2000
    assert select(nodes, {"cpu": 100}, most_free_cpu).node == 2
    # a lambda with parameters and an rng
    draw = select(nodes, {"cpu": 1}, lambda nodes, request, *, rng: rng.random(nodes.n_nodes))
    assert draw.node in (0, 1, 2)
    assert select(nodes, {"cpu": 1}, lambda n, r, *, k=0: -np.abs(n.index_range - k).astype(float), k=1).node == 1


# ---------------------------------------------------------------------------- scorer contract
def test_nan_for_a_feasible_node_raises_policy_error() -> None:
    nodes = identical(3)

    def nan_on_one(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
        return np.array([0.0, np.nan, 1.0])

    with pytest.raises(PolicyError, match="NaN"):
        select(nodes, {"cpu": 1}, nan_on_one)
    # NaN on an infeasible node is masked away and harmless
    nodes.set_schedulable(1, False)
    assert select(nodes, {"cpu": 1}, nan_on_one).node == 2


@pytest.mark.parametrize("shape", [(2,), (4,), (3, 1), (1, 3), ()])
def test_wrong_shape_raises_policy_error(shape: tuple[int, ...]) -> None:
    nodes = identical(3)
    with pytest.raises(PolicyError, match="shape"):
        select(nodes, {"cpu": 1}, lambda nodes, request: np.zeros(shape))


def test_minus_inf_everywhere_is_a_veto() -> None:
    nodes = identical(2)

    def veto(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
        return np.full(nodes.n_nodes, -np.inf)

    d = select(nodes, {"cpu": 1}, veto)
    assert d.node is None
    assert d.vetoed
    assert d.feasible == 2
    assert d.rejected == {}
    assert d.reason == "2/2 nodes fit, but policy veto scored every one -inf"
    # -inf on some nodes only vetoes those
    d = select(nodes, {"cpu": 1}, lambda nodes, request: np.array([-np.inf, -5.0]))
    assert d.node == 1
    assert not d.vetoed


def test_boolean_scores_never_choose_an_infeasible_node() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000, 4000], "memory": [1000, 4000]})

    def small_nodes(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
        return nodes.capacity[0] < 2000  # a bool "preference" (against the float64 contract)

    # node 0 has only 1000 cpu: it cannot take 2000; either a PolicyError or node 1 is acceptable
    try:
        d = select(nodes, {"cpu": 2000}, small_nodes)
    except PolicyError:
        return
    assert d.node == 1


def test_integer_scores_are_handled() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000, 4000, 4000], "memory": [1000, 4000, 4000]})
    nodes.allocate(1, {"cpu": 1})

    def fewest_tasks(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
        return -nodes.tasks  # int64

    try:
        d = select(nodes, {"cpu": 2000}, fewest_tasks)
    except PolicyError:
        return
    assert d.node == 2  # node 0 too small, node 1 has a task


def test_integer_scores_work_when_every_node_is_feasible() -> None:
    nodes = identical(3)
    nodes.allocate(0, {"cpu": 1})
    assert select(nodes, {"cpu": 1}, lambda nodes, request: -nodes.tasks).node == 1


def test_select_never_writes_into_the_scorers_array() -> None:
    nodes = identical(3)
    nodes.set_schedulable(0, False)
    own = np.array([5.0, 1.0, 2.0])
    assert select(nodes, {"cpu": 1}, lambda nodes, request: own).node == 2
    np.testing.assert_array_equal(own, [5.0, 1.0, 2.0])


# ---------------------------------------------------------------------------- randomness
def test_random_with_the_same_seed_is_reproducible() -> None:
    nodes = identical(8)
    a = [select(nodes, {"cpu": 1}, "random", rng=np.random.default_rng(11)).node for _ in range(5)]
    b = [select(nodes, {"cpu": 1}, "random", rng=np.random.default_rng(11)).node for _ in range(5)]
    assert a == b
    assert len(set(a)) == 1
    rng1, rng2 = np.random.default_rng(5), np.random.default_rng(5)
    seq1 = [select(nodes, {"cpu": 1}, "random", rng=rng1).node for _ in range(30)]
    seq2 = [select(nodes, {"cpu": 1}, "random", rng=rng2).node for _ in range(30)]
    assert seq1 == seq2
    assert len(set(seq1)) > 1


def test_random_draws_from_its_owners_generator_and_a_bare_call_is_reproducible() -> None:
    nodes = identical(8)
    # a bare select owns no generator: each call draws from a fresh one seeded with 0
    bare = [select(nodes, {"cpu": 1}, "random").node for _ in range(5)]
    assert bare == [select(nodes, {"cpu": 1}, "random", rng=np.random.default_rng(0)).node] * 5
    # a PreparedPolicy owns one (seeded 0 unless given) and advances it across decisions
    prepared = PreparedPolicy("random")
    kept = [decide(nodes, {"cpu": 1}, prepared).node for _ in range(30)]
    rng = np.random.default_rng(0)
    assert kept == [select(nodes, {"cpu": 1}, "random", rng=rng).node for _ in range(30)]
    assert len(set(kept)) > 1
    given = np.random.default_rng(6)
    prepared = PreparedPolicy("random", rng=given)
    assert prepared.rng is given
    assert [decide(nodes, {"cpu": 1}, prepared).node for _ in range(30)] != kept
    # the matrix carries no generator: its owners do
    assert not hasattr(nodes, "rng")


# ---------------------------------------------------------------------------- request forms / purity
def test_request_as_vector_or_mapping() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000, 2000], "memory": [1000, 2000]})
    by_dict = select(nodes, {"cpu": 1500}, "bin_packing")
    by_vec = select(nodes, nodes.request_vector({"cpu": 1500}), "bin_packing")
    by_int_vec = select(nodes, np.array([1500, 0]), "bin_packing")  # not float64: validated and converted
    assert by_dict.node == by_vec.node == by_int_vec.node == 1
    with pytest.raises(ValueError):
        select(nodes, {"cpu": -1}, "bin_packing")
    with pytest.raises(KeyError):
        select(nodes, {"gpu": 1}, "bin_packing")


@pytest.mark.parametrize("name", BUILTINS)
def test_select_does_not_change_the_matrix(name: str) -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [4000, 8000, 2000], "memory": [8192, 16384, 4096]})
    nodes.allocate(1, {"cpu": 1000, "memory": 1000})
    nodes.set_schedulable(2, False)
    before = (nodes.capacity.copy(), nodes.allocated.copy(), nodes.free.copy(), nodes.tasks.copy())
    select(nodes, {"cpu": 500, "memory": 500}, name, rng=np.random.default_rng(0))
    select(nodes, {"cpu": 50000}, name, rng=np.random.default_rng(0))
    after = (nodes.capacity, nodes.allocated, nodes.free, nodes.tasks)
    for x, y in zip(before, after, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(nodes.schedulable, [True, True, False])
