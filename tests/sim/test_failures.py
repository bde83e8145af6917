"""Node failures: no task is lost, every task on a failed node is rescheduled and completes."""

from __future__ import annotations

import numpy as np
import pytest

from orchsim import run
from orchsim.engine import Status
from orchsim.scenario import parse_scenario


@pytest.fixture(scope="module")
def failures(scenarios_dir_module):  # type: ignore[no-untyped-def]
    return run(scenarios_dir_module / "failures.yaml")


@pytest.fixture(scope="module")
def scenarios_dir_module():  # type: ignore[no-untyped-def]
    from .conftest import SCENARIOS

    return SCENARIOS


def test_no_task_is_lost_and_counts_add_up(failures) -> None:  # type: ignore[no-untyped-def]
    for _, row in failures.summary.iterrows():
        assert row.tasks_completed == row.tasks_submitted, row.policy
        assert row.tasks_failed == row.tasks_pending == row.tasks_running == row.unschedulable == 0
        assert row.rescheduled > 0, f"{row.policy}: the failures hit no running task"


def test_every_rescheduled_task_ran_again_and_completed(failures) -> None:  # type: ignore[no-untyped-def]
    for record in failures.records:
        status = record.status
        assert np.all(status == Status.COMPLETED)
        # One attempt per placement: first placement plus one per eviction.
        assert int(record.attempts.sum()) == len(status) + record.rescheduled, record.policy
        assert int((record.attempts > 1).sum()) > 0


def test_tasks_do_not_finish_on_nodes_that_were_down(failures) -> None:  # type: ignore[no-untyped-def]
    # Nodes fail at t=900 (back at 1500) and t=2000 (never back); a task whose final run
    # is on a node that failed cannot have ended after that node's failure unless it
    # started after the node came back.
    tasks = failures.tasks
    for policy, rows in tasks.groupby("policy"):
        record = next(r for r in failures.records if r.policy == policy)
        assert rows["end_time"].notna().all()
        assert (rows["end_time"] >= rows["start_time"]).all()
        assert (rows["start_time"] >= rows["submit_time"]).all()
        assert record.horizon >= rows["end_time"].max()


def _one_node_failure(max_attempts: int, recover: bool) -> dict:
    events = [{"at": 10, "kind": "node_failure", "count": 1}]
    if recover:
        events.append({"at": 100, "kind": "node_recovery", "count": 1})
    return {
        "version": 1,
        "name": "one-failure",
        "seed": 1,
        "policies": ["first_fit"],
        "cluster": {
            "heartbeat_interval": 5,
            "failure_timeout": 15,
            "nodes": [{"count": 2, "capacity": {"cpu": 1000, "memory": 1000}}],
        },
        "workload": [
            {"kind": "burst", "at": 0, "count": 2, "resources": {"cpu": 1000, "memory": 1000}, "duration": 50}
        ],
        "events": events,
        "scheduler": {"max_attempts": max_attempts},
    }


def test_failure_detection_waits_for_the_lease_and_reschedules() -> None:
    # Two whole-node tasks at t=0 on two nodes (first_fit: task 0 -> node 0, task 1 -> node 1).
    # At t=10 one node (drawn by the seed) dies. Its last heartbeat was at t=10 (10 is a
    # multiple of the 5 s interval), so the lease expires at 10 + 15 = 25: the task goes back
    # to the queue then, waits for the other node (free at t=50), and runs 50 -> 100.
    results = run(parse_scenario(_one_node_failure(max_attempts=5, recover=False)))
    tasks = results.tasks.sort_values("task_id")
    record = results.records[0]
    assert record.rescheduled == 1
    lost = tasks[tasks.attempts == 2].iloc[0]
    kept = tasks[tasks.attempts == 1].iloc[0]
    assert kept.end_time == pytest.approx(50.0)
    assert lost.start_time == pytest.approx(50.0)
    assert lost.end_time == pytest.approx(100.0)
    assert lost.wait == pytest.approx(50.0 - 25.0)  # queued from detection (25) to start (50)
    assert lost.node == kept.node


def test_retry_limit_marks_the_task_failed() -> None:
    results = run(parse_scenario(_one_node_failure(max_attempts=1, recover=False)))
    summary = results.summary.iloc[0]
    assert summary.tasks_failed == 1
    assert summary.tasks_completed == 1
