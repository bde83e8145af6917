"""Where a task that comes back joins the queue: the live master's order, in the simulator.

The master keeps its queue by priority, then ``queue_time`` (a task's creation, or its
eviction for a higher priority), then id (``orchlive.cache.queue_key``). The simulator
keeps the same order (``Simulation.requeue``):

* a victim of preemption goes behind the tasks queued before its eviction;
* a task lost with its node keeps its submission's place (it used to jump to the head);
* a DAG child its parents released keeps its submission's place (it used to join the tail).

Each case below is built so that the other order would start another task first.
"""

from __future__ import annotations

from typing import Any

import pytest

from orchsim import run
from orchsim.scenario import parse_scenario


def _task(name: str, at: float, cpu: int, duration: float, **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "burst",
        "at": at,
        "count": 1,
        "resources": {"cpu": cpu, "memory": 64},
        "duration": duration,
        **more,
    }


def _starts(nodes: list[dict[str, Any]], workload: list[dict[str, Any]], **more: Any) -> dict[str, float]:
    """Each task's (last) start time by its entry's name."""
    scenario = parse_scenario(
        {
            "version": 1,
            "name": "requeue-order",
            "seed": 1,
            "policies": ["first_fit"],
            "cluster": {"nodes": nodes},
            "workload": workload,
            **more,
        }
    )
    tasks = run(scenario).tasks
    names = [entry["name"] for entry in workload]
    return {names[i]: float(start) for i, start in zip(tasks.task_id, tasks.start_time, strict=True)}


@pytest.mark.parametrize(("c_arrives", "passes"), [(1, "per_event"), (5, "per_event"), (5, "per_instant")])
def test_a_victim_goes_behind_the_tasks_queued_before_its_eviction(c_arrives: float, passes: str) -> None:
    # One node of 2000: a and b (priority 0) fill it at t=0; c (priority 0) queues at t=1, or
    # at t=5 just before h; h (priority 10) evicts one of them at t=5 and runs to t=15. Then
    # c, queued before the eviction, starts (t=15); the victim waits for the next room (c
    # ends at t=25). In its creation's place, the victim would have started at 15 and been
    # the next victim; keyed by its eviction time and then its index, it went in front of a
    # c that arrived at the same instant.
    starts = _starts(
        [{"count": 1, "capacity": {"cpu": 2000, "memory": 4096}}],
        [
            _task("a", 0, 1000, 100, priority=0),
            _task("b", 0, 1000, 100, priority=0),
            _task("c", c_arrives, 1000, 10, priority=0),
            _task("h", 5, 1000, 10, priority=10),
        ],
        scheduler={"queue": "fifo", "preemption": True, "passes": passes},
    )
    victim = "a" if starts["a"] > 0 else "b"
    assert starts["h"] == pytest.approx(5.0)
    assert starts["c"] == pytest.approx(15.0)
    assert starts[victim] == pytest.approx(25.0)


def test_the_autoscaler_sees_the_longest_wait_not_the_heads() -> None:
    # A released child rejoins at its submission's place, often the head, with a wait that
    # starts at its release: the autoscaler must still see the task that waited longest.
    # One node of 1000: b (500) runs 0-100, p (500) 0-20; x (1000) waits from t=1; p's child
    # q (1000) is released at t=20 ahead of x and waits too. Scale-out after 30 s of waiting,
    # checked every 10 s: at t=40 x has waited 39 s (q only 20), so a node joins and q, at
    # the head, starts on it. Reading the head's wait, the scale-out came at t=60.
    scenario = parse_scenario(
        {
            "version": 1,
            "name": "requeue-autoscale",
            "seed": 1,
            "policies": ["first_fit"],
            "cluster": {"nodes": [{"count": 1, "capacity": {"cpu": 1000, "memory": 4096}}]},
            "autoscaler": {
                "min_nodes": 1,
                "max_nodes": 2,
                "scale_out_wait": 30,
                "interval": 10,
                "capacity": {"cpu": 1000, "memory": 4096},
            },
            "workload": [
                _task("b", 0, 500, 100),
                _task("p", 0, 500, 20),
                _task("q", 0, 1000, 10, after=["p"]),
                _task("x", 1, 1000, 10),
            ],
        }
    )
    tasks = run(scenario).tasks
    assert float(tasks.start_time[2]) == pytest.approx(40.0)


def test_a_task_lost_with_its_node_keeps_its_submission_place() -> None:
    # g0-0 (2000) takes a (1500) at t=0; w (2000) queues at t=1 (it needs an empty g0-0);
    # l (1000) is backfilled onto g1-0 (1000) at t=2; g1-0 dies at t=10 and l comes back
    # (detected at t=25). When a ends (t=100), w, submitted before l, starts first; l waits
    # for w (t=110). At the head of the queue, l would have taken g0-0 at t=100 and w after.
    starts = _starts(
        [
            {"count": 1, "capacity": {"cpu": 2000, "memory": 4096}},
            {"count": 1, "capacity": {"cpu": 1000, "memory": 4096}},
        ],
        [_task("a", 0, 1500, 100), _task("w", 1, 2000, 10), _task("l", 2, 1000, 50)],
        scheduler={"queue": "backfill"},
        events=[{"at": 10, "kind": "node_lost", "node": "g1-0"}],
    )
    assert starts["w"] == pytest.approx(100.0)
    assert starts["l"] == pytest.approx(110.0)


def test_a_released_child_keeps_its_submission_place() -> None:
    # One node of 1000: p runs 0-10; its child c (submitted at 0) waits for it; x (submitted
    # at 1) waits for room. At t=10 c is released and starts before x, as the master, which
    # orders by creation, starts it. At the tail, x would have started at 10 and c at 15.
    starts = _starts(
        [{"count": 1, "capacity": {"cpu": 1000, "memory": 4096}}],
        [_task("p", 0, 1000, 10), _task("c", 0, 1000, 5, after=["p"]), _task("x", 1, 1000, 5)],
        scheduler={"queue": "fifo"},
    )
    assert starts["c"] == pytest.approx(10.0)
    assert starts["x"] == pytest.approx(15.0)
