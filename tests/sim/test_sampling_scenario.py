"""Node sampling from a scenario file (``scheduler.sampling``) and the sweep over it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchsim import run
from orchsim.scenario import load_scenario

SCENARIO = """
version: 1
name: sampled
seed: 3
policies: [bin_packing]
cluster:
  nodes:
    - {{name: n, count: 300, capacity: {{cpu: 4000, memory: 8192}}}}
workload:
  - kind: poisson
    count: 1500
    rate: 40
    duration: {{dist: exponential, mean: 20}}
    resources: {{cpu: 500, memory: 512}}
scheduler: {{sampling: {sampling}}}
"""


def scenario(tmp_path: Path, sampling: str) -> Path:
    path = tmp_path / "sampled.yaml"
    path.write_text(SCENARIO.format(sampling=sampling))
    return path


def mean_nodes(path: Path) -> float:
    summary = run(load_scenario(path)).summary
    assert int(summary["tasks_completed"].iloc[0]) == 1500  # sampling never loses a task
    return float(summary["peak_nodes_used"].iloc[0])


def test_sampling_changes_packing_as_the_rule_says(tmp_path: Path) -> None:
    every = mean_nodes(scenario(tmp_path, "all"))
    log2 = mean_nodes(scenario(tmp_path, "log2"))  # 9 candidates of 300 from a random start
    wide = mean_nodes(scenario(tmp_path, "{candidates: 300}"))  # every node: the same as all
    assert wide == pytest.approx(every, rel=1e-12)
    assert log2 > every * 1.1  # packing sees fewer nodes, so it opens more of them


def test_a_bad_sampling_is_one_line_naming_the_field(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "orchsim", str(scenario(tmp_path, "{fraction: 2}")), "--no-plots"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "scheduler.sampling" in lines[0] and "Traceback" not in done.stderr
