"""Priorities and preemption in the simulator: queue order, who is evicted, the lost work."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import yaml

from orchsim import run
from orchsim.scenario import ScenarioError, parse_scenario

from .conftest import SCENARIOS


def scenario(workload: list[dict[str, Any]], nodes: int = 1, **scheduler: Any) -> Any:
    return parse_scenario(
        {
            "version": 1,
            "name": "prio",
            "policies": ["bin_packing"],
            "scheduler": scheduler,
            "cluster": {"nodes": [{"count": nodes, "capacity": {"cpu": 2000, "memory": 4096}}]},
            "workload": workload,
        }
    )


def burst(at: float, duration: float, priority: int, count: int = 1, cpu: int = 1000) -> dict[str, Any]:
    return {
        "kind": "burst",
        "at": at,
        "count": count,
        "resources": {"cpu": cpu, "memory": 256},
        "duration": duration,
        "priority": priority,
    }


def priority_yaml(preemption: bool) -> Any:
    data = yaml.safe_load((SCENARIOS / "priority.yaml").read_text())
    data["scheduler"]["preemption"] = preemption
    return parse_scenario(data, base_dir=SCENARIOS)


def test_high_priority_tasks_preempt_and_start_at_once() -> None:
    results = run(SCENARIOS / "priority.yaml")
    tasks, summary = results.tasks, results.summary
    high, low = tasks[tasks.priority == 100], tasks[tasks.priority == 0]
    assert len(high) == 40 and len(low) == 64  # two policies
    assert high.wait.max() == pytest.approx(0.0, abs=1e-9)  # every urgent task started on arrival
    assert (high.preempted == 0).all() and (high.lost_work_s == 0).all()
    assert (tasks.status == "completed").all()
    for policy, rows in tasks.groupby("policy"):
        row = summary[summary.policy == policy].iloc[0]
        assert row.preempted == rows.preempted.sum() > 0
        assert row.lost_work_s == pytest.approx(rows.lost_work_s.sum())
        # An evicted task returns to the queue and its next placement is one more attempt.
        assert (rows.attempts == rows.preempted + 1).all()


def test_lost_work_is_used_capacity_that_no_completion_accounts_for() -> None:
    # Every task completes, so cpu-seconds allocated = completed runs + evicted runs:
    # sum(cpu * duration) + sum(cpu * lost_work) must equal the exact integral the engine keeps.
    results = run(SCENARIOS / "priority.yaml", policies=["bin_packing"])
    tasks, row = results.tasks, results.summary.iloc[0]
    completed = (tasks.cpu * (tasks.end_time - tasks.start_time)).sum()
    lost = (tasks.cpu * tasks.lost_work_s).sum()
    assert lost > 0
    used = row.mean_util_cpu * 4 * 4000 * results.records[0].horizon
    assert used == pytest.approx(completed + lost, rel=1e-9)


def test_without_preemption_the_urgent_tasks_wait() -> None:
    results = run(priority_yaml(preemption=False), policies=["bin_packing"])
    tasks = results.tasks
    assert "preempted" not in tasks.columns and "preempted" not in results.summary.columns
    high = tasks[tasks.priority == 100]
    assert high.wait.mean() > 10  # they wait for batch tasks to end...
    assert (tasks.attempts == 1).all()


def test_the_queue_orders_by_priority_then_arrival() -> None:
    # One node of 2000 cpu, a 2000 task running until 100. Queued: low (t=1), high (t=2), mid (t=3).
    # When it ends, fifo by priority: high first, then mid, then low (each takes the whole node).
    s = scenario(
        [burst(0, 100, 0, cpu=2000), burst(1, 10, 0, cpu=2000), burst(2, 10, 9, cpu=2000), burst(3, 10, 5, cpu=2000)]
    )
    tasks = run(s).tasks.set_index("submit_time")
    assert tasks.start_time[2.0] == pytest.approx(100)
    assert tasks.start_time[3.0] == pytest.approx(110)
    assert tasks.start_time[1.0] == pytest.approx(120)


def test_preemption_evicts_strictly_lower_priority_only() -> None:
    # Node of 2000 cpu full with two 1000 tasks: priority 5 (t=0) and 1 (t=0).
    # At t=10 a priority-5 task of 1000 arrives: only the priority-1 task may go (5 is not lower).
    s = scenario([burst(0, 100, 5), burst(0, 100, 1), burst(10, 20, 5)], preemption=True)
    by_priority = run(s).tasks
    victim = by_priority[(by_priority.priority == 1)].iloc[0]
    assert victim.preempted == 1 and victim.lost_work_s == pytest.approx(10.0)
    # It comes back when the preemptor ends (t=30) and runs its full 100 s again.
    assert victim.start_time == pytest.approx(30.0) and victim.end_time == pytest.approx(130.0)
    assert victim.wait == pytest.approx(20.0)
    assert len(by_priority) == 3
    same = by_priority[(by_priority.priority == 5)]
    assert (same.preempted == 0).all()
    assert same.start_time.tolist() == pytest.approx([0.0, 10.0])


def test_equal_priorities_never_preempt() -> None:
    s = scenario([burst(0, 100, 3, count=2), burst(10, 20, 3)], preemption=True)
    tasks = run(s).tasks
    assert tasks.preempted.sum() == 0
    assert tasks.start_time.iloc[2] == pytest.approx(100.0)


def test_priority_as_a_distribution_is_drawn_per_task() -> None:
    s = scenario([{**burst(0, 1, 0, count=200), "priority": {"dist": "choice", "values": [0, 1, 2]}}], nodes=4)
    priorities = run(s).tasks.priority
    assert set(np.unique(priorities)) == {0, 1, 2}


def test_a_bad_priority_is_one_line_naming_the_field() -> None:
    with pytest.raises(ScenarioError, match=r"workload\.0.*priority"):
        scenario([{**burst(0, 1, 0), "priority": "urgent"}])


def test_under_backfill_too_the_urgent_tasks_preempt_and_start_at_once() -> None:
    data = yaml.safe_load((SCENARIOS / "priority.yaml").read_text())
    data["scheduler"]["queue"] = "backfill"
    tasks = run(parse_scenario(data, base_dir=SCENARIOS), policies=["spread"]).tasks
    assert tasks[tasks.priority == 100].wait.max() == pytest.approx(0.0, abs=1e-9)
    assert tasks.preempted.sum() > 0 and (tasks.status == "completed").all()


def test_a_trace_beside_a_prioritised_entry_keeps_its_tasks_at_priority_0(tmp_path: Any) -> None:
    # 3 trace tasks (no priority) and 2 synthetic ones at priority 7: the columns line up per task.
    trace = tmp_path / "jobs.csv"
    trace.write_text("submit_time,duration,cpu,memory\n0,5,100,10\n1,5,100,10\n2,5,100,10\n")
    s = scenario([{"kind": "trace", "path": str(trace)}, burst(0.5, 5, 7, count=2)], nodes=2)
    tasks = run(s).tasks.sort_values("submit_time")
    assert tasks.priority.tolist() == [0, 7, 7, 0, 0]


def test_a_victim_on_a_node_that_died_unnoticed_lost_only_what_ran_before_the_death() -> None:
    """Evicted from a dead node the scheduler still saw up: its run ended with the node (audit: 45 s, util 2)."""
    scenario = parse_scenario(
        {
            "version": 1,
            "name": "evict_on_dead",
            "seed": 1,
            "policies": ["first_fit"],
            "scheduler": {"preemption": True},
            "cluster": {"failure_timeout": 100, "nodes": [{"count": 2, "capacity": {"cpu": 1000, "memory": 1024}}]},
            "events": [{"at": 10, "kind": "node_lost", "node": "g0-1"}],
            "workload": [
                {
                    "kind": "burst",
                    "at": t,
                    "count": 1,
                    "resources": {"cpu": 1000, "memory": 0},
                    "duration": d,
                    "priority": p,
                }
                for t, d, p in ((0, 1000, 0), (5, 1000, 0), (50, 10, 100))
            ],
            "metrics": {"warmup": 10, "until": 50},
        }
    )
    results = run(scenario)
    summary = results.summary.iloc[0]
    assert summary["mean_util_cpu"] <= 1.0 + 1e-9
    tasks = results.table("tasks")
    lost = dict(zip(np.asarray(tasks["task_id"]).tolist(), np.asarray(tasks["lost_work_s"]).tolist(), strict=True))
    assert lost[1] == pytest.approx(5.0)  # started at 5 on g0-1, which died at 10 (evicted for the urgent task at 50)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"scheduler": {"queue": "easy", "preemption": True}}, "scheduler: preemption: not combined with queue 'easy'"),
        ({"priority": 10**20}, "workload.0.priority.constrained-int: Input should be less than or equal to 1000000000"),
        ({"priority": {"dist": "uniform", "low": 0, "high": 1e30}}, "workload.0.priority: drew "),
    ],
)
def test_bad_priority_settings_are_one_line(change: dict[str, Any], expected: str) -> None:
    """Refused with the field named (audit: a bare ValueError, an OverflowError, a wrap to -2^63)."""
    data = {
        "version": 1,
        "name": "bad",
        "policies": ["first_fit"],
        "cluster": {"nodes": [{"count": 1, "capacity": {"cpu": 1000, "memory": 1024}}]},
        "workload": [{"kind": "burst", "at": 0, "count": 2, "resources": {"cpu": 100, "memory": 64}, "duration": 1}],
    }
    if "scheduler" in change:
        data["scheduler"] = change["scheduler"]
    else:
        data["workload"][0]["priority"] = change["priority"]
    with pytest.raises(ScenarioError, match=expected):
        run(parse_scenario(data))
