"""Kubernetes quantities in scenarios: ``memory: 256Mi``, ``cpu: 500m``, converted to the project's units.

Issue 18: ``memory: "256Mi"`` gave "Input should be a valid dictionary or object". A
number keeps its meaning (cpu in millicores, memory in MiB, gpu in milli-GPU); a quantity
is converted; anything else is one line naming the field.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from orchsim import run
from orchsim.scenario import ScenarioError, parse_scenario
from orchsim.schema_base import resource_amount

from .conftest import ROOT

WITH_UNITS = """\
version: 1
name: units
seed: 3
policies: [bin_packing, spread]
cluster:
  nodes:
    - {count: 3, capacity: {cpu: 4000m, memory: 8Gi, gpu: 2000}}
workload:
  - kind: poisson
    rate: 1.0
    count: 40
    resources: {cpu: 500m, memory: "256Mi", gpu: 500m}
    duration: {dist: exponential, mean: 5}
  - kind: burst
    at: 10
    count: 20
    resources: {cpu: {dist: choice, values: [250m, 1000m]}, memory: {dist: uniform, low: 128Mi, high: 1Gi}}
    duration: 3
events:
  - {at: 20, kind: scale_out, count: 1, capacity: {cpu: 2000m, memory: 4Gi}}
autoscaler: {capacity: {cpu: 8000m, memory: 16Gi}, max_nodes: 6}
"""
# The same scenario in plain numbers: cpu in millicores, memory in MiB, gpu in milli-GPU.
PLAIN = (
    WITH_UNITS.replace("4000m", "4000")
    .replace("8Gi", "8192")
    .replace('500m, memory: "256Mi", gpu: 500m', "500, memory: 256, gpu: 500")
    .replace("[250m, 1000m]", "[250, 1000]")
    .replace("low: 128Mi, high: 1Gi", "low: 128, high: 1024")
    .replace("2000m, memory: 4Gi", "2000, memory: 4096")
    .replace("8000m, memory: 16Gi", "8000, memory: 16384")
)


def parse(text: str) -> Any:
    return parse_scenario(yaml.safe_load(text), source="s.yaml")


def test_plain_numbers_are_unchanged_by_the_conversion() -> None:
    assert not any(unit in PLAIN for unit in ("0m", "Gi", "Mi"))
    assert parse(WITH_UNITS).model_dump() == parse(PLAIN).model_dump()


def test_every_resource_field_converts() -> None:
    s = parse(WITH_UNITS)
    assert s.cluster.nodes[0].capacity == {"cpu": 4000, "memory": 8192, "gpu": 2000}
    requests = s.workload[0].resources
    assert (requests["cpu"].value, requests["memory"].value, requests["gpu"].value) == (500, 256, 500)
    burst = s.workload[1].resources
    assert burst["cpu"].values == [250, 1000]
    assert (burst["memory"].low, burst["memory"].high) == (128, 1024)
    assert s.events[0].capacity == {"cpu": 2000, "memory": 4096}
    assert s.autoscaler.capacity == {"cpu": 8000, "memory": 16384}


def test_a_run_with_units_equals_the_run_in_numbers() -> None:
    with_units, plain = run(parse(WITH_UNITS)), run(parse(PLAIN))
    pd.testing.assert_frame_equal(
        with_units.summary.drop(columns="wall_seconds"), plain.summary.drop(columns="wall_seconds")
    )
    poisson = with_units.tasks[with_units.tasks.gpu > 0]  # the only tasks asking for a GPU
    assert len(poisson) == 2 * 40 and set(poisson.memory) == {256.0} and set(poisson.gpu) == {500.0}


@pytest.mark.parametrize(
    ("resource", "value", "amount"),
    [
        ("cpu", "500m", 500),
        ("cpu", "2500m", 2500),
        ("cpu", 500, 500),
        ("cpu", "750", 750),  # a number as text: the resource's unit, as a number
        ("memory", "256Mi", 256),
        ("memory", "1Gi", 1024),
        ("memory", "512Ki", 0.5),
        ("memory", "1Ti", 1024 * 1024),
        ("memory", "1G", 1e9 / 2**20),
        ("memory", "1M", 1e6 / 2**20),
        ("memory", "2K", 2e3 / 2**20),
        ("memory", " 1.5Gi ", 1536),
        ("memory", 256, 256),
        ("gpu", "500m", 500),
        ("gpu", 1000, 1000),
        ("disk", 40, 40),
    ],
)
def test_quantities_in_the_project_units(resource: str, value: object, amount: float) -> None:
    assert resource_amount(resource, value) == pytest.approx(amount, rel=1e-12)


BAD = [
    ("memory: 256MB", "workload.0.resources.memory: '256MB' has an unknown unit 'MB' (256Mi?)"),
    ("memory: lots", "workload.0.resources.memory: 'lots' is neither a number nor a Kubernetes quantity"),
    ("memory: 500m", "workload.0.resources.memory: '500m' is 500 thousandths of a byte (m is milli): write 500Mi"),
    ("cpu: 0.5", "workload.0.resources.cpu: 0.5 would be 0.5 millicores (numbers are millicores); write 500 or 500m"),
    ("cpu: 1Gi", "workload.0.resources.cpu: '1Gi': Gi is a byte size, for memory; cpu takes millicores"),
    ("cpu: 500mm", "workload.0.resources.cpu: '500mm' has an unknown unit 'mm': cpu takes millicores (500 or 500m)"),
    ("disk: 1Gi", "workload.0.resources.disk: '1Gi': units are known for cpu, memory and gpu only"),
    ("memory: {dist: uniform, low: 1Gi, high: 2GB}", "workload.0.resources.memory.high: '2GB' has an unknown unit"),
    ("memory: [1, 2]", "workload.0.resources.memory: [1, 2]: expected a number or a distribution"),
]


@pytest.mark.parametrize(("request_text", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_amount_is_one_line_naming_the_field(request_text: str, message: str) -> None:
    text = WITH_UNITS.replace('{cpu: 500m, memory: "256Mi", gpu: 500m}', "{cpu: 500, " + request_text + "}")
    text = text.replace("{cpu: 500, cpu:", "{cpu:")  # the cpu cases replace the default cpu
    with pytest.raises(ScenarioError) as caught:
        parse(text)
    assert str(caught.value).startswith("s.yaml: " + message), str(caught.value)
    assert "\n" not in str(caught.value) and "dictionary" not in str(caught.value)


def test_a_bad_capacity_names_the_node_group() -> None:
    with pytest.raises(ScenarioError, match=r"cluster\.nodes\.0\.capacity\.memory: '8GB' has an unknown unit"):
        parse(WITH_UNITS.replace("memory: 8Gi", "memory: 8GB"))


def test_swf_processor_sizes_take_quantities() -> None:
    from orchsim.scenario_workload import SwfTrace

    trace = SwfTrace(kind="swf", path="x.swf", cpu_per_processor="500m", memory_per_processor="1Gi")
    assert (trace.cpu_per_processor, trace.memory_per_processor) == (500, 1024)


def test_the_command_line_runs_a_scenario_in_kubernetes_units(tmp_path: Path) -> None:
    (tmp_path / "units.yaml").write_text(WITH_UNITS)
    (tmp_path / "bad.yaml").write_text(WITH_UNITS.replace('"256Mi"', '"256MB"'))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def orchsim(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "orchsim", *args, "--quiet", "--no-plots"]
        return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120, env=env)

    good = orchsim("units.yaml", "--out", "out")
    assert good.returncode == 0, good.stderr
    tasks = pd.read_csv(tmp_path / "out" / "tasks.csv")
    poisson = tasks[tasks.gpu > 0]
    assert len(poisson) == 2 * 40 and set(poisson.memory) == {256.0} and set(poisson.cpu) == {500.0}
    bad = orchsim("bad.yaml")
    assert bad.returncode == 2
    assert (
        bad.stderr == "error: bad.yaml: workload.0.resources.memory: '256MB' has an unknown unit 'MB' (256Mi?): "
        "use m, Ki, Mi, Gi, Ti (or k, M, G, T)\n"
    )


def test_the_readme_example_parses_as_it_says() -> None:
    readme = (ROOT / "README.md").read_text()
    after = readme[readme.index("Suffixes: `m`") :]
    block = after[after.index("```yaml\n") + len("```yaml\n") : after.index("```\n", after.index("```yaml"))]
    s = parse_scenario({"version": 1, "name": "readme", **yaml.safe_load(block)}, source="README.md")
    assert s.cluster.nodes[0].capacity == {"cpu": 16000, "memory": 65536, "gpu": 4000}
    memory = s.workload[0].resources["memory"]
    assert (s.workload[0].resources["cpu"].value, memory.low, memory.high) == (500, 128, 2048)
