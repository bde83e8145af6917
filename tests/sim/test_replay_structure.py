"""A recording's gangs, DAGs and failed processes replayed (``orchsim.traces.orchlive_structure``).

One hand-written format-2 recording; every time worked out in the comments.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from orchsim.replay_cli import replay
from orchsim.traces import TraceError, load_orchlive_structure, load_orchlive_tasks

HEADER = (
    "task_id,name,submit_time,node,devices,assigned_time,start_time,end_time,state,attempt,cpu_milli,memory_mib,"
    "reason,exit_code,gang,replica,replicas,min_replicas,after,on,if_parent_fails\n"
)
# Nodes a (4000) and b (2000), bin packing, the master's latency 0.01 s (g's and p's waits).
# g: a gang of 2 x 2000 at 0, replica 0 on b (the fuller after), replica 1 on a; its replicas end
#   at 3.01 and 2.5: the gang holds both nodes until 3.01 (3.0 s from its assignment).
# p: at 0.5 on a, its process exits 3 at 1.51: FAILED. c1 (after p, on success, skip): SKIPPED.
#   c2 (after p, on completion): placed 0.01 s after p ended, on a, until 2.52.
ROWS = (
    "g,train,0,b,,0.01,0.02,3.01,COMPLETED,1,2000,256,,0,g,0,2,,,,\n"
    "g-1,train,0,a,,0.01,0.02,2.5,COMPLETED,1,2000,256,,0,g,1,2,,,,\n"
    "p,prep,0.5,a,,0.51,0.52,1.51,FAILED,1,1000,256,exit code 3,3,,,,,,,\n"
    "c1,use,0.5,,,,,1.51,SKIPPED,0,1000,256,parent p failed,,,,,,p,success,skip\n"
    "c2,clean,0.5,a,,1.52,1.53,2.52,COMPLETED,1,1000,256,,0,,,,,p,completion,fail\n"
)
NODES = (
    "node_id,labels,devices,joined,lost,drained,rejoined,cpu_milli,memory_mib\n"
    "a,,,-1,,,,4000,1024\nb,,,-1,,,,2000,1024\n"
)


def recording(folder: Path, rows: str = ROWS) -> Path:
    folder.mkdir()
    (folder / "tasks.csv").write_text(HEADER + rows)
    (folder / "nodes.csv").write_text(NODES)
    (folder / "policy.json").write_text(json.dumps({"policy": "bin_packing", "params": {}, "format": 2}))
    return folder


def test_a_gang_is_one_task_of_its_replicas_and_a_dag_keeps_its_edges(tmp_path: Path) -> None:
    folder = recording(tmp_path / "rec")
    tasks, recorded = load_orchlive_tasks(folder)
    assert list(tasks.names) == ["g", "p", "c1", "c2"]  # g-1 is g's replica, not a task of the replay
    np.testing.assert_allclose(tasks.duration[[0, 1, 3]], [3.0, 1.0, 1.0])  # the gang: to its last replica's end
    structure = load_orchlive_structure(folder)
    assert structure.gang is not None and structure.gang.tolist() == [[2, 2], [1, 1], [1, 1], [1, 1]]
    assert structure.parents == [(), (), (1,), (1,)]
    assert structure.on_success.tolist() == [True, True, True, False]
    assert structure.skip.tolist() == [False, False, True, False]
    assert structure.fails.tolist() == [False, True, False, False]
    # c2's wait starts when p ended (1.51): 0.01 s, as the simulator counts it; c1 never placed.
    np.testing.assert_allclose(recorded.wait, [0.01, 0.01, np.nan, 0.01])


def test_the_replay_runs_the_gang_whole_fails_skips_and_waits_as_live(tmp_path: Path) -> None:
    results, check = replay(recording(tmp_path / "rec"))
    tasks = results.tasks.sort_values("submit_time", kind="stable")
    assert list(tasks.status) == ["completed", "failed", "skipped", "completed"]
    assert list(tasks.node.fillna("")) == ["b", "a", "", "a"] and list(tasks.replicas) == [2, 1, 1, 1]
    np.testing.assert_allclose(tasks.start_time, [0.01, 0.51, np.nan, 1.52])  # 0.01 s of latency each
    np.testing.assert_allclose(tasks.end_time[[0, 1, 3]].to_numpy(), [3.01, 1.51, 2.52])
    assert (check.compared, check.agreed, check.timing) == (3, 3, 0)
    assert check.within and check.replayed_mean_wait == pytest.approx(0.01)


def test_a_bad_gang_size_names_its_line(tmp_path: Path) -> None:
    folder = recording(tmp_path / "rec", ROWS.replace("g,0,2,,,,", "g,0,two,,,,", 1))
    with pytest.raises(TraceError, match=r"tasks.csv line 2, column 'replicas': a gang's replicas"):
        load_orchlive_structure(folder)
