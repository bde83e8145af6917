"""A run with the decision memo (``orchsim/scheduling/memo.py``) equals a run without it, task by task."""

from __future__ import annotations

import numpy as np
import pytest

from orchsim import run
from orchsim.scenario import parse_scenario
from orchsim.scheduling.memo import DecisionMemo


def mmc(policy: str) -> object:
    return parse_scenario(
        {
            "version": 1,
            "name": "memo",
            "seed": 3,
            "policies": [policy],
            "cluster": {"nodes": [{"count": 4, "capacity": {"cpu": 1000, "memory": 1000}}]},
            "workload": [
                {
                    "kind": "poisson",
                    "rate": 5.0,
                    "count": 800,
                    "resources": {"cpu": {"dist": "choice", "values": [500, 1000]}, "memory": 400},
                    "duration": {"dist": "exponential", "mean": 1.0},
                }
            ],
        }
    )


@pytest.mark.parametrize("policy", ["bin_packing", "spread", "least_allocated"])
def test_a_run_with_the_memo_equals_a_run_without(policy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with_memo = run(mmc(policy)).tasks
    monkeypatch.setattr(DecisionMemo, "key", lambda self, nodes, req: None)
    without = run(mmc(policy)).tasks
    for column in ("start_time", "end_time", "node", "wait"):
        np.testing.assert_array_equal(with_memo[column].to_numpy(), without[column].to_numpy())
