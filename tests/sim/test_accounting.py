"""What the numbers count: lost work, early recoveries, censored waits, the measurement window, reasons.

Every test works its arithmetic out in a comment on a hand-made scenario, and each one
failed before the fix it documents (utilisation 2.0 after a failure, a node that came
back before its lease expired left down for good, waits of 0 while pods never ran, no
warm-up, no reason for what did not run).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchsim import run
from orchsim.cluster import build_cluster
from orchsim.engine import EngineConfig, Simulation
from orchsim.scenario import parse_scenario
from orchsim.workload import build_workload


def scenario(**overrides: Any) -> Any:
    data: dict[str, Any] = {
        "version": 1,
        "name": "t",
        "seed": 1,
        "policies": ["first_fit"],
        "cluster": {
            "heartbeat_interval": 5,
            "failure_timeout": 15,
            "nodes": [{"count": 1, "capacity": {"cpu": 1000, "memory": 1000}}],
        },
        "workload": [],
    }
    data.update(overrides)
    return parse_scenario(data)


def burst(at: float, cpu: float, duration: float | str, count: int = 1, memory: float = 1) -> dict[str, Any]:
    spec: Any = duration if duration != "forever" else {"dist": "constant", "value": float("inf")}
    return {"kind": "burst", "at": at, "count": count, "resources": {"cpu": cpu, "memory": memory}, "duration": spec}


# --------------------------------------------------------------------- lost work (item 2)
def test_work_lost_with_a_node_ends_when_the_node_died() -> None:
    # One 1000-millicore node, one 1000-millicore task from t=0 for 1000 s. The node dies at
    # t=100 for good; with max_attempts 1 the task fails at detection (t=115). It held the
    # whole node from 0 to 100, while the node was alive from 0 to 100: utilisation 1.0
    # (it was 2.0: the failed run was counted twice, and past the node's death).
    s = scenario(
        workload=[burst(0, 1000, 1000)],
        events=[{"at": 100, "kind": "node_failure", "count": 1}],
        scheduler={"max_attempts": 1},
    )
    result = run(s)
    row = result.summary.iloc[0]
    assert row.tasks_failed == 1
    assert row.mean_util_cpu == pytest.approx(1.0, rel=1e-12)
    task = result.tasks.iloc[0]
    assert task.end_time == 100.0  # the run ended when the node died, not when it was noticed
    assert "lost with its node 1 times (max_attempts 1)" in task.reason
    assert result.failures.iloc[0][["failed_at", "detected_at", "tasks_lost"]].tolist() == [100.0, 115.0, 1]


def test_a_task_placed_on_a_dead_node_before_detection_adds_no_work() -> None:
    # Two tasks of 600 on one 1000-millicore node: A at 0 runs; the node dies at 100; B arrives
    # at 105, and the scheduler, not knowing yet, places it on the dead node (600 fits beside
    # nothing? no: A still holds 600 in the scheduler's view, so B (400) fits). Detection at 115:
    # both are lost (max_attempts 1). Work: A 600 x 100; B none. Capacity: 1000 x 100. Util 0.6.
    s = scenario(
        workload=[burst(0, 600, 1000), burst(105, 400, 1000)],
        events=[{"at": 100, "kind": "node_failure", "count": 1}],
        scheduler={"max_attempts": 1},
    )
    result = run(s)
    assert result.summary.iloc[0].mean_util_cpu == pytest.approx(0.6, rel=1e-12)
    assert result.failures.iloc[0].tasks_lost == 2
    assert result.tasks.end_time.tolist() == [100.0, 105.0]


def _random_scenario(data: st.DataObject) -> Any:
    nodes = data.draw(st.integers(1, 4))
    tasks = data.draw(st.integers(1, 25))
    events = []
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["node_failure", "node_failure", "node_recovery", "scale_in", "scale_out"]))
        event: dict[str, Any] = {"at": data.draw(st.floats(0, 60)), "kind": kind, "count": data.draw(st.integers(1, 2))}
        if kind == "scale_out":
            event["capacity"] = {"cpu": 1000, "memory": 1000}
        events.append(event)
    return scenario(
        seed=data.draw(st.integers(0, 2**31)),
        policies=["bin_packing", "spread"],
        cluster={
            "heartbeat_interval": data.draw(st.sampled_from([1.0, 5.0])),
            "failure_timeout": data.draw(st.sampled_from([3.0, 15.0])),
            "nodes": [{"count": nodes, "capacity": {"cpu": 1000, "memory": 1000}}],
        },
        workload=[
            {
                "kind": "poisson",
                "rate": data.draw(st.floats(0.2, 5)),
                "count": tasks,
                "resources": {"cpu": {"dist": "choice", "values": [250, 500, 1000]}, "memory": 100},
                "duration": {"dist": "exponential", "mean": data.draw(st.floats(1, 50))},
            }
        ],
        events=events,
        scheduler={
            "max_attempts": data.draw(st.integers(1, 3)),
            "queue": data.draw(st.sampled_from(["fifo", "backfill"])),
        },
        metrics={"warmup": data.draw(st.sampled_from([0.0, 5.0])), "sample_interval": 1.0},
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_utilisation_never_exceeds_one_under_failures(data: st.DataObject) -> None:
    result = run(_random_scenario(data))
    for column in ("mean_util_cpu", "mean_util_memory"):
        values = result.summary[column].to_numpy()
        assert np.all((values >= 0) & (values <= 1 + 1e-12)), (column, values)
    for column in ("util_cpu", "util_memory", "stranded_cpu"):
        series = result.timeseries[column].to_numpy()
        assert np.all((series >= -1e-12) & (series <= 1 + 1e-12)), column
    # Every task ends in exactly one place, and nothing runs past the end.
    counts = result.summary[["tasks_completed", "tasks_failed", "tasks_pending", "tasks_running", "unschedulable"]]
    assert (counts.sum(axis=1) == result.summary.tasks_submitted).all()


# --------------------------------------------------------------------- early recovery (item 3)
def test_a_node_back_before_its_lease_expired_returns_and_its_tasks_run_again() -> None:
    # Node fails at 100, recovers at 105; detection would have come at 115 (heartbeat 5,
    # timeout 15). It heartbeats again at 105, so it is up; the task on it died at 100 and
    # is given up at 105 and placed again at once on the same (only) node: 105 to 1105.
    s = scenario(
        workload=[burst(0, 1000, 1000)],
        events=[{"at": 100, "kind": "node_failure", "count": 1}, {"at": 105, "kind": "node_recovery", "count": 1}],
    )
    result = run(s)
    task = result.tasks.iloc[0]
    assert task.status == "completed"
    assert (task.start_time, task.end_time, task.attempts) == (105.0, 1105.0, 2)
    assert result.failures.iloc[0][["failed_at", "detected_at", "tasks_lost"]].tolist() == [100.0, 105.0, 1]
    ts = result.timeseries
    assert ts.nodes_up.iloc[-1] == 1
    # Utilisation: work 1000 x (100 + 1000) over capacity 1000 x (1105 - 5): 1100/1100.
    assert result.summary.iloc[0].mean_util_cpu == pytest.approx(1.0, rel=1e-12)


def test_an_early_recovery_voids_the_pending_detection() -> None:
    # Same, and a second task arrives at 110 (when the stale detection timer still runs to
    # 115): the node must not be taken down at 115.
    s = scenario(
        workload=[burst(0, 500, 1000), burst(110, 500, 50)],
        events=[{"at": 100, "kind": "node_failure", "count": 1}, {"at": 105, "kind": "node_recovery", "count": 1}],
    )
    result = run(s)
    assert result.summary.iloc[0].rescheduled == 1
    assert result.tasks.status.tolist() == ["completed", "completed"]
    assert result.tasks.start_time.tolist() == [105.0, 110.0]


# --------------------------------------------------------------------- censored waits (item 4)
def test_never_started_tasks_are_counted_and_their_waits_censored() -> None:
    # One node of 1000; at t=0 two pods of 500 that never leave fill it; a third pod (500)
    # arrives at t=10 and never starts. The run ends at t=10 (nothing can change any more).
    # Started: two waits of 0. Censored mean: (0 + 0 + (10 - 10)) / 3; so to make the
    # censoring visible a fourth pod arrives at 4: it waits 10 - 4 = 6 to the end.
    s = scenario(workload=[burst(0, 500, "forever", count=2), burst(4, 500, "forever"), burst(10, 500, "forever")])
    result = run(s)
    row = result.summary.iloc[0]
    assert row.tasks_never_started == 2
    assert row.mean_wait == 0.0
    assert row.mean_wait_censored == pytest.approx((0 + 0 + 6 + 0) / 4)
    assert np.isnan(row.makespan)  # nothing completed: no makespan, not 0
    reasons = result.tasks.reason.tolist()
    assert reasons[:2] == ["", ""]
    assert reasons[2] == "0/1 nodes fit: 1 insufficient cpu"


def _progress_calls(s: Any) -> list[int]:
    resources, cluster = build_cluster(s)
    workload = build_workload(s, resources, {})
    calls: list[int] = []
    config = EngineConfig(policy="first_fit", policy_params={}, seed=1)
    Simulation(workload, cluster, config, progress=calls.append).run()
    return calls


def test_progress_moves_on_a_trace_whose_pods_never_complete() -> None:
    # 2,500 pods of 100 millicores that never leave, on a node of 150,000: 1,500 fit. The bar
    # moves by 1,000 at the 1,000th placement, then is completed at the end (1,500 more).
    s = scenario(
        cluster={"nodes": [{"count": 1, "capacity": {"cpu": 150_000, "memory": 10_000}}]},
        workload=[{**burst(0, 100, "forever", count=2500), "over": 2500}],
    )
    calls = _progress_calls(s)
    assert calls == [1000, 1500]


# --------------------------------------------------------------------- warm-up and window (item 5)
def test_warmup_and_until_window_the_integrals_and_the_waits() -> None:
    # One node of 1000. A (1000) runs 0-10; B (1000) arrives at 5, waits 5, runs 10-20;
    # C (1000) arrives at 30, runs 30-40. Warm-up 8: A is not measured (submitted before 8);
    # B neither (submitted at 5); C is: mean wait 0 over 1 task.
    # Utilisation over [8, 40]: busy 8-20 and 30-40 = 22 of 32.
    workload = [burst(0, 1000, 10), burst(5, 1000, 10), burst(30, 1000, 10)]
    row = run(scenario(workload=workload, metrics={"warmup": 8})).summary.iloc[0]
    assert row.tasks_measured == 1
    assert row.mean_wait == 0.0
    assert row.mean_util_cpu == pytest.approx(22 / 32)
    # The queue held B from 5 to 10: inside [8, 40] that is 2 task-seconds over 32 s.
    assert row.mean_queue == pytest.approx(2 / 32)
    # Window [0, 25): A and B measured (waits 0 and 5); busy 0-20 of 25.
    row = run(scenario(workload=workload, metrics={"until": 25})).summary.iloc[0]
    assert (row.tasks_measured, row.mean_wait, row.prob_wait) == (2, 2.5, 0.5)
    assert row.mean_util_cpu == pytest.approx(20 / 25)
    # Without a window: everything, over [0, 40].
    row = run(scenario(workload=workload)).summary.iloc[0]
    assert (row.tasks_measured, row.mean_util_cpu) == (3, pytest.approx(30 / 40))


def test_window_overrides_are_validated() -> None:
    from orchsim.scenario import ScenarioError

    with pytest.raises(ScenarioError, match=r"metrics: until \(5.0\) must be after warmup \(10.0\)"):
        run(scenario(workload=[burst(0, 1, 1)]), warmup=10, until=5)
    with pytest.raises(ScenarioError, match="seed: Input should be greater than or equal to 0"):
        run(scenario(workload=[burst(0, 1, 1)]), seed=-1)


# --------------------------------------------------------------------- reasons (item 7)
def test_unschedulable_and_blocked_tasks_say_why() -> None:
    # Node: 1000 cpu, 1000 memory. A needs 2000 memory: no node can ever hold it. B (800)
    # runs forever; C (500) never fits beside it; D (100) would fit but waits behind C (fifo).
    s = scenario(
        workload=[
            burst(0, 100, 10, memory=2000),
            burst(1, 800, "forever"),
            burst(2, 500, 10),
            burst(3, 100, 10),
        ]
    )
    tasks = run(s).tasks
    assert tasks.status.tolist() == ["unschedulable", "running", "pending", "pending"]
    assert tasks.reason[0] == "never fits: 0/1 nodes could hold it even when empty: 1 insufficient memory"
    assert tasks.reason[1] == ""
    assert tasks.reason[2] == "0/1 nodes fit: 1 insufficient cpu"
    assert tasks.reason[3] == "fits on 1/1 nodes at the end, but waited behind 1 task(s) in the fifo queue"


def test_a_task_that_never_fits_does_not_block_the_fifo_queue_behind_it() -> None:
    # One node of 1000. A (1000 cpu, 10 s) at 0. C (500, 5 s) at 1 queues. B (2000) at 2 queues
    # behind C: it was never checked on arrival. D (500, 5 s) at 3. At 10 A ends: C starts; B
    # reaches the head, fails, and is found never to fit: rejected, not left blocking; D starts.
    s = scenario(workload=[burst(0, 1000, 10), burst(1, 500, 5), burst(2, 2000, 1), burst(3, 500, 5)])
    tasks = run(s).tasks
    assert tasks.status.tolist() == ["completed", "completed", "unschedulable", "completed"]
    assert tasks.start_time.tolist()[:2] == [0.0, 10.0] and tasks.start_time[3] == 10.0
    assert tasks.reason[2] == "never fits: 0/1 nodes could hold it even when empty: 1 insufficient cpu"
