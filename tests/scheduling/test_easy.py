"""EASY in the core, called as an owner would: reservation from expected ends, backfill that cannot delay it."""

from __future__ import annotations

import numpy as np
import pytest

from orchsim.scheduling import NodeMatrix
from orchsim.scheduling.queueing import EasyHooks, schedule_pass


def test_easy_needs_its_hooks_and_only_it() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000.0]})
    with pytest.raises(ValueError, match="easy discipline needs EasyHooks"):
        schedule_pass(nodes, [], "first_fit", request_of=np.zeros, place=lambda *a: None, discipline="easy")


def test_the_head_is_reserved_and_only_harmless_tasks_pass() -> None:
    # One node of 5000 cpu at t=0; a running task holds 3000 until 100 (expected). Queue: head
    # (4000: 2000 free, it waits; reserved at 100), short (1000 for 50 s), long (1000 for 500 s).
    nodes = NodeMatrix.from_capacities({"cpu": [5000.0]})
    nodes.allocate(0, {"cpu": 3000.0})
    requests = {"head": 4000.0, "short": 1000.0, "long": 1000.0}
    durations = {"head": 50.0, "short": 50.0, "long": 500.0}
    placed: list[str] = []

    def place(task: str, node: int, devices: object) -> None:
        nodes.allocate(node, {"cpu": requests[task]})
        placed.append(task)

    hooks = EasyHooks(
        now=lambda: 0.0,
        duration_of=durations.__getitem__,
        running=lambda: [(100.0, np.array([3000.0]), [(0, {})])],
    )
    result = schedule_pass(
        nodes,
        ["head", "short", "long"],
        "first_fit",
        request_of=lambda task: np.array([requests[task]]),
        place=place,
        discipline="easy",
        easy=hooks,
    )
    # Short ends at 50 <= 100: it passes. Long still runs at 100, when 5000 - 1000 = 4000 >= 4000
    # leaves the head its room: it passes too.
    assert placed == ["short", "long"] and result.blocked
    # A head of 4500 would not fit beside long at 100 (5000 - 1000 < 4500): long waits.
    nodes = NodeMatrix.from_capacities({"cpu": [5000.0]})
    nodes.allocate(0, {"cpu": 3000.0})
    requests["head"] = 4500.0
    placed.clear()
    schedule_pass(
        nodes,
        ["head", "short", "long"],
        "first_fit",
        request_of=lambda task: np.array([requests[task]]),
        place=place,
        discipline="easy",
        easy=hooks,
    )
    assert placed == ["short"]
