"""What a policy or a filter is given cannot be written: a policy is a pure function of the matrix.

An audit's policy did ``free = nodes.free[cpu]; free -= request[cpu]``: the simulator's state
was corrupted without a word (``mean_stranded_cpu`` -52.6%, physically impossible), while the
live master, which rebuilds its matrix every pass, placed differently.
"""

from __future__ import annotations

import numpy as np
import pytest

from orchsim.scheduling import POLICIES, NodeMatrix, PreparedPolicy, decide
from orchsim.scheduling.subset import NodeSubset

VIEWS = ("capacity", "allocated", "free", "inv_capacity", "safe_capacity", "tasks", "schedulable")


def _matrix() -> NodeMatrix:
    nodes = NodeMatrix.from_capacities({"cpu": [4000.0, 8000.0, 2000.0], "memory": [1024.0, 2048.0, 512.0]})
    nodes.allocate(1, np.array([1000.0, 256.0]))
    return nodes


@pytest.mark.parametrize("name", VIEWS)
def test_every_view_is_read_only_in_the_matrix_and_its_subsets(name: str) -> None:
    nodes = _matrix()
    for matrix in (nodes, NodeSubset(nodes, slice(0, 2)), NodeSubset(nodes, np.array([2, 0]))):
        view = getattr(matrix, name)
        with pytest.raises(ValueError, match="read-only"):
            view[..., 0] = view[..., 0]


def test_a_policy_that_writes_raises_and_the_matrix_is_unchanged() -> None:
    def greedy(nodes, request):  # type: ignore[no-untyped-def]
        free = nodes.free[0]
        free -= request[0]  # in place: the matrix's own row
        return -free

    nodes = _matrix()
    before = (nodes.free.copy(), nodes.allocated.copy(), nodes.tasks.copy())
    POLICIES.register("writes_probe", greedy)
    try:
        with pytest.raises(ValueError, match="read-only"):
            decide(nodes, nodes.request_vector({"cpu": 500}), PreparedPolicy("writes_probe"))
    finally:
        POLICIES.unregister("writes_probe")
    assert all(np.array_equal(a, b) for a, b in zip(before, (nodes.free, nodes.allocated, nodes.tasks), strict=True))


def test_the_matrix_still_changes_through_its_methods_and_views_follow() -> None:
    nodes = _matrix()
    free = nodes.free
    nodes.allocate(0, np.array([500.0, 0.0]))
    assert free[0, 0] == 3500.0 and nodes.tasks[0] == 1  # the same view sees the change
    nodes.set_usage(2, [2000.0, 100.0], 3)
    assert nodes.free[:, 2].tolist() == [0.0, 412.0] and nodes.tasks[2] == 3
    nodes.add_nodes(["late"], np.array([[1000.0], [64.0]]))
    assert nodes.free.shape == (2, 4) and not nodes.free.flags.writeable
    nodes.remove_nodes([0])
    assert nodes.free.shape == (2, 3) and not nodes.tasks.flags.writeable
    copy = nodes.copy()
    assert np.array_equal(copy.free, nodes.free) and not copy.free.flags.writeable


DEVICE_VIEWS = ("free", "counts", "max_free", "n_whole", "free_total", "classes")


@pytest.mark.parametrize("name", DEVICE_VIEWS)
def test_every_device_view_is_read_only_in_the_matrix_and_its_subsets(name: str) -> None:
    """A GPU policy reading ``nodes.devices["gpu"].free`` cannot write the simulator's devices either."""
    nodes = NodeMatrix.from_capacities({"cpu": [4000.0, 4000.0], "gpu": [2000.0, 4000.0]})
    nodes.track_devices("gpu")
    for matrix in (nodes, NodeSubset(nodes, slice(0, 2)), NodeSubset(nodes, np.array([1, 0]))):
        view = getattr(matrix.devices["gpu"], name)
        with pytest.raises(ValueError, match="read-only"):
            view[0, ...] = view[0, ...]
    assert nodes.devices["gpu"].free[1].tolist() == [1000.0] * 4  # the buffers were not touched
