"""Scenario files and flags are read with YAML 1.2's booleans: ``on: completion`` is a key, as documented.

YAML 1.1 (PyYAML's default) reads ``on``, ``off``, ``yes``, ``no`` as booleans: a DAG entry's
``on: completion``, written as the README writes it, was refused ("Keys should be strings").
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from orchsim.policy_params import parse_params_text
from orchsim.scenario import load_scenario
from orchsim.yaml_text import load_yaml

SCENARIO = """
version: 1
name: on_key
seed: 1
policies: [first_fit]
scheduler: {queue: fifo, preemption: yes}
cluster:
  nodes: [{count: 1, capacity: {cpu: 1000, memory: 1024}}]
workload:
  - {name: a, kind: burst, at: 0, count: 1, resources: {cpu: 100, memory: 64}, duration: 1}
  - name: b
    after: [a]
    on: completion
    kind: burst
    at: 0
    count: 1
    resources: {cpu: 100, memory: 64}
    duration: 1
"""


def test_on_completion_is_read_as_written(tmp_path: Path) -> None:
    path = tmp_path / "on.yaml"
    path.write_text(SCENARIO)
    scenario = load_scenario(path)
    assert scenario.workload[1].on == "completion"
    assert scenario.scheduler.preemption is True  # the schema still reads yes as true
    done = subprocess.run(
        [sys.executable, "-m", "orchsim", str(path), "--no-plots", "--quiet", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_only_true_and_false_are_booleans() -> None:
    assert load_yaml("{on: 1, off: 2, yes: 3, no: n, t: true, f: False}") == {
        "on": 1,
        "off": 2,
        "yes": 3,
        "no": "n",
        "t": True,
        "f": False,
    }
    assert parse_params_text("{on: x}", what="--policy-params") == {"on": "x"}
