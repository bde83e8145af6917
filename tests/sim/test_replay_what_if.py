"""The what-if of a recording: recorded vs replayed measured alike, and the page in one command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from orchsim.__main__ import main
from orchsim.replay_metrics import held_from_recording, occupancy

from .test_replay_node_events import NODES, TASKS


def recording(tmp_path: Path) -> Path:
    folder = tmp_path / "rec"
    folder.mkdir()
    (folder / "tasks.csv").write_text(TASKS)
    (folder / "nodes.csv").write_text(NODES)
    (folder / "policy.json").write_text(json.dumps({"policy": "bin_packing", "params": {}, "lease_ttl": 2}))
    return folder


def test_nodes_in_use_and_stranded_capacity_of_a_recording_are_exact_time_weighted_means(tmp_path: Path) -> None:
    # Holds: t1 on a [0, 6) 1000 cpu, t1 on b [6, 11) 1000, t2 on c [3, 4) 3500. a (2000) is lost at
    # 6, c (4000) joins at 3, b has 3000. Horizon 11.
    # Nodes in use: 1 on [0, 3), 2 on [3, 4), 1 on [4, 11): (3 + 2 + 7) / 11.
    # Stranded cpu (free on busy nodes / capacity present): [0, 3) 1000 / 5000; [3, 4) 1500 / 9000;
    # [4, 6) 1000 / 9000; [6, 11) 2000 / 7000.
    folder = recording(tmp_path)
    got = occupancy(held_from_recording(folder, ["cpu", "memory"]), folder, ["cpu", "memory"])
    assert got["mean_nodes_used"] == pytest.approx(12 / 11)
    stranded = (0.2 * 3 + 1500 / 9000 + 2 * 1000 / 9000 + 5 * 2000 / 7000) / 11
    assert got["mean_stranded_cpu"] == pytest.approx(stranded)


def test_one_command_replays_under_three_more_policies_and_writes_the_what_if_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = recording(tmp_path)
    page = tmp_path / "out" / "what_if.html"
    argv = ["replay", str(folder), "--policy", "spread,round_robin", "--policy", "fgd", "--report", str(page)]
    assert main(argv) == 0
    assert f"what-if report: {page}" in capsys.readouterr().out
    text = page.read_text()
    for run in ("recorded (live)", "replay: bin_packing", "replay: spread", "replay: round_robin", "replay: fgd"):
        assert f"<td>{run}</td>" in text
    assert "failures&#x27; cost: mean wait (s)" in text and "stranded cpu (%)" in text
    assert "node <code>a</code>: died at 4.000 s" in text and "declared lost at 6.000 s" in text
    assert "No divergence" in text and "<script" not in text
    # The recorded row: waits 0.0 and 2.0 s live (to the first placement), t1 placed twice.
    row = text[text.index("<td>recorded (live)</td>") :].split("</tr>")[0]
    cells = [c.split("</td>")[0] for c in row.split("<td>")[1:]]
    assert cells[:3] == ["recorded (live)", "2", "1.000"] and cells[6] == "1"
    # bin_packing's cost of a's loss: t1 ran 0-4 on a and again 6-11 on b (5 s) instead of 0-5:
    # its end moves from 5 to 11, the mean submission-to-end by (11 - 5) / 2 = 3 s.
    mine = text[text.index("<td>replay: bin_packing</td>") :].split("</tr>")[0]
    assert "<td>+3.000</td>" in mine
    np.testing.assert_allclose(12 / 11, float(cells[5]), atol=0.005)
