"""Named node events (``node_lost``, ``node_drain``, ``node_join``) and a recording's node history replayed.

Times worked out in the comments; every scenario is a few tasks on two or three nodes.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from orchsim import run
from orchsim.cluster import recorded_node_events
from orchsim.replay_cli import replay
from orchsim.scenario import NodeDrain, NodeJoin, NodeLost, ScenarioError, parse_scenario
from orchsim.traces import load_orchlive_node_times


def scenario(events: list[dict[str, object]], workload: list[dict[str, object]]) -> dict[str, object]:
    return {
        "version": 1,
        "name": "named",
        "policies": ["spread"],
        "cluster": {
            "nodes": [
                {"name": "big", "count": 1, "capacity": {"cpu": 8000, "memory": 8192}},
                {"name": "small", "count": 1, "capacity": {"cpu": 2000, "memory": 8192}},
            ],
            "failure_timeout": 10,
        },
        "workload": workload,
        "events": events,
    }


def test_a_named_node_dies_and_is_declared_lost_one_failure_timeout_later() -> None:
    # Two equal nodes, bin packing. t0 (0 s, 20 s long) goes to n-0 (a tie: the first node). n-0
    # dies at 5; t1 arrives at 8, when the scheduler still believes n-0 up and fuller: it goes
    # there too. At 5 + 10 = 15 the loss is detected: both go back to the queue and on to n-1,
    # t0 ending at 15 + 20 = 35, t1 at 15 + 4 = 19.
    workload = [
        {"kind": "burst", "at": 0, "count": 1, "resources": {"cpu": 1000, "memory": 256}, "duration": 20},
        {"kind": "burst", "at": 8, "count": 1, "resources": {"cpu": 1000, "memory": 256}, "duration": 4},
    ]
    data = scenario([{"kind": "node_lost", "at": 5, "node": "n-0"}], workload)
    data |= {"policies": ["bin_packing"]}
    data["cluster"]["nodes"] = [{"name": "n", "count": 2, "capacity": {"cpu": 4000, "memory": 8192}}]  # type: ignore[index]
    results = run(parse_scenario(data))
    tasks = results.tasks.sort_values("submit_time")
    assert list(tasks.node) == ["n-1", "n-1"] and list(tasks.attempts) == [2, 2]
    np.testing.assert_allclose(tasks.end_time, [35.0, 19.0])
    failure = results.failures.iloc[0]
    assert (failure.node, failure.failed_at, failure.detected_at, failure.tasks_lost) == ("n-0", 5.0, 15.0, 2)


def test_a_node_drained_at_zero_joins_later_and_a_task_only_it_holds_waits_for_it() -> None:
    # 4000 millicores fit only big-0, which is out until 12: the task (at 1) waits 11 s instead of
    # being refused as unschedulable; the small one (at 2) waits behind it (fifo) and goes at 12 too.
    events = [
        {"kind": "node_drain", "at": 0, "node": "big-0"},
        {"kind": "node_join", "at": 12, "node": "big-0", "capacity": {"cpu": 8000, "memory": 8192}},
    ]
    workload = [
        {"kind": "burst", "at": 1, "count": 1, "resources": {"cpu": 4000, "memory": 256}, "duration": 3},
        {"kind": "burst", "at": 2, "count": 1, "resources": {"cpu": 500, "memory": 256}, "duration": 3},
    ]
    results = run(parse_scenario(scenario(events, workload)))
    tasks = results.tasks.sort_values("submit_time")
    assert list(tasks.status) == ["completed", "completed"]
    assert list(tasks.node) == ["big-0", "small-0"]
    np.testing.assert_allclose(tasks.wait, [11.0, 10.0])


def test_an_event_naming_no_node_is_one_line() -> None:
    workload = [{"kind": "burst", "at": 0, "count": 1, "resources": {"cpu": 100}, "duration": 1}]
    with pytest.raises(ValueError, match=r"event node_lost: no node named 'nope' in the cluster"):
        run(parse_scenario(scenario([{"kind": "node_lost", "at": 0, "node": "nope"}], workload)))
    with pytest.raises(ScenarioError, match=r"events\.0\.node"):
        parse_scenario(scenario([{"kind": "node_join", "at": 0}], workload))


def test_a_recorded_history_becomes_named_events() -> None:
    history = {
        "a": [(-3.0, "joined"), (40.0, "lost"), (60.0, "joined")],  # lost at 40: died at 40 - 5 = 35; back at 60
        "b": [(12.5, "joined"), (30.0, "drained")],  # absent until 12.5, drained at 30
        "c": [(-1.0, "joined")],  # there all along: no event
    }
    caps = {n: {"cpu": 1000.0} for n in history}
    events = recorded_node_events(history, caps, failure_timeout=5.0)
    assert [(type(e), e.node, e.at) for e in events] == [
        (NodeLost, "a", 35.0),
        (NodeJoin, "a", 60.0),
        (NodeDrain, "b", 0.0),
        (NodeJoin, "b", 12.5),
        (NodeDrain, "b", 30.0),
    ]
    assert events[1].capacity == {"cpu": 1000.0}


def test_any_number_of_losses_returns_and_drains_per_node_become_events() -> None:
    history = {
        # a: lost at 10 (died 8), back at 12, lost at 13 (died at 12, not before its return:
        # 13 - 2 = 11 < 12), back at 20, drained at 30, back at 40, lost at 50 (died 45).
        "a": [
            *[(-1.0, "joined"), (10.0, "lost"), (12.0, "joined"), (13.0, "lost"), (20.0, "joined")],
            *[(30.0, "drained"), (40.0, "joined"), (50.0, "lost")],
        ],
        # b: a second join while in service (a worker registering again, no loss) changes nothing;
        # lost while drained: its tasks die with it.
        "b": [(-1.0, "joined"), (5.0, "joined"), (6.0, "drained"), (9.0, "lost")],
    }
    events = recorded_node_events(history, {n: {"cpu": 1.0} for n in history}, failure_timeout=2.0)
    assert [(type(e).__name__, e.node, e.at) for e in events] == [
        ("NodeLost", "a", 8.0),
        ("NodeJoin", "a", 12.0),
        ("NodeLost", "a", 12.0),
        ("NodeJoin", "a", 20.0),
        ("NodeDrain", "a", 30.0),
        ("NodeJoin", "a", 40.0),
        ("NodeLost", "a", 48.0),
        ("NodeDrain", "b", 6.0),
        ("NodeLost", "b", 7.0),
    ]


TASKS = (
    "task_id,name,submit_time,node,devices,assigned_time,start_time,end_time,state,attempt,cpu_milli,memory_mib,"
    "reason,exit_code\n"
    # t1 ran on a until a died (declared lost at 6.0), then 5 s on b; t2 waited for c to join at 3.
    "t1,one,0,a,,0,0,6.0,RESCHEDULED,1,1000,256,node a lost,\n"
    "t1,one,0,b,,6.0,6.0,11.0,COMPLETED,2,1000,256,,0\n"
    "t2,two,1,c,,3.0,3.0,4.0,COMPLETED,1,3500,256,,0\n"
)
NODES = (
    "node_id,labels,devices,joined,lost,drained,rejoined,cpu_milli,memory_mib\n"
    "a,,,-1,6.0,,,2000,1024\nb,,,-1,,,,3000,1024\nc,,,3.0,,,,4000,1024\n"
)


def recording(tmp_path: Path, tasks: str, nodes: str, node_events: str | None = None, *, policy: bool = True) -> Path:
    """A hand-made recording folder: tasks.csv, nodes.csv, optionally node_events.csv and policy.json."""
    folder = tmp_path / "rec"
    folder.mkdir()
    (folder / "tasks.csv").write_text(tasks)
    (folder / "nodes.csv").write_text(nodes)
    if node_events is not None:
        (folder / "node_events.csv").write_text(node_events)
    if policy:
        (folder / "policy.json").write_text(json.dumps({"policy": "bin_packing", "params": {}, "lease_ttl": 2}))
    return folder


def test_a_recording_replays_its_lost_node_and_its_late_join(tmp_path: Path) -> None:
    folder = recording(tmp_path, TASKS, NODES)
    assert load_orchlive_node_times(folder)["c"] == {"joined": 3.0}
    # The lease is 2 s: a dies at 6 - 2 = 4 and is declared lost at 6, as recorded. t1 (5 s, its
    # completed attempt) goes to a at 0 (bin packing: a is the fuller after), dies with it at 4, goes
    # back to the queue at 6 and on to b, as live, ending at 11. t2 (3500 millicores) waits for c (3).
    results, check = replay(folder)
    tasks = results.tasks.sort_values("submit_time")
    assert list(tasks.node) == ["b", "c"] and list(tasks.attempts) == [2, 1]
    np.testing.assert_allclose(tasks.end_time, [11.0, 4.0])
    np.testing.assert_allclose(tasks.wait, [0.0, 2.0])
    failure = results.failures.iloc[0]
    assert (failure.node, failure.failed_at, failure.detected_at, failure.tasks_lost) == ("a", 4.0, 6.0, 1)
    assert (check.compared, check.agreed, check.agreement) == (2, 2, 1.0)
    assert not check.divergences


def test_a_divergence_near_a_join_or_a_loss_is_timing_and_named(tmp_path: Path) -> None:
    from orchsim.replay_check import compare_replay
    from orchsim.traces import load_orchlive_tasks

    folder = recording(tmp_path, TASKS, NODES, policy=False)
    _, recorded = load_orchlive_tasks(folder)
    # t2 (submitted at 1, placed live at 3 on c) replayed on b: c joined at 3.0, inside [1, 3].
    replayed = {"node": np.array(["b", "b"], dtype=object), "wait": np.array([0.0, 2.0])}
    check = compare_replay(recorded, replayed, joins=[("c", 3.0)])
    assert check.divergences[-1].cause == "timing: node c joined +2.000 s from its submission"
    # Without the join, the same divergence is unexplained; with c lost at 4.5 under a 2 s lease, t2's
    # stay (1 to 4) overlaps [4.5 - 2 - 0.5, 4.5]: its worker's death is not known that closely.
    assert compare_replay(recorded, replayed).divergences[-1].cause == "unexplained"
    lost = compare_replay(recorded, replayed, losses={"c": 4.5}, lease=2.0).divergences[-1].cause
    assert lost.startswith("timing: node c was lost at 4.500 s")


def test_a_divergence_the_replay_requeued_after_a_loss_is_timing(tmp_path: Path) -> None:
    """The replay placed t2 twice: node a, lost at 2.5 (after t2's submission at 1), requeued it.

    The replay dates a worker's death from when the master declared the loss; a master that
    declares it late leaves the node's tasks ending in the replay and not live, so the replay
    puts a task there that live went elsewhere. That is timing, not a policy difference.
    """
    from orchsim.replay_check import compare_replay
    from orchsim.traces import load_orchlive_tasks

    folder = recording(tmp_path, TASKS, NODES, policy=False)
    _, recorded = load_orchlive_tasks(folder)
    replayed = {"node": np.array(["b", "b"], dtype=object), "wait": np.array([0.0, 2.0])}
    twice = replayed | {"attempts": np.array([1, 2]), "start_time": np.array([0.0, 3.0])}
    cause = compare_replay(recorded, twice, losses={"a": 2.5}).divergences[-1].cause
    assert cause == "timing: placed 2 times in the replay, requeued when node a was lost at 2.500 s"
    # Placed once in the replay, or the loss after its last start (not what requeued it): unexplained.
    once = replayed | {"attempts": np.array([1, 1]), "start_time": np.array([0.0, 3.0])}
    assert compare_replay(recorded, once, losses={"a": 2.5}).divergences[-1].cause == "unexplained"
    assert compare_replay(recorded, twice, losses={"a": 3.5}).divergences[-1].cause == "unexplained"


def test_an_end_committed_after_a_placement_is_timing_whatever_its_time(tmp_path: Path) -> None:
    """Format 3: t1's end is stamped at 2.0, before t2's submission (2.3), but committed after t2's placement.

    Live, the master could not have counted it when it placed t2; the replay, going by the
    time, did. The event ids say so, and the divergence is timing; without them (an older
    recording) the same divergence is unexplained.
    """
    from orchsim.replay_check import compare_replay
    from orchsim.traces import load_orchlive_tasks

    header = TASKS.splitlines()[0] + ",gang,replica,replicas,min_replicas,after,on,if_parent_fails"
    rows = [
        "t1,one,0,a,,0,0,2.0,COMPLETED,1,1000,256,,0,,,,,,,,1001,5002",
        "t2,two,2.3,b,,2.32,2.32,4.0,COMPLETED,1,1000,256,,0,,,,,,,,4003,6001",
    ]
    folder = recording(tmp_path, "\n".join([header + ",assigned_event,end_event", *rows]) + "\n", NODES, policy=False)
    _, recorded = load_orchlive_tasks(folder)
    assert list(recorded.assigned_event) == [1001, 4003] and list(recorded.end_event) == [5002, 6001]
    replayed = {
        "node": np.array(["a", "a"], dtype=object),
        "wait": np.array([0.0, 0.02]),
        "start_time": np.array([0.0, 2.32]),
        "end_time": np.array([2.0, 4.0]),
    }
    cause = compare_replay(recorded, replayed).divergences[-1].cause
    assert cause == "timing: t1 ended after its placement live (commit order), before in the replay"
    # Committed before t2's placement (its id below 4003): both saw it, the divergence is unexplained.
    before = replace(recorded, end_event=np.array([3002.0, 6001.0]))
    assert compare_replay(before, replayed).divergences[-1].cause == "unexplained"
    assert compare_replay(replace(recorded, end_event=None), replayed).divergences[-1].cause == "unexplained"


def test_resize_refuses_a_recording_and_events_naming_a_node() -> None:
    from orchsim.resize import scale_scenario
    from orchsim.scenario import load_scenario

    from .conftest import SCENARIOS

    with pytest.raises(ScenarioError, match=r"cluster.nodes.0: a live cluster's recording .* cannot be resized"):
        scale_scenario(load_scenario(SCENARIOS / "replay_dev_mixed.yaml"), 0.5)
    workload = [{"kind": "burst", "at": 0, "count": 4, "resources": {"cpu": 100}, "duration": 1}]
    named = parse_scenario(scenario([{"kind": "node_lost", "at": 1, "node": "big-0"}], workload))
    with pytest.raises(ScenarioError, match=r"events.0: node_lost names node 'big-0'"):
        scale_scenario(named, 2)
    assert scale_scenario(named, 1) is named


NODE_EVENTS = (
    "node_id,time,event,state\n"
    # a lost at 3 (died at 1 under the 2 s lease), back at 4, lost again at 8 (died at 6), back at 9;
    # b drained at 4.2 and restarted at 7 still cordoned (DRAINING): it stays out.
    "a,-1,joined,READY\nb,-1,joined,READY\na,3,lost,NOT_READY\na,4,joined,READY\nb,4.2,drained,DRAINING\n"
    "b,7,joined,DRAINING\na,8,lost,NOT_READY\na,9,joined,READY\n"
)
TWICE = (
    "task_id,name,submit_time,node,devices,assigned_time,start_time,end_time,state,attempt,cpu_milli,memory_mib,"
    "reason,exit_code\n"
    # t1 (0 -> 1.5) on b; t2 at 4.5 and t3 at 9.5 on a (b is drained), each for 1 s.
    "t1,one,0,b,,0,0,1.5,COMPLETED,1,1000,256,,0\n"
    "t2,two,4.5,a,,4.5,4.5,5.5,COMPLETED,1,1000,256,,0\n"
    "t3,three,9.5,a,,9.5,9.5,10.5,COMPLETED,1,1000,256,,0\n"
)


def test_a_node_lost_twice_replays_both_losses_and_returns(tmp_path: Path) -> None:
    nodes = "node_id,labels,devices,joined,lost,drained,rejoined,cpu_milli,memory_mib\n"
    folder = recording(tmp_path, TWICE, nodes + "a,,,-1,8,,9,2000,1024\nb,,,-1,,4.2,7,4000,1024\n", NODE_EVENTS)
    results, check = replay(folder, latency="none")
    failures = results.failures.sort_values("failed_at")
    assert list(failures.node) == ["a", "a"]
    np.testing.assert_allclose(failures.failed_at, [1.0, 6.0])
    np.testing.assert_allclose(failures.detected_at, [3.0, 8.0])
    tasks = results.tasks.sort_values("submit_time")
    # t2 at 4.5: a is back (4), b drained (4.2): a, ending at 5.5 before a dies again (6). t3 at
    # 9.5: b stays out (its restart at 7 kept it cordoned), a is back (9).
    assert list(tasks.node) == ["b", "a", "a"] and (tasks.status == "completed").all()
    assert (check.agreed, check.compared) == (3, 3)
