"""The scheduler's decision latency (``scheduler.decision_latency``) and its measure from a recording.

Times worked out in the comments; one node, a few tasks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from orchsim import run
from orchsim.scenario import ScenarioError, parse_scenario
from orchsim.traces import decision_latencies
from orchsim.traces.orchlive_latency import in_service

from .conftest import SCENARIOS


def scenario(latency: Any, policies: tuple[str, ...] = ("bin_packing",)) -> dict[str, Any]:
    # One node of 4000. A (2000, 10 s) at 0, B (2000, 10 s) at 0.01, C (4000, 1 s) at 1: C waits for both.
    workload = [
        {"kind": "burst", "at": at, "count": 1, "resources": {"cpu": cpu, "memory": 0}, "duration": d}
        for at, cpu, d in ((0.0, 2000, 10.0), (0.01, 2000, 10.0), (1.0, 4000, 1.0))
    ]
    return {
        "version": 1,
        "name": "latency",
        "policies": list(policies),
        "scheduler": {"decision_latency": latency},
        "cluster": {"nodes": [{"count": 1, "capacity": {"cpu": 4000, "memory": 0}}]},
        "workload": workload,
    }


def starts(latency: Any) -> list[float]:
    return run(parse_scenario(scenario(latency))).tasks.sort_values("submit_time").start_time.tolist()


def test_no_latency_places_at_once_and_a_fixed_one_delays_every_pass() -> None:
    # Zero (the default): A at 0, B at 0.01; both end by 10.01, when C starts.
    assert starts(0) == pytest.approx([0.0, 0.01, 10.01])
    # 0.05 s: A's arrival asks for a pass at 0.05, which B's arrival (0.01) joins: both start at
    # 0.05 and end at 10.05; the pass their ends ask for runs at 10.10, and C starts then.
    assert starts(0.05) == pytest.approx([0.05, 0.05, 10.10])
    waits = run(parse_scenario(scenario(0.05))).tasks.sort_values("submit_time").wait.tolist()
    assert waits == pytest.approx([0.05, 0.04, 9.10])  # the wait counts from the submission


def test_drawn_latencies_come_from_the_samples_and_are_the_same_under_every_policy() -> None:
    tasks = run(parse_scenario(scenario({"samples": [0.1, 0.3]}, ("bin_packing", "spread")))).tasks
    first = tasks[tasks.submit_time == 0.0]
    assert set(first.wait.round(9)) <= {0.1, 0.3}  # A waits one draw
    by_policy = tasks.pivot(index="submit_time", columns="policy", values="start_time")
    np.testing.assert_allclose(by_policy["bin_packing"], by_policy["spread"])  # common random numbers
    mean = run(parse_scenario(scenario({"samples": [0.1, 0.3], "use": "mean"}))).tasks
    assert mean.sort_values("submit_time").start_time.tolist()[0] == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("latency", "message"),
    [
        ({}, "scheduler.decision_latency: .*exactly one of samples"),
        ({"samples": [0.1], "recording": "."}, "exactly one of samples"),
        (-1, "scheduler.decision_latency"),
        ({"recording": "nowhere"}, "scheduler.decision_latency.recording: folder not found"),
    ],
)
def test_a_bad_latency_is_one_line_naming_the_field(latency: Any, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(scenario(latency), base_dir=Path("/nonexistent"))


TASKS = (
    "task_id,name,submit_time,node,devices,assigned_time,start_time,end_time,state,attempt,cpu_milli,memory_mib,"
    "reason,exit_code\n"
    # a: empty queue, room on n: placed 0.02 later (a latency). b (submitted at 0.01, before a was
    # placed): the queue held a, not a latency. c (at 1, 3000): n holds a (2000 of 4000), no room
    # until a ends at 2; placed at 2.005: waiting for capacity. d (at 3): n empty, placed 0.03 later.
    # e (at 5): n was drained at 4, and m joins only at 6: no node in service, not a latency.
    "a,a,0,n,,0.02,0.03,2,COMPLETED,1,2000,0,,0\n"
    "b,b,0.01,n,,0.04,0.05,0.5,COMPLETED,1,1000,0,,0\n"
    "c,c,1,n,,2.005,2.01,2.5,COMPLETED,1,3000,0,,0\n"
    "d,d,3,n,,3.03,3.04,3.5,COMPLETED,1,1000,0,,0\n"
    "e,e,5,m,,6.01,6.02,7,COMPLETED,1,1000,0,,0\n"
)
NODES = "node_id,labels,devices,joined,lost,drained,cpu_milli,memory_mib\nn,,,-1,,4,4000,0\nm,,,6,,,4000,0\n"


def test_the_latency_is_measured_where_the_master_could_place_at_once(tmp_path: Path) -> None:
    (tmp_path / "tasks.csv").write_text(TASKS)
    (tmp_path / "nodes.csv").write_text(NODES)
    np.testing.assert_allclose(decision_latencies(tmp_path), [0.02, 0.03])  # a and d only


GANG_COLUMNS = "gang,replica,replicas,min_replicas"
GANG_TASKS = (
    "task_id,name,submit_time,node,devices,assigned_time,start_time,end_time,state,attempt,cpu_milli,memory_mib,"
    f"reason,exit_code,{GANG_COLUMNS}\n"
    # Two nodes of 4000. g (3 replicas of 2000) at 0: room for all three, placed 0.01 later (a
    # latency). h (3 replicas of 2000) at 1: g holds 6000 of 8000, room for one replica only;
    # placed at 30.01 when g ended: waiting for capacity, not a latency (it was counted as
    # one, 29 s, since one replica fitted). k (2 replicas of 2000, min_replicas 1) at 40, on
    # empty nodes: placed 0.02 later (a latency).
    "g,g,0,n,,0.01,0.02,30,COMPLETED,1,2000,0,,0,g,0,3,\n"
    "g-1,g,0,n,,0.01,0.02,30,COMPLETED,1,2000,0,,0,g,1,3,\n"
    "g-2,g,0,m,,0.01,0.02,30,COMPLETED,1,2000,0,,0,g,2,3,\n"
    "h,h,1,n,,30.01,30.02,35,COMPLETED,1,2000,0,,0,h,0,3,\n"
    "h-1,h,1,m,,30.01,30.02,35,COMPLETED,1,2000,0,,0,h,1,3,\n"
    "h-2,h,1,m,,30.01,30.02,35,COMPLETED,1,2000,0,,0,h,2,3,\n"
    "k,k,40,n,,40.02,40.03,41,COMPLETED,1,2000,0,,0,k,0,2,1\n"
    "k-1,k,40,m,,40.02,40.03,41,COMPLETED,1,2000,0,,0,k,1,2,1\n"
)


def test_a_gang_that_waited_for_room_for_all_of_it_is_not_a_latency(tmp_path: Path) -> None:
    (tmp_path / "tasks.csv").write_text(GANG_TASKS)
    (tmp_path / "nodes.csv").write_text("node_id,labels,devices,joined,lost,drained,cpu_milli,memory_mib\n"
                                        "n,,,-1,,,4000,0\nm,,,-1,,,4000,0\n")  # fmt: skip
    np.testing.assert_allclose(decision_latencies(tmp_path), [0.01, 0.02])  # g and k, not h


def test_a_node_is_in_service_from_a_join_to_a_loss_or_drain() -> None:
    history = [(2.0, "joined"), (5.0, "lost"), (7.0, "joined"), (9.0, "drained")]
    assert [in_service(history, t) for t in (1, 3, 6, 8, 10)] == [False, True, False, True, False]
    assert in_service([], 1.0) and in_service([(4.0, "lost")], 1.0) and not in_service([(4.0, "lost")], 5.0)


def test_the_shipped_recordings_measure_milliseconds() -> None:
    # killed_worker: 199 of 200 tasks found an empty queue and room (the 200th waited behind one);
    # recorded at load average 2, the master placed them in 3 ms (median; a few tens at most).
    measured = decision_latencies(SCENARIOS / "recordings" / "killed_worker")
    assert measured.size == 199 and 0.001 < float(np.median(measured)) < 0.05 and measured.max() < 0.5
    policy = json.loads((SCENARIOS / "recordings" / "killed_worker" / "policy.json").read_text())
    assert policy["policy"] == "spread"
