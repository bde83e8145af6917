"""Property tests: random clusters and requests, every registered policy."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from orchsim.scheduling import POLICIES, NodeMatrix, feasible, select

RESOURCE_NAMES = ("cpu", "memory", "gpu", "disk")
# Every built-in policy (any scorer registered from orchsim.scheduling.policies, so a new built-in is
# picked up automatically); throwaway policies other tests may register are left out.
ALL_POLICIES = sorted(n for n in POLICIES if POLICIES[n].__module__ == "orchsim.scheduling.policies")
# Policies whose scores must permute with the nodes: not order dependent and not random
# (this leaves out round_robin, first_fit, random and hybrid).
EQUIVARIANT = [n for n in ALL_POLICIES if not POLICIES.spec(n).order_dependent and not POLICIES.spec(n).uses_rng]
FLOAT_ERRORS = {"divide": "raise", "invalid": "raise", "over": "raise"}
SETTINGS = settings(max_examples=150, deadline=None)


@dataclass
class Recipe:
    """How to build a cluster: capacities, the tasks to allocate, which nodes are cordoned."""

    resources: tuple[str, ...]
    capacity: list[list[int]]  # (N, R)
    tasks: list[tuple[int, list[int]]]  # (node, request vector) in allocation order
    unschedulable: list[bool]
    seed: int

    @property
    def n(self) -> int:
        return len(self.capacity)

    def build(self, perm: list[int] | None = None) -> NodeMatrix:
        """The cluster; with ``perm``, new node j is old node perm[j] (tasks replayed in the same order)."""
        perm = list(range(self.n)) if perm is None else perm
        where = {old: new for new, old in enumerate(perm)}
        nodes = NodeMatrix.from_capacities(
            {r: [self.capacity[old][k] for old in perm] for k, r in enumerate(self.resources)},
            ids=[f"n{old}" for old in perm],
        )
        for node, vec in self.tasks:
            nodes.allocate(where[node], np.array(vec, dtype=np.float64))
        for old, cordoned in enumerate(self.unschedulable):
            if cordoned:
                nodes.set_schedulable(where[old], False)
        return nodes


# 10% zero capacities; otherwise 1..16000
amount = st.tuples(st.integers(0, 9), st.integers(1, 16000)).map(lambda t: 0 if t[0] == 0 else t[1])


@st.composite
def recipes(draw: st.DrawFn) -> Recipe:
    n = draw(st.integers(1, 30))
    r = draw(st.integers(2, 4))
    resources = RESOURCE_NAMES[:r]
    capacity = [[draw(amount) for _ in range(r)] for _ in range(n)]
    tasks: list[tuple[int, list[int]]] = []
    for node in range(n):
        count = draw(st.integers(0, 3))
        if count:
            # the first task takes level/10 of each resource, the others nothing (so it always fits)
            levels = [draw(st.integers(0, 10)) for _ in range(r)]
            tasks.append((node, [c * lv // 10 for c, lv in zip(capacity[node], levels, strict=True)]))
            tasks.extend((node, [0] * r) for _ in range(count - 1))
    order = draw(st.permutations(range(len(tasks))))  # interleave nodes
    unschedulable = [draw(st.integers(0, 4)) == 0 for _ in range(n)]  # ~20% cordoned
    return Recipe(resources, capacity, [tasks[i] for i in order], unschedulable, draw(st.integers(0, 2**16)))


@st.composite
def clusters_and_requests(draw: st.DrawFn) -> tuple[Recipe, dict[str, int]]:
    recipe = draw(recipes())
    # 25% of dimensions requested at 0; else up to half the largest capacity: fits and misfits both occur
    req_amount = st.tuples(st.integers(0, 3), st.integers(1, 8000)).map(lambda t: 0 if t[0] == 0 else t[1])
    request = {r: draw(req_amount) for r in recipe.resources}
    return recipe, request


def feasible_by_hand(nodes: NodeMatrix, request: dict[str, int]) -> list[bool]:
    """Plain Python: schedulable and free >= request in every dimension."""
    out = []
    for i in range(nodes.n_nodes):
        ok = bool(nodes.schedulable[i])
        for k, r in enumerate(nodes.resources):
            ok = ok and float(nodes.free[k, i]) >= request.get(r, 0)
        out.append(ok)
    return out


def snapshot(nodes: NodeMatrix) -> dict[str, object]:
    return {
        "capacity": nodes.capacity.copy(),
        "allocated": nodes.allocated.copy(),
        "free": nodes.free.copy(),
        "inv_capacity": nodes.inv_capacity.copy(),
        "tasks": nodes.tasks.copy(),
        "schedulable": nodes.schedulable.copy(),
        "resource_scale": nodes.resource_scale.copy(),
        "index_range": nodes.index_range.copy(),
        "ids": list(nodes.ids),
    }


def assert_unchanged(before: dict[str, object], nodes: NodeMatrix, context: str) -> None:
    after = snapshot(nodes)
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, after[key], err_msg=f"{context}: {key} changed")
        else:
            assert value == after[key], f"{context}: {key} changed"


def test_every_policy_is_exercised() -> None:
    assert {
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
    } <= set(ALL_POLICIES)
    assert set(EQUIVARIANT) == set(ALL_POLICIES) - {"round_robin", "first_fit", "random", "hybrid"}


@SETTINGS
@given(clusters_and_requests())
def test_chosen_node_is_feasible_and_none_iff_nothing_fits(case: tuple[Recipe, dict[str, int]]) -> None:
    recipe, request = case
    nodes = recipe.build()
    fits = feasible_by_hand(nodes, request)
    np.testing.assert_array_equal(feasible(nodes, nodes.request_vector(request)), fits)
    event("nothing fits" if not any(fits) else "all fit" if all(fits) else "some fit")
    for name in ALL_POLICIES:
        with np.errstate(**FLOAT_ERRORS):
            d = select(nodes, request, name, rng=np.random.default_rng(recipe.seed))
        assert d.feasible == sum(fits), name
        assert d.n_nodes == recipe.n
        if any(fits):
            assert d.node is not None, f"{name} placed nothing although {sum(fits)} nodes fit"
            assert fits[d.node], f"{name} chose infeasible node {d.node}"
            assert d.node_id == nodes.ids[d.node]
            assert np.isfinite(d.score)
        else:
            assert d.node is None, name
            assert not d.vetoed
            assert sum(d.rejected.values()) == recipe.n
            assert d.reason.startswith(f"0/{recipe.n} nodes fit: ")


@SETTINGS
@given(clusters_and_requests(), st.integers(0, 2**16))
def test_select_then_allocate_never_exceeds_capacity(case: tuple[Recipe, dict[str, int]], seed: int) -> None:
    recipe, request = case
    # a smaller request so that several placements happen before the cluster fills up
    request = {r: a // 4 for r, a in request.items()}
    for name in ALL_POLICIES:
        nodes = recipe.build()
        rng = np.random.default_rng(seed)
        tasks_before = int(nodes.tasks.sum())
        placed = 0
        for _ in range(25):
            d = select(nodes, request, name, rng=rng)
            if d.node is None:
                assert not any(feasible_by_hand(nodes, request)), name
                break
            assert feasible_by_hand(nodes, request)[d.node], name
            nodes.allocate(d.node, request)  # would raise CapacityError on an infeasible choice
            placed += 1
        assert np.all(nodes.allocated <= nodes.capacity), name
        assert np.all(nodes.free >= 0), name
        np.testing.assert_allclose(nodes.free, nodes.capacity - nodes.allocated, err_msg=name)
        assert int(nodes.tasks.sum()) == tasks_before + placed, name


@SETTINGS
@given(clusters_and_requests(), st.randoms(use_true_random=False))
def test_permuting_nodes_permutes_scores(case: tuple[Recipe, dict[str, int]], rnd: random.Random) -> None:
    recipe, request = case
    perm = list(range(recipe.n))
    rnd.shuffle(perm)
    nodes = recipe.build()
    permuted = recipe.build(perm)
    req = nodes.request_vector(request)
    for name in EQUIVARIANT:
        scorer = POLICIES[name]
        with np.errstate(**FLOAT_ERRORS):
            original = scorer(nodes, req)
            shuffled = scorer(permuted, req)
        # new node j is old node perm[j]
        np.testing.assert_allclose(shuffled, original[perm], rtol=1e-12, atol=1e-12, err_msg=name)


@SETTINGS
@given(clusters_and_requests())
def test_scorers_never_mutate_the_matrix(case: tuple[Recipe, dict[str, int]]) -> None:
    recipe, request = case
    nodes = recipe.build()
    req = nodes.request_vector(request)
    req_before = req.copy()
    mask = feasible(nodes, req)
    for name in ALL_POLICIES:
        spec = POLICIES.spec(name)
        params: dict[str, object] = {}
        if spec.uses_rng:
            params["rng"] = np.random.default_rng(0)
        if spec.uses_feasible:
            params["feasible"] = mask.copy()
        before = snapshot(nodes)
        with np.errstate(**FLOAT_ERRORS):
            scores = spec.scorer(nodes, req, **params)
        assert_unchanged(before, nodes, name)
        np.testing.assert_array_equal(req, req_before, err_msg=f"{name} changed the request")
        assert scores.shape == (recipe.n,), name
        assert not np.any(np.isnan(scores)), name
        # and the whole pipeline leaves the matrix alone as well
        select(nodes, req, name, rng=np.random.default_rng(0))
        assert_unchanged(before, nodes, f"select({name})")
