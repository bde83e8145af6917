"""Filters: one named list from which every fit check is derived, open to users like policies."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchsim.scheduling import (
    FILTERS,
    NodeMatrix,
    TaskInfo,
    UnknownFilterError,
    could_ever_fit,
    feasible,
    filter,
    fits_node,
    rejections,
    select,
)


def cluster() -> NodeMatrix:
    # Three nodes of 1000 cpu; node 0 runs 3 tasks, node 1 runs 1, node 2 is empty;
    # node 1 is labelled gpu=yes and has only 100 cpu free.
    nodes = NodeMatrix.from_capacities({"cpu": [1000, 1000, 1000], "memory": [100, 100, 100]})
    for _ in range(3):
        nodes.allocate(0, {"cpu": 10})
    nodes.allocate(1, {"cpu": 900})
    nodes.set_labels(1, {"gpu": "yes"})
    return nodes


@pytest.fixture
def zone_filter() -> Iterator[str]:
    """A static user filter: only nodes whose index is even (a stand-in for a taint)."""

    @filter("even_nodes_only", reason="odd node", static=True)
    def even_nodes_only(nodes, request, task):  # type: ignore[no-untyped-def]
        return nodes.index_range % 2 == 0

    yield "even_nodes_only"
    FILTERS.unregister("even_nodes_only")


def test_max_tasks_per_node_rejects_full_nodes_and_explains_why() -> None:
    nodes = cluster()
    req = nodes.request_vector({"cpu": 50})
    limit = FILTERS.active({"max_tasks_per_node": {"limit": 1}})
    # node 0: 3 tasks >= 1; node 1: 1 task >= 1 (and 100 free >= 50); node 2: 0 tasks: fits.
    np.testing.assert_array_equal(feasible(nodes, req, extra=limit), [False, False, True])
    assert select(nodes, req, "bin_packing", filters={"max_tasks_per_node": {"limit": 1}}).node == 2
    nodes.allocate(2, {"cpu": 10})
    decision = select(nodes, req, "bin_packing", filters={"max_tasks_per_node": {"limit": 1}})
    assert decision.node is None
    assert decision.reason == "0/3 nodes fit: 3 too many tasks"
    # Resources come first: a 200-cpu request fails node 1 on cpu, the others on task count.
    assert rejections(nodes, nodes.request_vector({"cpu": 200}), extra=limit) == {
        "insufficient cpu": 1,
        "too many tasks": 2,
    }


def test_default_limit_is_the_kubelets_110() -> None:
    assert FILTERS.spec("max_tasks_per_node").check.__kwdefaults__ == {"limit": 110}


def test_unknown_filter_and_bad_parameters_are_refused() -> None:
    with pytest.raises(UnknownFilterError, match=r"unknown filter 'nope'; valid filters: .*max_tasks_per_node"):
        FILTERS.active({"nope": {}})
    with pytest.raises(TypeError, match="filter 'max_tasks_per_node' has no parameter lim; it takes: limit"):
        FILTERS.active({"max_tasks_per_node": {"lim": 3}})
    with pytest.raises(ValueError, match="already registered"):
        filter("resources")(lambda nodes, request, task: nodes.schedulable)
    with pytest.raises(TypeError, match=r"a filter takes \(nodes, request, task, ...\)"):
        filter("two_args")(lambda nodes, request: nodes.schedulable)


def test_user_filter_runs_when_named_and_counts_under_its_reason(zone_filter: str) -> None:
    nodes = cluster()
    req = nodes.request_vector({"cpu": 50})
    assert select(nodes, req, "most_allocated").node == 1  # unfiltered: the fullest node
    decision = select(nodes, req, "most_allocated", filters=[zone_filter])
    assert decision.node == 0
    # Node 1 (odd) has room for 50 cpu: it is rejected by the filter, under its reason.
    assert rejections(nodes, req, extra=FILTERS.active([zone_filter])) == {"odd node": 1}
    # 980 cpu: nodes 0 (970 free) and 1 (100 free) fail on cpu first, so only those count.
    assert rejections(nodes, nodes.request_vector({"cpu": 980}), extra=FILTERS.active([zone_filter])) == {
        "insufficient cpu": 2
    }


def test_a_default_filter_is_always_on() -> None:
    @filter("never_node_2", default=True)
    def never_node_2(nodes, request, task):  # type: ignore[no-untyped-def]
        return nodes.index_range != 2

    try:
        nodes = cluster()
        req = nodes.request_vector({"cpu": 50})
        assert not feasible(nodes, req, extra=FILTERS.active())[2]
        # spread prefers the fewest tasks: node 2 (empty) is filtered, node 1 (1 task) wins.
        assert select(nodes, req, "spread").node == 1
        assert select(nodes, req, "spread", filters={"max_tasks_per_node": {"limit": 1}}).node is None
    finally:
        FILTERS.unregister("never_node_2")
    assert select(cluster(), cluster().request_vector({"cpu": 50}), "spread").node == 2


def test_could_ever_fit_uses_only_static_filters(zone_filter: str) -> None:
    nodes = cluster()
    everyone = np.ones(3, dtype=bool)
    big = nodes.request_vector({"cpu": 1000})
    # Every node could hold 1000 cpu when empty; the task count filter is dynamic: ignored.
    assert could_ever_fit(nodes, big, everyone, extra=FILTERS.active({"max_tasks_per_node": {"limit": 0}}))
    # The static filter leaves nodes 0 and 2; a selector for gpu=yes (node 1 only) then leaves none.
    assert could_ever_fit(nodes, big, everyone, extra=FILTERS.active([zone_filter]))
    assert not could_ever_fit(nodes, big, everyone, {"gpu": "yes"}, extra=FILTERS.active([zone_filter]))
    assert not could_ever_fit(nodes, nodes.request_vector({"cpu": 1001}), everyone)
    assert not could_ever_fit(nodes, big, np.array([False, False, False]))


def test_task_info_carries_the_selector() -> None:
    nodes = cluster()
    req = nodes.request_vector({"cpu": 50})
    assert select(nodes, req, "spread", task=TaskInfo(node_selector={"gpu": "yes"})).node == 1
    assert rejections(nodes, req, task=TaskInfo(node_selector={"gpu": "no"})) == {"node_selector mismatch": 3}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.booleans(), st.integers(0, 3)), min_size=1, max_size=8),
    st.integers(0, 4),
    st.integers(0, 4),
    st.integers(0, 3),
    st.booleans(),
)
def test_one_node_check_agrees_with_the_mask(rows, cpu, mem, limit, with_selector) -> None:  # type: ignore[no-untyped-def]
    nodes = NodeMatrix.from_capacities({"cpu": [4] * len(rows), "memory": [4] * len(rows)})
    for i, (used_cpu, used_mem, up, tasks) in enumerate(rows):
        for _ in range(tasks):
            nodes.allocate(i, {"cpu": 0})
        nodes.allocate(i, {"cpu": used_cpu, "memory": used_mem})
        nodes.set_schedulable(i, up)
        nodes.set_labels(i, {"zone": "a" if i % 2 else "b"})
    selector = {"zone": "a"} if with_selector else None
    req = nodes.request_vector({"cpu": cpu, "memory": mem})
    extra = FILTERS.active({"max_tasks_per_node": {"limit": limit}})
    mask = feasible(nodes, req, selector, extra=extra)
    for node in range(len(rows)):
        assert fits_node(nodes, req.tolist(), node, selector, extra=extra) == mask[node]
    counts = rejections(nodes, req, selector, extra=extra)
    assert sum(counts.values()) == len(rows) - int(mask.sum())
