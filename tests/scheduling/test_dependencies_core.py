"""DAG helpers of the core: order, cycles, critical path (worked by hand)."""

from __future__ import annotations

import numpy as np
import pytest

from orchsim.scheduling.dependencies import CycleError, critical_path, topological_order


def test_parents_come_first() -> None:
    # 0 -> {1, 2, 3} -> 4 (the ETL shape).
    parents = [[], [0], [0], [0], [1, 2, 3]]
    order = topological_order(parents)
    assert order == [0, 1, 2, 3, 4]
    position = {task: i for i, task in enumerate(order)}
    assert all(position[p] < position[c] for c, ps in enumerate(parents) for p in ps)


def test_a_cycle_is_named() -> None:
    # 0 -> 1 -> 2 -> 1: the cycle is 1 -> 2 -> 1 (0 is fine).
    with pytest.raises(CycleError) as err:
        topological_order([[], [0, 2], [1]])
    assert err.value.cycle in ([1, 2, 1], [2, 1, 2])
    with pytest.raises(CycleError) as own:
        topological_order([[0]])
    assert own.value.cycle == [0, 0]


def test_critical_path_of_the_etl_dag() -> None:
    # extract 10, transforms 20 / 50 / 30, load 5: the longest chain is 10 + 50 + 5 = 65.
    duration = np.array([10.0, 20.0, 50.0, 30.0, 5.0])
    assert critical_path(duration, [[], [0], [0], [0], [1, 2, 3]]) == pytest.approx(65.0)
    # Without dependencies it is the longest single task.
    assert critical_path(duration, [[]] * 5) == pytest.approx(50.0)
