"""Gangs in the simulator: all replicas at once or none, and no deadlock between gangs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from orchsim import run
from orchsim.scenario import ScenarioError, parse_scenario


def scenario(workload: list[dict[str, Any]], nodes: int = 4, queue: str = "fifo", policies: Any = None) -> Any:
    return parse_scenario(
        {
            "version": 1,
            "name": "gangs",
            "policies": policies or ["bin_packing"],
            "scheduler": {"queue": queue},
            "cluster": {"nodes": [{"count": nodes, "capacity": {"cpu": 2000, "memory": 4096}}]},
            "workload": workload,
        }
    )


def gang(at: float, replicas: int, duration: float = 10, cpu: int = 2000, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "burst",
        "at": at,
        "count": 1,
        "resources": {"cpu": cpu, "memory": 512},
        "duration": duration,
        "replicas": replicas,
        **extra,
    }


@pytest.mark.parametrize("queue", ["fifo", "backfill"])
def test_two_gangs_that_exceed_the_cluster_run_one_after_the_other(queue: str) -> None:
    # 4 nodes of 2000 cpu; two gangs of 3 whole-node replicas at t=0 need 6 nodes together.
    # Neither may hold part of the cluster: the first takes 3 nodes, the second waits with
    # nothing held and takes 3 nodes when the first ends at 10. Both complete: no deadlock.
    results = run(scenario([gang(0, 3), gang(0, 3)], queue=queue))
    tasks = results.tasks
    assert (tasks.status == "completed").all()
    assert sorted(tasks.start_time) == pytest.approx([0.0, 10.0])
    assert (tasks.replicas == 3).all()
    # cpu-seconds: 2 gangs x 3 replicas x 2000 x 10 s over 4 x 2000 x 20 s of capacity = 0.75.
    assert results.summary.mean_util_cpu.iloc[0] == pytest.approx(0.75)


def test_a_waiting_gang_holds_nothing_a_single_task_can_use() -> None:
    # Gang A (3 nodes) runs 0-10; gang B (3 nodes) waits. A single whole-node task arriving
    # at t=1 finds the fourth node free (B holds no part of it) and starts at once under backfill.
    single = {"kind": "burst", "at": 1, "count": 1, "resources": {"cpu": 2000, "memory": 512}, "duration": 5}
    tasks = run(scenario([gang(0, 3), gang(0, 3), single], queue="backfill")).tasks
    assert tasks.start_time.tolist() == pytest.approx([0.0, 10.0, 1.0])


def test_replicas_are_spread_by_the_policy_and_fit_each_node() -> None:
    # 4 replicas of 1000 cpu on 4 nodes of 2000: bin packing puts two per node, spread one per node;
    # either way the node count in use shows it.
    w = [gang(0, 4, cpu=1000)]
    summary = run(scenario(w, policies=["bin_packing", "spread"])).summary.set_index("policy")
    assert summary.peak_nodes_used["bin_packing"] == 2
    assert summary.peak_nodes_used["spread"] == 4


def test_min_replicas_takes_what_fits_at_or_above_the_minimum() -> None:
    # One node busy until 50: 3 free nodes. A gang of 4 (min 2) starts at once with 3 replicas;
    # a gang of 4 (min 4) would have waited until 50.
    busy = gang(0, 1, duration=50)
    elastic = run(scenario([busy, gang(1, 4, min_replicas=2)])).tasks
    assert elastic.start_time.tolist() == pytest.approx([0.0, 1.0])
    assert elastic.replicas.tolist() == [1, 3]
    strict = run(scenario([busy, gang(1, 4)])).tasks
    assert strict.start_time.tolist() == pytest.approx([0.0, 50.0])


def test_a_gang_larger_than_the_cluster_is_unschedulable_and_does_not_block() -> None:
    tasks = run(scenario([gang(0, 5), gang(1, 2)])).tasks
    assert tasks.status.tolist() == ["unschedulable", "completed"]
    assert tasks.start_time.iloc[1] == pytest.approx(1.0)


def test_min_replicas_above_replicas_is_one_line_naming_the_field() -> None:
    with pytest.raises(ScenarioError, match=r"workload\.0.*min_replicas \(5\) must be at most replicas \(3\)"):
        scenario([gang(0, 3, min_replicas=5)])


def test_a_gang_lost_with_one_node_is_released_everywhere_and_runs_again() -> None:
    # 4 nodes; a gang of 4 whole-node replicas (at least 3) runs 0-100 on all of them. One node
    # dies at 10 (detected at 25 with the default heartbeat 5 and timeout 15): the whole gang is
    # given up, every replica released, and it runs again with 3 replicas on the nodes left, 25-125.
    s = scenario([gang(0, 4, duration=100, min_replicas=3)])
    s = s.model_copy(update={"events": [parse_event({"at": 10, "kind": "node_failure", "count": 1})]})
    results = run(s)
    tasks = results.tasks
    assert tasks.status.tolist() == ["completed"] and tasks.attempts.tolist() == [2]
    assert tasks.start_time.iloc[0] == pytest.approx(25.0)
    assert tasks.end_time.iloc[0] == pytest.approx(125.0)
    assert results.summary.rescheduled.iloc[0] == 1 and tasks.replicas.tolist() == [3]
    # cpu-seconds used: 4 x 2000 x 10 (lost run, until the node died) + 3 x 2000 x 100.
    capacity = 4 * 2000 * 10 + 3 * 2000 * 115  # the dead node's capacity ends when it dies
    assert results.summary.mean_util_cpu.iloc[0] == pytest.approx((80_000 + 600_000) / capacity)


def parse_event(data: dict[str, Any]) -> Any:
    from orchsim.scenario import ClusterEvent

    return ClusterEvent.KINDS[data["kind"]].model_validate(data)


def swf_line(job: int, submit: int, run: int, processors: int) -> str:
    return " ".join(map(str, [job, submit, -1, run, processors, -1, -1, -1] + [-1] * 10))


def test_swf_jobs_become_gangs_over_one_node_per_processor(tmp_path: Any) -> None:
    # A 4-processor machine as 4 nodes of 1000. Job 1 (3 processors) runs 0-10, job 2 (2) submits
    # at 1: as a gang it needs 2 whole nodes and only 1 is free, so it waits until 10; job 3 (1)
    # submits at 2 and fits the free node at once under backfill.
    log = tmp_path / "log.swf"
    log.write_text("\n".join([swf_line(1, 0, 10, 3), swf_line(2, 1, 5, 2), swf_line(3, 2, 5, 1)]) + "\n")
    s = parse_scenario(
        {
            "version": 1,
            "name": "swf",
            "policies": ["spread"],
            "scheduler": {"queue": "backfill"},
            "cluster": {"nodes": [{"count": 4, "capacity": {"cpu": 1000, "memory": 0}}]},
            "workload": [{"kind": "swf", "path": str(log), "gangs": True}],
        }
    )
    tasks = run(s).tasks
    assert tasks.replicas.tolist() == [3, 2, 1]
    assert tasks.cpu.tolist() == [1000.0, 1000.0, 1000.0]  # per replica: one processor
    assert tasks.start_time.tolist() == pytest.approx([0.0, 10.0, 2.0])
    # Without gangs the same log is three single tasks of 3000, 2000 and 1000 cpu: none fits a node.
    single = run(s.model_copy(update={"workload": [s.workload[0].model_copy(update={"gangs": False})]})).tasks
    assert (single.status == "unschedulable").sum() == 2


@pytest.mark.parametrize("drained", ["g0-0", "g0-1"])
def test_a_gang_leaving_a_draining_node_frees_its_other_nodes_and_removes_every_drained_one(drained: str) -> None:
    """Audit: with the gang's first node draining, the freed second node got no pass (a task stayed
    pending for ever); with the second one draining, it was never removed (nodes_up stayed 2)."""
    scenario = parse_scenario(
        {
            "version": 1,
            "name": "gang_drain",
            "seed": 1,
            "policies": ["first_fit"],
            "cluster": {"nodes": [{"count": 2, "capacity": {"cpu": 4000, "memory": 4096}}]},
            "events": [{"at": 10, "kind": "node_drain", "node": drained}],
            "workload": [
                {"kind": "burst", "at": 0, "count": 1, "replicas": 2, "resources": {"cpu": 4000}, "duration": 100},
                {"kind": "burst", "at": 20, "count": 1, "resources": {"cpu": 4000}, "duration": 10},
            ],
        }
    )
    results = run(scenario)
    tasks = results.table("tasks")
    assert list(np.asarray(tasks["status"])) == ["completed", "completed"]
    assert float(np.asarray(tasks["start_time"])[1]) == pytest.approx(100.0)
    series = results.table("timeseries")
    assert int(np.asarray(series["nodes_up"])[-1]) == 1
