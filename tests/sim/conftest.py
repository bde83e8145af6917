from __future__ import annotations

from pathlib import Path

import pytest

from orchsim.scenario import Scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"


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
