"""Gang placement in the core: all (or at least min_replicas) on a trial copy, or nothing."""

from __future__ import annotations

import numpy as np

from orchsim.scheduling import NodeMatrix, PreparedPolicy
from orchsim.scheduling.gangs import gang_could_ever_fit, place_gang
from orchsim.scheduling.queueing import PassExtensions, schedule_pass


def cluster(free_cpu: list[float]) -> NodeMatrix:
    nodes = NodeMatrix.from_capacities({"cpu": [2000.0] * len(free_cpu), "memory": [4096.0] * len(free_cpu)})
    for node, free in enumerate(free_cpu):
        if free < 2000:
            nodes.allocate(node, {"cpu": 2000 - free, "memory": 0})
    return nodes


def test_a_gang_is_placed_whole_and_the_matrix_is_untouched() -> None:
    nodes = cluster([2000, 2000, 2000])
    before = nodes.allocated.copy()
    got = place_gang(nodes, np.array([1000.0, 100.0]), (4, 4), PreparedPolicy("bin_packing"))
    # Bin packing fills node 0 (2 x 1000), then node 1.
    assert [node for node, _ in got] == [0, 0, 1, 1]
    assert np.array_equal(nodes.allocated, before)


def test_below_min_replicas_nothing_is_placed() -> None:
    nodes = cluster([2000, 1000, 0])  # room for 3 replicas of 1000
    request = np.array([1000.0, 0.0])
    assert place_gang(nodes, request, (4, 4), PreparedPolicy("spread")) == []
    assert len(place_gang(nodes, request, (4, 3), PreparedPolicy("spread"))) == 3


def test_could_ever_fit_counts_replicas_per_empty_node() -> None:
    # Capacity per node (cpu, mem): (2000, 4096) and (4000, 1024); replica (1000, 1024):
    # node 0 holds min(2, 4) = 2, node 1 min(4, 1) = 1: three in all.
    capacity = np.array([[2000.0, 4000.0], [4096.0, 1024.0]])
    request = np.array([1000.0, 1024.0])
    assert gang_could_ever_fit(capacity, request, 3, np.array([True, True]))
    assert not gang_could_ever_fit(capacity, request, 4, np.array([True, True]))
    assert not gang_could_ever_fit(capacity, request, 3, np.array([True, False]))


def test_the_pass_places_a_gang_through_its_owner_and_a_second_one_waits() -> None:
    nodes = cluster([2000, 2000, 2000, 2000])
    request = np.array([2000.0, 0.0])
    placed: dict[str, list[int]] = {}

    def place_group(task: str, placements: list[tuple[int, dict]]) -> None:
        for node, _ in placements:
            nodes.allocate(node, request)
        placed[task] = [node for node, _ in placements]

    extensions = PassExtensions(gang_of=lambda task: (3, 3), place_gang=place_group)
    result = schedule_pass(
        nodes,
        ["a", "b"],
        "bin_packing",
        request_of=lambda task: request,
        place=lambda *_: None,
        discipline="backfill",
        extensions=extensions,
    )
    assert result.placed == ["a"] and placed == {"a": [0, 1, 2]}
    assert nodes.allocated[0].tolist() == [2000.0, 2000.0, 2000.0, 0.0]  # b holds nothing
