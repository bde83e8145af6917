"""The scheduling pass both the simulator and the live master call: order, blocking, never-fits."""

from __future__ import annotations

import numpy as np
import pytest

from orchsim.scheduling import NodeMatrix
from orchsim.scheduling.queueing import DEFAULTS, SchedulingPass, schedule_pass


def small_cluster(cpus: list[int], sizes: dict[str, int]):  # type: ignore[no-untyped-def]
    nodes = NodeMatrix.from_capacities({"cpu": cpus, "memory": [1000] * len(cpus)})
    requests = {name: nodes.request_vector({"cpu": cpu}) for name, cpu in sizes.items()}
    log: list[tuple[str, int]] = []

    def place(task: str, node: int, devices: object = None) -> None:
        nodes.allocate(node, requests[task])
        log.append((task, node))

    return nodes, requests, place, log


def test_fifo_stops_at_the_first_task_that_does_not_fit() -> None:
    # Two nodes of 1000. a (600) -> node 0 (first_fit); b (800) -> node 1; c (500) fits
    # nowhere now (400 and 200 free): the pass stops there and d (100) waits behind it.
    nodes, requests, place, log = small_cluster([1000, 1000], {"a": 600, "b": 800, "c": 500, "d": 100})
    result = schedule_pass(nodes, ["a", "b", "c", "d"], "first_fit", request_of=requests.__getitem__, place=place)
    assert log == [("a", 0), ("b", 1)]
    assert result.placed == ["a", "b"] and result.blocked and result.decisions == 3


def test_backfill_lets_a_later_task_pass_within_the_window() -> None:
    nodes, requests, place, log = small_cluster([1000, 1000], {"a": 600, "b": 800, "c": 500, "d": 100, "e": 100})
    queue = ["a", "b", "c", "d", "e"]
    result = schedule_pass(
        nodes, queue, "first_fit", request_of=requests.__getitem__, place=place, discipline="backfill", window=4
    )
    # c waits; d goes to node 0 (400 free); e is beyond the window of 4.
    assert log == [("a", 0), ("b", 1), ("d", 0)]
    assert not result.blocked and result.decisions == 4


def test_a_task_that_can_never_fit_is_set_aside_not_blocking() -> None:
    for discipline in ("fifo", "backfill"):
        nodes, requests, place, _ = small_cluster([1000], {"huge": 5000, "small": 100})
        result = schedule_pass(
            nodes,
            ["huge", "small"],
            "first_fit",
            request_of=requests.__getitem__,
            place=place,
            discipline=discipline,
            never_fits=lambda task: task == "huge",
            explain=True,
        )
        assert result.never == ["huge"] and result.placed == ["small"], discipline
        assert result.waiting == {}


def test_backfill_tries_new_tasks_past_the_window() -> None:
    # Kubernetes-like: a task is tried when it arrives, however long the queue; the window
    # bounds only how many waiting tasks each pass retries.
    nodes, requests, place, log = small_cluster([1000], {"a": 1500, "b": 1500, "c": 100, "d": 100})
    result = schedule_pass(
        nodes,
        ["a", "b", "c", "d"],
        "first_fit",
        request_of=requests.__getitem__,
        place=place,
        discipline="backfill",
        window=2,
        new=["d"],
    )
    assert result.placed == ["d"] and log == [("d", 0)]  # c, past the window and not new, waits


def test_explain_records_why_tasks_wait() -> None:
    nodes, requests, place, _ = small_cluster([1000, 1000], {"a": 1500, "b": 1200})
    result = schedule_pass(
        nodes, ["a", "b"], "spread", request_of=requests.__getitem__, place=place, discipline="backfill", explain=True
    )
    assert result.waiting == {"a": "0/2 nodes fit: 2 insufficient cpu", "b": "0/2 nodes fit: 2 insufficient cpu"}


def test_a_pass_with_memory_skips_selects_that_cannot_succeed() -> None:
    # Node 0 is full, node 1 has 300 free: "big" (500) finds no room. Then a task on node 1
    # ends (300 -> 800 free): the pass knows only node 1 gained room, and big fits it, so
    # big goes there without a select (it fits nowhere else). Nothing gained: no select.
    nodes, requests, place, log = small_cluster([1000, 1000], {"full": 1000, "part": 700, "big": 500, "tiny": 200})
    place("full", 0)
    place("part", 1)
    scheduler = SchedulingPass("first_fit", request_of=requests.__getitem__, place=place)
    first = scheduler.run(nodes, ["big", "tiny"])
    assert first.blocked and first.decisions == 1 and first.placed == []
    again = scheduler.run(nodes, ["big", "tiny"])
    assert again.blocked and again.decisions == 0
    nodes.release(1, {"cpu": 500})
    freed = scheduler.run(nodes, ["big", "tiny"], gained=1)
    assert freed.placed == ["big", "tiny"] and log[-2:] == [("big", 1), ("tiny", 1)]


def test_forget_tries_every_task_again() -> None:
    nodes, requests, place, log = small_cluster([1000], {"full": 1000, "big": 500})
    place("full", 0)
    scheduler = SchedulingPass("first_fit", request_of=requests.__getitem__, place=place, discipline="backfill")
    assert scheduler.run(nodes, ["big"]).decisions == 1
    nodes.add_nodes(["n-new"], np.array([[1000.0], [1000.0]]))
    assert scheduler.run(nodes, ["big"]).placed == []  # told nothing: big is still remembered as stuck
    scheduler.forget()
    assert scheduler.run(nodes, ["big"]).placed == ["big"] and log[-1] == ("big", 1)


def test_random_policy_draws_from_the_generator_given() -> None:
    def run(seed: int) -> list[tuple[str, int]]:
        nodes, requests, place, log = small_cluster([1000] * 10, {f"t{i}": 100 for i in range(5)})
        schedule_pass(
            nodes,
            list(requests),
            "random",
            request_of=requests.__getitem__,
            place=place,
            rng=np.random.default_rng(seed),
        )
        return log

    assert run(1) == run(1) and run(1) != run(2)


def test_bad_discipline_or_window() -> None:
    nodes, requests, place, _ = small_cluster([1000], {"a": 1})
    with pytest.raises(ValueError, match="queue discipline 'lifo'"):
        schedule_pass(nodes, ["a"], "spread", request_of=requests.__getitem__, place=place, discipline="lifo")
    with pytest.raises(ValueError, match="at least 1"):
        schedule_pass(nodes, ["a"], "spread", request_of=requests.__getitem__, place=place, window=0)


def test_defaults_are_the_simulators() -> None:
    from orchsim.scenario import Scheduler

    assert (DEFAULTS.queue, DEFAULTS.backfill_window, DEFAULTS.max_attempts) == (
        Scheduler().queue,
        Scheduler().backfill_window,
        Scheduler().max_attempts,
    )
