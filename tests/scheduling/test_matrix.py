"""NodeMatrix: construction, growth and shrinkage, labels, requests, allocate/release, copy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from orchsim.scheduling import CapacityError, NodeMatrix, UnknownResourceError


def snapshot(nodes: NodeMatrix) -> dict[str, object]:
    """Every observable piece of state, copied, for before/after comparisons."""
    return {
        "resources": nodes.resources,
        "ids": list(nodes.ids),
        "capacity": nodes.capacity.copy(),
        "allocated": nodes.allocated.copy(),
        "free": nodes.free.copy(),
        "inv_capacity": nodes.inv_capacity.copy(),
        "tasks": nodes.tasks.copy(),
        "schedulable": nodes.schedulable.copy(),
        "labels": [nodes.labels_of(i) for i in range(nodes.n_nodes)],
    }


def assert_same_state(a: dict[str, object], b: dict[str, object]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert a[key] == b[key], key


def two_nodes() -> NodeMatrix:
    return NodeMatrix.from_capacities({"cpu": [4000, 8000], "memory": [8192, 16384]})


# ---------------------------------------------------------------------------- from_capacities
def test_from_capacities_builds_resource_major_arrays() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [4000, 8000, 0], "memory": [8192, 16384, 1024]})
    assert nodes.resources == ("cpu", "memory")
    assert nodes.ids == ["node-0", "node-1", "node-2"]
    assert nodes.n_nodes == len(nodes) == 3
    assert nodes.capacity.shape == nodes.allocated.shape == nodes.free.shape == (2, 3)
    np.testing.assert_array_equal(nodes.capacity, [[4000, 8000, 0], [8192, 16384, 1024]])
    np.testing.assert_array_equal(nodes.allocated, np.zeros((2, 3)))
    np.testing.assert_array_equal(nodes.free, nodes.capacity)
    # inv_capacity = 1/capacity, and 0 (not inf) where capacity is 0:
    # 1/4000 = 0.00025, 1/8000 = 0.000125; 1/8192 = 2**-13, 1/16384 = 2**-14, 1/1024 = 2**-10.
    np.testing.assert_allclose(nodes.inv_capacity, [[0.00025, 0.000125, 0.0], [2**-13, 2**-14, 2**-10]])
    np.testing.assert_array_equal(nodes.tasks, [0, 0, 0])
    np.testing.assert_array_equal(nodes.schedulable, [True, True, True])
    assert nodes.tasks.dtype == np.int64
    assert nodes.schedulable.dtype == bool
    assert nodes.capacity.dtype == np.float64
    np.testing.assert_array_equal(nodes.index_range, [0, 1, 2])
    assert nodes.index_of("node-2") == 2


def test_from_capacities_with_ids_and_labels() -> None:
    nodes = NodeMatrix.from_capacities(
        {"cpu": [1000, 2000]}, ids=["a", "b"], labels=[{"zone": "x"}, {"zone": "y", "gpu": "yes"}]
    )
    assert nodes.ids == ["a", "b"]
    assert nodes.index_of("b") == 1
    assert nodes.labels_of(0) == {"zone": "x"}
    assert nodes.labels_of(1) == {"zone": "y", "gpu": "yes"}


@pytest.mark.parametrize(
    ("capacities", "kwargs"),
    [
        ({"cpu": [1, 2], "memory": [1]}, {}),  # lists of different lengths
        ({"cpu": [1, 2]}, {"ids": ["a"]}),  # 1 id for 2 nodes
        ({"cpu": [1, 2]}, {"labels": [{}]}),  # 1 label set for 2 nodes
        ({"cpu": [1, -2]}, {}),  # negative capacity
        ({"cpu": [1, math.nan]}, {}),  # NaN capacity
        ({"cpu": [1, math.inf]}, {}),  # infinite capacity
        ({"cpu": [1, 2]}, {"ids": ["a", "a"]}),  # duplicate ids
        ({}, {}),  # no resources at all
    ],
)
def test_from_capacities_rejects_bad_input(capacities: dict, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        NodeMatrix.from_capacities(capacities, **kwargs)


def test_duplicate_resource_names_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        NodeMatrix(["cpu", "memory", "cpu"])


def test_from_capacities_with_zero_nodes() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [], "memory": []})
    assert nodes.n_nodes == 0
    assert nodes.capacity.shape == (2, 0)
    assert nodes.tasks.shape == nodes.schedulable.shape == (0,)
    np.testing.assert_array_equal(nodes.resource_scale, [1.0, 1.0])


def test_resource_scale_is_the_largest_capacity_or_one() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [4000, 8000], "memory": [8192, 16384], "gpu": [0, 0]})
    # largest cpu 8000, largest memory 16384, gpu is 0 everywhere -> 1 (never divide by 0)
    np.testing.assert_array_equal(nodes.resource_scale, [8000, 16384, 1])
    nodes.add_node("big", {"cpu": 32000, "gpu": 4000})
    np.testing.assert_array_equal(nodes.resource_scale, [32000, 16384, 4000])
    nodes.remove_nodes([nodes.index_of("big")])
    np.testing.assert_array_equal(nodes.resource_scale, [8000, 16384, 1])


# ---------------------------------------------------------------------------- growth
def test_add_node_one_at_a_time_past_the_buffer_keeps_every_value() -> None:
    nodes = NodeMatrix(["cpu", "memory", "gpu"])
    n = 1000
    for i in range(n):
        # only cpu and memory named: gpu must default to capacity 0
        idx = nodes.add_node(f"n{i}", {"cpu": 1000 + i, "memory": 2 * i + 1}, labels={"rack": f"r{i % 7}"})
        assert idx == i
        if i % 3 == 0:
            # 1 task of cpu i/2 on every third node, allocated while the buffers keep growing
            nodes.allocate(i, {"cpu": i / 2})
        if i % 5 == 0:
            nodes.set_schedulable(i, False)
    assert nodes.n_nodes == n
    i = np.arange(n)
    np.testing.assert_array_equal(nodes.capacity[0], 1000 + i)
    np.testing.assert_array_equal(nodes.capacity[1], 2 * i + 1)
    np.testing.assert_array_equal(nodes.capacity[2], 0)
    expected_alloc = np.where(i % 3 == 0, i / 2, 0.0)
    np.testing.assert_array_equal(nodes.allocated[0], expected_alloc)
    np.testing.assert_array_equal(nodes.allocated[1:], 0)
    np.testing.assert_array_equal(nodes.free[0], 1000 + i - expected_alloc)
    np.testing.assert_array_equal(nodes.free[1], 2 * i + 1)
    np.testing.assert_allclose(nodes.inv_capacity[0], 1.0 / (1000 + i))
    np.testing.assert_array_equal(nodes.inv_capacity[2], 0)
    np.testing.assert_array_equal(nodes.tasks, (i % 3 == 0).astype(int))
    np.testing.assert_array_equal(nodes.schedulable, i % 5 != 0)
    np.testing.assert_array_equal(nodes.label_mask({"rack": "r3"}), i % 7 == 3)
    assert nodes.labels_of(999) == {"rack": f"r{999 % 7}"}
    assert nodes.ids == [f"n{k}" for k in range(n)]
    assert all(nodes.index_of(f"n{k}") == k for k in range(n))
    np.testing.assert_array_equal(nodes.index_range, i)


def test_add_nodes_in_bulk_past_the_buffer() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1, 2, 3, 4, 5], "memory": [10, 20, 30, 40, 50]})
    nodes.allocate(4, {"cpu": 5, "memory": 1})
    k = 100
    cap = np.vstack([np.arange(k) + 100.0, np.full(k, 7.0)])
    added = nodes.add_nodes([f"x{j}" for j in range(k)], cap, labels=[{"bulk": "1"}] * k, schedulable=False)
    assert added == range(5, 105)
    np.testing.assert_array_equal(nodes.capacity[0], np.r_[[1, 2, 3, 4, 5], np.arange(k) + 100])
    np.testing.assert_array_equal(nodes.capacity[1], np.r_[[10, 20, 30, 40, 50], np.full(k, 7)])
    np.testing.assert_array_equal(nodes.allocated[:, 4], [5, 1])
    np.testing.assert_array_equal(nodes.free[:, 4], [0, 49])
    np.testing.assert_array_equal(nodes.allocated[:, 5:], 0)
    np.testing.assert_array_equal(nodes.schedulable, [True] * 5 + [False] * k)
    np.testing.assert_array_equal(nodes.tasks, [0, 0, 0, 0, 1] + [0] * k)
    # label key created by the bulk call: the first five nodes do not carry it
    np.testing.assert_array_equal(nodes.label_mask({"bulk": "1"}), [False] * 5 + [True] * k)


def test_add_node_rejects_duplicates_and_bad_capacity_without_changing_anything() -> None:
    nodes = two_nodes()
    before = snapshot(nodes)
    with pytest.raises(ValueError, match="already exists"):
        nodes.add_node("node-0", {"cpu": 1})
    with pytest.raises(ValueError):
        nodes.add_node("new", {"cpu": -1})
    with pytest.raises(UnknownResourceError):
        nodes.add_node("new", {"gpu": 1})
    with pytest.raises(ValueError, match="duplicate"):
        nodes.add_nodes(["p", "p"], np.ones((2, 2)))
    assert_same_state(before, snapshot(nodes))


# ---------------------------------------------------------------------------- removal
def test_remove_nodes_keeps_order_and_returns_old_to_new_map() -> None:
    nodes = NodeMatrix.from_capacities(
        {"cpu": [100, 200, 300, 400, 500, 600], "memory": [1, 2, 3, 4, 5, 6]},
        labels=[{"k": str(i)} for i in range(6)],
    )
    nodes.allocate(1, {"cpu": 50})
    nodes.allocate(5, {"cpu": 60, "memory": 6})
    nodes.allocate(3, {"cpu": 70})  # last placed: node 3
    nodes.set_schedulable(2, False)
    np.testing.assert_array_equal(nodes.index_range, np.arange(6))  # cached before the removal
    mapping = nodes.remove_nodes([4, 1, 4])  # any order, duplicates harmless
    # survivors 0, 2, 3, 5 become 0, 1, 2, 3; removed 1 and 4 map to -1
    np.testing.assert_array_equal(mapping, [0, -1, 1, 2, -1, 3])
    assert mapping.dtype == np.int64
    assert nodes.ids == ["node-0", "node-2", "node-3", "node-5"]
    assert [nodes.index_of(n) for n in nodes.ids] == [0, 1, 2, 3]
    with pytest.raises(KeyError):
        nodes.index_of("node-1")
    np.testing.assert_array_equal(nodes.capacity, [[100, 300, 400, 600], [1, 3, 4, 6]])
    np.testing.assert_array_equal(nodes.allocated, [[0, 0, 70, 60], [0, 0, 0, 6]])
    np.testing.assert_array_equal(nodes.free, [[100, 300, 330, 540], [1, 3, 4, 0]])
    np.testing.assert_array_equal(nodes.tasks, [0, 0, 1, 1])
    np.testing.assert_array_equal(nodes.schedulable, [True, False, True, True])
    assert [nodes.labels_of(i) for i in range(4)] == [{"k": "0"}, {"k": "2"}, {"k": "3"}, {"k": "5"}]
    np.testing.assert_array_equal(nodes.label_mask({"k": "5"}), [False, False, False, True])
    np.testing.assert_array_equal(nodes.index_range, [0, 1, 2, 3])


def test_remove_nodes_rejects_out_of_range_index() -> None:
    nodes = two_nodes()
    before = snapshot(nodes)
    with pytest.raises(IndexError):
        nodes.remove_nodes([2])
    with pytest.raises(IndexError):
        nodes.remove_nodes([-1])
    assert_same_state(before, snapshot(nodes))


def test_remove_everything_then_add_again() -> None:
    nodes = two_nodes()
    mapping = nodes.remove_nodes([0, 1])
    np.testing.assert_array_equal(mapping, [-1, -1])
    assert nodes.n_nodes == 0
    assert nodes.add_node("node-0", {"cpu": 5}) == 0  # the id is free again
    np.testing.assert_array_equal(nodes.capacity, [[5], [0]])


def test_buffers_halve_when_less_than_a_quarter_full() -> None:
    # The buffer width is private (nodes._cap.shape[1]); reading it is the only way to see the shrink.
    nodes = NodeMatrix(["cpu", "memory"])
    for i in range(100):
        nodes.add_node(f"n{i}", {"cpu": i, "memory": 1000 + i}, labels={"parity": str(i % 2)})
    # one at a time the buffer doubles 8 -> 16 -> 32 -> 64 -> 128
    assert nodes._cap.shape[1] == 128
    nodes.allocate(97, {"cpu": 90})
    # remove 0..89: 10 nodes left, 10 < 128 // 4 = 32 -> halve to 64
    nodes.remove_nodes(range(90))
    assert nodes._cap.shape[1] == 64
    assert nodes.ids == [f"n{i}" for i in range(90, 100)]
    np.testing.assert_array_equal(nodes.capacity[0], np.arange(90, 100))
    np.testing.assert_array_equal(nodes.capacity[1], np.arange(1090, 1100))
    np.testing.assert_array_equal(nodes.allocated[0], [0] * 7 + [90] + [0] * 2)
    np.testing.assert_array_equal(nodes.tasks, [0] * 7 + [1] + [0] * 2)
    np.testing.assert_array_equal(nodes.label_mask({"parity": "1"}), np.arange(90, 100) % 2 == 1)
    # 9 nodes left: 9 < 64 // 4 = 16 -> halve to 32
    nodes.remove_nodes([0])
    assert nodes._cap.shape[1] == 32
    # 8 nodes left, buffer 32: 8 < 32 // 4 = 8 is false -> stays 32
    nodes.remove_nodes([0])
    assert nodes._cap.shape[1] == 32
    # 1 node left: 1 < 32 // 4 = 8 -> halve to 16 (one halving per call, like a list)
    nodes.remove_nodes(range(1, 8))
    assert nodes._cap.shape[1] == 16
    # 0 nodes left: 0 < 16 // 4 -> halve to 8, the minimum, and never below it
    nodes.remove_nodes([0])
    assert nodes._cap.shape[1] == 8
    nodes.remove_nodes([])
    assert nodes._cap.shape[1] == 8
    # and the shrunken matrix still grows and labels correctly
    for i in range(20):
        nodes.add_node(f"m{i}", {"cpu": 1}, labels={"parity": str(i % 2)})
    np.testing.assert_array_equal(nodes.label_mask({"parity": "0"}), np.arange(20) % 2 == 0)
    np.testing.assert_array_equal(nodes.capacity, [[1] * 20, [0] * 20])


# ---------------------------------------------------------------------------- labels
def test_label_mask_and_labels_of() -> None:
    nodes = NodeMatrix.from_capacities(
        {"cpu": [1, 1, 1, 1]},
        labels=[{"zone": "a", "gpu": "t4"}, {"zone": "a"}, {"zone": "b", "gpu": "t4"}, {}],
    )
    np.testing.assert_array_equal(nodes.label_mask({"zone": "a"}), [True, True, False, False])
    np.testing.assert_array_equal(nodes.label_mask({"zone": "a", "gpu": "t4"}), [True, False, False, False])
    np.testing.assert_array_equal(nodes.label_mask({"gpu": "t4"}), [True, False, True, False])
    np.testing.assert_array_equal(nodes.label_mask({}), [True] * 4)
    np.testing.assert_array_equal(nodes.label_mask({"zone": "c"}), [False] * 4)  # unknown value
    np.testing.assert_array_equal(nodes.label_mask({"rack": "1"}), [False] * 4)  # unknown key
    assert nodes.labels_of(0) == {"zone": "a", "gpu": "t4"}
    assert nodes.labels_of(1) == {"zone": "a"}
    assert nodes.labels_of(3) == {}
    assert type(nodes.labels_of(0)) is dict


def test_label_values_are_strings() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1, 1]}, labels=[{"gen": 3}, {"gen": "4"}])  # type: ignore[dict-item]
    assert nodes.labels_of(0) == {"gen": "3"}
    np.testing.assert_array_equal(nodes.label_mask({"gen": 3}), [True, False])  # type: ignore[dict-item]
    np.testing.assert_array_equal(nodes.label_mask({"gen": "4"}), [False, True])


def test_set_labels_replaces_all_labels() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1, 1]}, labels=[{"zone": "a", "disk": "ssd"}, {"zone": "a"}])
    nodes.set_labels(0, {"zone": "b", "arch": "arm"})
    assert nodes.labels_of(0) == {"zone": "b", "arch": "arm"}  # "disk" is gone
    assert nodes.labels_of(1) == {"zone": "a"}
    np.testing.assert_array_equal(nodes.label_mask({"zone": "a"}), [False, True])
    np.testing.assert_array_equal(nodes.label_mask({"zone": "b"}), [True, False])
    np.testing.assert_array_equal(nodes.label_mask({"disk": "ssd"}), [False, False])
    np.testing.assert_array_equal(nodes.label_mask({"arch": "arm"}), [True, False])
    nodes.set_labels(0, {})
    assert nodes.labels_of(0) == {}
    with pytest.raises(IndexError):
        nodes.set_labels(2, {"zone": "a"})


def test_nodes_added_after_a_label_key_exists_do_not_carry_it() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1]}, labels=[{"zone": "a"}])
    for i in range(20):  # grows the label code arrays along with the buffers
        nodes.add_node(f"x{i}", {"cpu": 1})
    assert nodes.labels_of(20) == {}
    np.testing.assert_array_equal(nodes.label_mask({"zone": "a"}), [True] + [False] * 20)


# ---------------------------------------------------------------------------- request_vector
def test_request_vector_orders_by_resource_and_fills_missing_with_zero() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1], "memory": [1], "gpu": [1]})
    vec = nodes.request_vector({"gpu": 250, "cpu": 500})
    assert vec.dtype == np.float64
    np.testing.assert_array_equal(vec, [500, 0, 250])
    np.testing.assert_array_equal(nodes.request_vector({}), [0, 0, 0])
    # an untracked resource asked at 0 is harmless
    np.testing.assert_array_equal(nodes.request_vector({"cpu": 1, "fpga": 0}), [1, 0, 0])
    # an int vector is converted
    vec = nodes.request_vector(np.array([1, 2, 3]))
    assert vec.dtype == np.float64
    np.testing.assert_array_equal(vec, [1, 2, 3])


def test_request_vector_unknown_resource_lists_the_known_ones() -> None:
    nodes = two_nodes()
    with pytest.raises(UnknownResourceError) as info:
        nodes.request_vector({"cpu": 1, "gpu": 1})
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "'gpu'" in message
    assert "cpu, memory" in message
    assert not message.startswith('"')  # plain text, not KeyError's quoted repr
    with pytest.raises(UnknownResourceError):
        nodes.row("gpu")


@pytest.mark.parametrize("amount", [-1, -1e-9, math.nan, math.inf, -math.inf])
def test_request_vector_rejects_negative_and_non_finite(amount: float) -> None:
    nodes = two_nodes()
    with pytest.raises(ValueError, match="finite and >= 0"):
        nodes.request_vector({"cpu": 1, "memory": amount})
    with pytest.raises(ValueError):
        nodes.request_vector(np.array([amount, 1.0]))


def test_request_vector_rejects_wrong_shape() -> None:
    nodes = two_nodes()
    with pytest.raises(ValueError, match="shape"):
        nodes.request_vector(np.array([1.0, 2.0, 3.0]))


# ---------------------------------------------------------------------------- allocate / release
def test_allocate_and_release_arithmetic() -> None:
    nodes = two_nodes()
    nodes.allocate(1, {"cpu": 500, "memory": 256})
    nodes.allocate(1, nodes.request_vector({"cpu": 1500}))
    nodes.allocate(0, np.array([1000.0, 8192.0]))
    # node 1: cpu 500 + 1500 = 2000 of 8000 -> free 6000; memory 256 of 16384 -> free 16128
    # node 0: cpu 1000 of 4000 -> free 3000; memory 8192 of 8192 -> free 0 (exactly full is fine)
    np.testing.assert_array_equal(nodes.allocated, [[1000, 2000], [8192, 256]])
    np.testing.assert_array_equal(nodes.free, [[3000, 6000], [0, 16128]])
    np.testing.assert_array_equal(nodes.tasks, [1, 2])
    nodes.release(1, {"cpu": 500, "memory": 256})
    # node 1: cpu 2000 - 500 = 1500 -> free 6500; memory 0 -> free 16384
    np.testing.assert_array_equal(nodes.allocated, [[1000, 1500], [8192, 0]])
    np.testing.assert_array_equal(nodes.free, [[3000, 6500], [0, 16384]])
    np.testing.assert_array_equal(nodes.tasks, [1, 1])
    nodes.release(1, {"cpu": 1500})
    nodes.release(0, {"cpu": 1000, "memory": 8192})
    np.testing.assert_array_equal(nodes.allocated, 0)
    np.testing.assert_array_equal(nodes.free, nodes.capacity)
    np.testing.assert_array_equal(nodes.tasks, [0, 0])


def test_allocate_zero_request_counts_a_task() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [0, 0], "memory": [0, 0]})
    nodes.allocate(1, {})
    np.testing.assert_array_equal(nodes.tasks, [0, 1])
    np.testing.assert_array_equal(nodes.allocated, 0)


def test_release_tolerates_float_drift_and_never_goes_negative() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1.0]})
    nodes.allocate(0, {"cpu": 0.1})
    nodes.allocate(0, {"cpu": 0.2})
    # 0.1 + 0.2 = 0.30000000000000004 in floats; releasing 0.2 then 0.1 leaves a few ulps,
    # which is within the release slack, and the result is clamped at 0.
    # release recomputes free as capacity - allocated (no drift accumulates in free): after the
    # releases free is exactly 1 - 2.8e-17, which rounds to 1.0; subtracting from free step by step
    # would give 0.9999999999999999 instead.
    nodes.release(0, {"cpu": 0.2})
    assert nodes.free[0, 0] == nodes.capacity[0, 0] - nodes.allocated[0, 0]
    nodes.release(0, {"cpu": 0.1})
    assert nodes.free[0, 0] == nodes.capacity[0, 0] - nodes.allocated[0, 0]
    assert nodes.allocated[0, 0] >= 0.0
    assert nodes.allocated[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert nodes.free[0, 0] == 1.0
    assert nodes.tasks[0] == 0
    # and a release that overshoots by a few ulps is clamped at 0, not left negative
    nodes.allocate(0, {"cpu": 0.3})
    nodes.release(0, {"cpu": 0.1 + 0.2})  # 0.30000000000000004 > 0.3 by 5.6e-17: within the slack
    assert nodes.allocated[0, 0] == 0.0
    assert nodes.free[0, 0] == 1.0


def test_over_allocation_raises_capacity_error_and_changes_nothing() -> None:
    nodes = two_nodes()
    nodes.allocate(0, {"cpu": 3000, "memory": 100})
    before = snapshot(nodes)
    # node 0 has cpu 1000 free and memory 8092 free: 1001 cpu does not fit
    with pytest.raises(CapacityError, match="insufficient cpu") as info:
        nodes.allocate(0, {"cpu": 1001, "memory": 1})
    assert isinstance(info.value, ValueError)
    assert "node-0" in str(info.value)
    assert_same_state(before, snapshot(nodes))
    # both short: both named; memory 8093 > 8092 free
    with pytest.raises(CapacityError, match="insufficient cpu, memory"):
        nodes.allocate(0, {"cpu": 2000, "memory": 8093})
    assert_same_state(before, snapshot(nodes))
    # exactly the rest fits
    nodes.allocate(0, {"cpu": 1000, "memory": 8092})
    np.testing.assert_array_equal(nodes.free[:, 0], [0, 0])


def test_allocate_rejects_bad_requests_and_indices() -> None:
    nodes = two_nodes()
    before = snapshot(nodes)
    with pytest.raises(ValueError):
        nodes.allocate(0, {"cpu": -1})
    with pytest.raises(ValueError):
        nodes.allocate(0, np.array([math.nan, 0.0]))
    with pytest.raises(ValueError):
        nodes.allocate(0, np.array([-1.0, 0.0]))
    with pytest.raises(UnknownResourceError):
        nodes.allocate(0, {"gpu": 1})
    with pytest.raises(IndexError):
        nodes.allocate(2, {"cpu": 1})
    with pytest.raises(IndexError):
        nodes.allocate(-1, {"cpu": 1})
    assert_same_state(before, snapshot(nodes))


def test_over_release_raises_capacity_error_and_changes_nothing() -> None:
    nodes = two_nodes()
    nodes.allocate(1, {"cpu": 1000, "memory": 512})
    before = snapshot(nodes)
    with pytest.raises(CapacityError, match="exceeds"):
        nodes.release(1, {"cpu": 1000, "memory": 513})
    assert_same_state(before, snapshot(nodes))
    with pytest.raises(CapacityError, match="exceeds"):
        nodes.release(1, {"cpu": 1001})
    assert_same_state(before, snapshot(nodes))


def test_release_on_node_without_tasks_raises() -> None:
    nodes = two_nodes()
    before = snapshot(nodes)
    with pytest.raises(CapacityError, match="no tasks"):
        nodes.release(0, {})
    assert_same_state(before, snapshot(nodes))
    nodes.allocate(0, {"cpu": 1})
    nodes.release(0, {"cpu": 1})
    with pytest.raises(CapacityError, match="no tasks"):
        nodes.release(0, {"cpu": 0})


# ---------------------------------------------------------------------------- copy / schedulable
def test_copy_is_equal_and_independent() -> None:
    nodes = NodeMatrix.from_capacities(
        {"cpu": [4000, 8000, 2000], "memory": [8192, 16384, 4096]},
        labels=[{"zone": "a"}, {"zone": "b"}, {}],
    )
    nodes.allocate(2, {"cpu": 500, "memory": 100})
    nodes.allocate(1, {"cpu": 700})
    nodes.set_schedulable(0, False)
    twin = nodes.copy()
    assert_same_state(snapshot(nodes), snapshot(twin))
    assert not hasattr(nodes, "rng") and not hasattr(nodes, "last_placed")  # data only: owners keep those

    original = snapshot(nodes)
    twin.allocate(1, {"cpu": 100, "memory": 100})
    twin.release(2, {"cpu": 500, "memory": 100})
    twin.set_schedulable(0, True)
    twin.set_schedulable(1, False)
    twin.set_labels(0, {"zone": "z"})
    twin.add_node("extra", {"cpu": 1})
    twin.remove_nodes([2])
    assert_same_state(original, snapshot(nodes))

    # and the other way round: changing the original leaves a fresh copy alone
    twin = nodes.copy()
    copied = snapshot(twin)
    nodes.allocate(1, {"cpu": 7300})
    nodes.set_labels(1, {})
    nodes.add_node("late", {"cpu": 1}, labels={"zone": "a"})
    assert_same_state(copied, snapshot(twin))


def test_copy_of_empty_matrix() -> None:
    twin = NodeMatrix(["cpu"]).copy()
    assert twin.n_nodes == 0
    assert twin.resources == ("cpu",)


def test_set_schedulable_toggles_without_touching_tasks() -> None:
    nodes = two_nodes()
    nodes.allocate(1, {"cpu": 100})
    nodes.set_schedulable(1, False)
    np.testing.assert_array_equal(nodes.schedulable, [True, False])
    np.testing.assert_array_equal(nodes.tasks, [0, 1])
    np.testing.assert_array_equal(nodes.allocated[:, 1], [100, 0])
    # a cordoned node's running task can still be released by its owner
    nodes.release(1, {"cpu": 100})
    nodes.set_schedulable(1, True)
    np.testing.assert_array_equal(nodes.schedulable, [True, True])
    with pytest.raises(IndexError):
        nodes.set_schedulable(2, False)


def test_as_dict_and_repr() -> None:
    nodes = two_nodes()
    assert nodes.as_dict(np.array([1.0, 2.0])) == {"cpu": 1.0, "memory": 2.0}
    assert repr(nodes) == "NodeMatrix(resources=('cpu', 'memory'), nodes=2)"
    assert nodes.has_resource("cpu")
    assert not nodes.has_resource("gpu")
