"""A run deciding by state classes (``orchsim/scheduling/state_classes.py``) equals a plain run, task by task."""

from __future__ import annotations

import numpy as np
import pytest

from orchsim import run
from orchsim.scenario import parse_scenario
from orchsim.scheduling import state_classes


def wide(policy: str, failures: bool) -> object:
    """300 nodes of two kinds (past the memo's size), tasks of three shapes, and optionally node failures."""
    events = [{"at": 5, "kind": "node_failure", "count": 3}, {"at": 9, "kind": "node_recovery", "count": 3}]
    return parse_scenario(
        {
            "version": 1,
            "name": "classes",
            "seed": 5,
            "policies": [policy],
            "cluster": {
                "nodes": [
                    {"count": 200, "capacity": {"cpu": 1000, "memory": 1000}},
                    {"count": 100, "capacity": {"cpu": 2000, "memory": 1000}},
                ]
            },
            "events": events if failures else [],
            "workload": [
                {
                    "kind": "poisson",
                    "rate": 200.0,
                    "count": 3000,
                    "resources": {"cpu": {"dist": "choice", "values": [500, 1000, 2000]}, "memory": 500},
                    "duration": {"dist": "exponential", "mean": 1.5},
                }
            ],
        }
    )


@pytest.mark.parametrize(("policy", "failures"), [("bin_packing", False), ("spread", True), ("best_fit", False)])
def test_a_run_by_state_classes_equals_a_plain_run(
    policy: str, failures: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    used = []
    keep = state_classes.keep_state_classes

    def spy(nodes, prepared, shapes=None):  # type: ignore[no-untyped-def]
        used.append(keep(nodes, prepared, shapes))
        return used[-1]

    monkeypatch.setattr(state_classes, "keep_state_classes", spy)
    classed = run(wide(policy, failures)).tasks
    assert used and used[0] is not None and not used[0].off  # the run did decide by classes to its end
    monkeypatch.setattr(state_classes, "keep_state_classes", lambda nodes, prepared, shapes=None: None)
    plain = run(wide(policy, failures)).tasks
    for column in ("start_time", "end_time", "node", "wait"):
        np.testing.assert_array_equal(classed[column].to_numpy(), plain[column].to_numpy())
