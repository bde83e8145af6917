"""Replaying a recording (``orchsim.traces.orchlive``, ``orchsim.replay_check``, ``python -m orchsim replay``).

On hand-written recordings whose outcome is worked out in the comments, and on the one
shipped in ``scenarios/recordings/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from orchsim.__main__ import main
from orchsim.replay_check import bootstrap_mean, compare_replay
from orchsim.replay_cli import replay
from orchsim.traces import TraceError, load_orchlive_nodes, load_orchlive_tasks

from .conftest import SCENARIOS

TASKS_HEADER = (
    "task_id,name,submit_time,node,devices,assigned_time,start_time,end_time,state,attempt,"
    "cpu_milli,memory_mib,reason,exit_code\n"
)
NODES = (
    "node_id,labels,devices,joined,lost,drained,cpu_milli,memory_mib\nb,zone=x,,-1,,,4000,4096\na,,,-1,,,2000,8192\n"
)


def write_recording(folder: Path, rows: str, policy: str = "bin_packing") -> Path:
    folder.mkdir()
    (folder / "tasks.csv").write_text(TASKS_HEADER + rows)
    (folder / "nodes.csv").write_text(NODES)
    (folder / "policy.json").write_text(json.dumps({"policy": policy, "params": {}}))
    return folder


# t1: submitted at 0, placed at 0.01, ran 0.05 -> 2.05: held its node 2.04 s.
# t2: first attempt on a rescheduled at 1.5, second completed on b (1.0 -> 3.0 s of running, assigned 0.9).
# t3: never placed (still pending): left out of the replay.
ROWS = (
    "t1,one,0,a,,0.01,0.05,2.05,COMPLETED,1,1500,1024,,0\n"
    "t2,two,0.5,a,,0.51,0.52,1.5,RESCHEDULED,1,1000,512,node a lost,\n"
    "t2,two,0.5,b,,1.9,2.0,3.0,COMPLETED,2,1000,512,,0\n"
    "t3,three,0.7,,,,,,PENDING,0,9000,512,,\n"
)


def test_tasks_load_with_the_time_their_node_was_held(tmp_path: Path) -> None:
    tasks, recorded = load_orchlive_tasks(write_recording(tmp_path / "r", ROWS))
    assert list(tasks.names) == ["t1", "t2"] and tasks.skipped == 1
    np.testing.assert_allclose(tasks.submit_time, [0.0, 0.5])
    np.testing.assert_allclose(tasks.duration, [2.04, 1.1])  # end - assigned of the completed attempt
    np.testing.assert_allclose(tasks.resources["cpu"], [1500, 1000])
    np.testing.assert_allclose(tasks.resources["memory"], [1024, 512])
    assert list(recorded.node) == ["a", "b"] and list(recorded.attempts) == [1, 2]
    np.testing.assert_allclose(recorded.wait, [0.01, 0.01])  # to the FIRST placement


def test_nodes_load_sorted_by_id_with_labels(tmp_path: Path) -> None:
    ids, capacity, labels = load_orchlive_nodes(write_recording(tmp_path / "r", ROWS))
    assert ids == ["a", "b"]
    np.testing.assert_allclose(capacity["cpu"], [2000, 4000])
    assert labels == [{}, {"zone": "x"}]


def test_a_bad_cell_names_file_line_and_column(tmp_path: Path) -> None:
    folder = write_recording(tmp_path / "r", "t1,one,soon,a,,0,0,1,COMPLETED,1,1,1,,0\n")
    with pytest.raises(TraceError, match=r"tasks.csv line 2, column 'submit_time': 'soon' is not a number"):
        load_orchlive_tasks(folder)


def test_the_check_counts_agreement_and_names_every_divergence(tmp_path: Path) -> None:
    _, recorded = load_orchlive_tasks(write_recording(tmp_path / "r", ROWS))
    # t1 agrees; t2 diverges, and it was placed twice live: a matter of timing, left out.
    check = compare_replay(recorded, {"node": np.array(["a", "a"], dtype=object), "wait": np.array([0.0, 0.0])})
    assert (check.compared, check.agreed, check.timing, check.agreement) == (2, 1, 1, 1.0)
    assert "rescheduled" in check.divergences[0].cause
    # Swap the recorded attempts: t2 placed once, nothing near it -> "unexplained", counted.
    once = type(recorded)(**{**recorded.__dict__, "attempts": np.array([1, 1])})
    check = compare_replay(once, {"node": np.array(["a", "a"], dtype=object), "wait": np.array([0.0, 0.0])})
    assert check.agreement == pytest.approx(0.5) and check.divergences[0].cause == "unexplained"


def test_the_wait_verdict_can_fail(tmp_path: Path) -> None:
    # Waits 1, 2, 3, 4: mean 2.5, its bootstrap interval well inside [1, 4].
    low, high = bootstrap_mean(np.array([1.0, 2.0, 3.0, 4.0]))
    assert 1.0 < low < 2.5 < high < 4.0
    _, recorded = load_orchlive_tasks(write_recording(tmp_path / "r", ROWS))  # live waits 0.01, 0.01
    nodes = np.array(["a", "b"], dtype=object)
    assert compare_replay(recorded, {"node": nodes, "wait": np.array([0.01, 0.01])}).within
    late = compare_replay(recorded, {"node": nodes, "wait": np.array([0.02, 0.02])})  # the bare interval [0.01, 0.01]
    assert not late.within and "OUTSIDE" in late.lines()[1]
    assert not compare_replay(recorded, {"node": nodes, "wait": np.array([0.0, 0.0])}).within  # too fast, too


@pytest.mark.parametrize(("recording", "placed"), [("dev_mixed", 150), ("killed_worker", 200)])
def test_the_shipped_recordings_replay_their_placements_and_waits(recording: str, placed: int) -> None:
    results, check = replay(SCENARIOS / "recordings" / recording, ["round_robin"])
    assert list(results.summary["policy"])[1:] == ["round_robin"]
    # Timing may leave tasks out (a race within one pass, then the tasks that follow it while it
    # runs); the recordings shipped now, made on a quiet machine, have none: 150/150 and 200/200.
    assert check.compared == placed and check.agreement >= 0.95 and check.timing <= 0.55 * placed, check.lines()
    assert all(d.cause != "unexplained" for d in check.divergences)
    # The replayed mean wait in the recorded mean's bare bootstrap interval: the replay waits the
    # master's decision latency (the mean measured from the recording) on every pass.
    assert check.interval[0] <= check.replayed_mean_wait <= check.interval[1] and check.within, check.lines()
    assert "the mean of" in check.latency
    # Every live placement (killed_worker's 2 rescheduled ones too) decided alike by the core on
    # the cluster the master saw: format 3's event ids give the commit order.
    decisions = check.decisions
    assert decisions is not None and decisions.compared >= placed and decisions.unexplained == 0, check.lines()
    if recording == "killed_worker":
        # Without the latency the simulator places in zero time, and the waits of this recording
        # (all the master's own latency: nothing queues) fall below the interval.
        _, bare = replay(SCENARIOS / "recordings" / recording, latency="none")
        assert bare.replayed_mean_wait < check.interval[0], bare.lines()


def test_the_replay_command_prints_policies_and_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recording = str(SCENARIOS / "recordings" / "dev_mixed")
    assert main(["replay", recording, "--policy", "round_robin", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "round_robin" in out and "placements: 150/150 on the same node" in out
    written = (tmp_path / "replay_check.txt").read_text().splitlines()
    assert written[0].startswith("placements: 150/150") and "\n".join(written) in out  # no divergence to cut
    assert len(written) == 3 and written[2].startswith("decisions: 150/150 live placements decided alike")
    assert set((tmp_path / "summary.csv").read_text().splitlines()[1:][0].split(",")[:1]) == {"bin_packing"}


def test_the_replay_command_refuses_a_folder_without_a_recording(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["replay", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "policy.json: file not found" in err


def test_the_readme_shows_what_the_replay_command_prints(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (SCENARIOS.parent / "README.md").read_text()
    section = readme[readme.index("### Recording a cluster and replaying it") :]
    command, shown = section.split("```")[1], section.split("```")[3]
    argv = command.strip().splitlines()[-1].split()
    assert argv[:3] == ["python", "-m", "orchsim"]
    assert main(argv[3:]) == 0
    assert capsys.readouterr().out.strip() == shown.strip()
