from __future__ import annotations

from pathlib import Path

import pytest

from orchsim.scenario import Scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"

# Four nodes at half load; one task in five takes a whole node, so where the small ones go matters.
# The sweep and report tests compare bin_packing with spread on it, paired by seed.
PAIRED_YAML = """\
version: 1
name: paired
seed: 10
policies: [bin_packing, spread]
cluster:
  nodes:
    - {count: 4, capacity: {cpu: 4000, memory: 8192}}
workload:
  - kind: poisson
    rate: 0.5
    count: 200
    resources: {cpu: {dist: choice, values: [1000, 4000], weights: [4, 1]}, memory: 256}
    duration: {dist: exponential, mean: 10}
"""


def mmc_scenario(
    *, servers: int, rate: float, mean_service: float, count: int, seed: int, policies: list[str]
) -> Scenario:
    """M/M/c as a cluster: c identical nodes, each task takes a whole node."""
    return parse_scenario(
        {
            "version": 1,
            "name": "mmc",
            "seed": seed,
            "policies": policies,
            "cluster": {"nodes": [{"count": servers, "capacity": {"cpu": 1000, "memory": 1024}}]},
            "workload": [
                {
                    "kind": "poisson",
                    "rate": rate,
                    "count": count,
                    "resources": {"cpu": 1000, "memory": 1024},
                    "duration": {"dist": "exponential", "mean": mean_service},
                }
            ],
        }
    )


@pytest.fixture
def scenarios_dir() -> Path:
    return SCENARIOS
