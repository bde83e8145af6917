"""Scenario files and flags read ``on: completion`` as a key, as documented; values keep YAML 1.1's booleans.

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


def test_boolean_words_are_text_as_keys_and_booleans_as_values() -> None:
    assert load_yaml("{on: 1, off: no, yes: yes, no: n, t: true, f: False}") == {
        "on": 1,
        "off": False,
        "yes": True,
        "no": "n",
        "t": True,
        "f": False,
    }
    # A policy parameter passes through untyped: quantize=no must still be false (a review of the first fix).
    assert parse_params_text("{on: x, quantize: no}", what="--policy-params") == {"on": "x", "quantize": False}
