"""Dependencies in the simulator: DAG makespan against the critical path, and failing parents."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from orchsim import run
from orchsim.scenario import ScenarioError, parse_scenario

from .conftest import SCENARIOS


def test_with_ample_capacity_each_dag_takes_exactly_its_critical_path() -> None:
    results = run(SCENARIOS / "dag.yaml")
    for records, (_, row) in zip(results.records, results.summary.iterrows(), strict=True):
        dags = pd.DataFrame(records.dags)
        assert len(dags) == 10 and row.dags_completed == 10
        assert np.allclose(dags.makespan, dags.critical_path, rtol=0, atol=1e-9)
        assert abs(row.mean_dag_slack) < 1e-9
    # A child starts only once every parent has ended. Within a job, tasks are in entry order
    # (same submit time, stable sort): extract, the three transforms, load.
    tasks = results.tasks[results.tasks.policy == "bin_packing"]
    for _, job in tasks.groupby("dag"):
        extract, transforms, load = job.iloc[0], job.iloc[1:4], job.iloc[4]
        assert (transforms.start_time >= extract.end_time - 1e-9).all()
        assert load.start_time >= transforms.end_time.max() - 1e-9
        assert load.start_time == pytest.approx(transforms.end_time.max())  # and at once: room is ample


def etl(if_parent_fails: str = "fail", on: str = "success", recover: bool = False) -> Any:
    """One node; extract runs 0-100 but its node dies at 10 (detected at 25; max_attempts 1: failed)."""

    def task(name: str, after: list[str]) -> dict[str, Any]:
        return {
            "name": name,
            "kind": "burst",
            "at": 0,
            "count": 1,
            "resources": {"cpu": 1000},
            "duration": 100 if name == "extract" else 10,
            "after": after,
            "on": on if name == "transform" else "success",
            "if_parent_fails": if_parent_fails,
        }

    events = [{"at": 10, "kind": "node_failure", "count": 1}]
    if recover:
        events.append({"at": 50, "kind": "node_recovery", "count": 1})
    return parse_scenario(
        {
            "version": 1,
            "name": "etl",
            "policies": ["bin_packing"],
            "scheduler": {"max_attempts": 1},
            "cluster": {"nodes": [{"count": 1, "capacity": {"cpu": 4000, "memory": 1024}}]},
            "workload": [task("extract", []), task("transform", ["extract"]), task("load", ["transform"])],
            "events": events,
        }
    )


@pytest.mark.parametrize("verdict", ["fail", "skip"])
def test_a_failing_parent_fails_or_skips_every_descendant(verdict: str) -> None:
    results = run(etl(if_parent_fails=verdict))
    tasks = results.tasks
    expected = "failed" if verdict == "fail" else "skipped"
    assert tasks.status.tolist() == ["failed", expected, expected]
    assert np.isnan(tasks.start_time.iloc[1:]).all()  # they never ran
    assert "parent task 0 ended failed" in tasks.reason.iloc[1]
    assert f"parent task 1 ended {expected}" in tasks.reason.iloc[2]
    row = results.summary.iloc[0]
    assert row.dags_completed == 0
    assert row.tasks_skipped == (2 if verdict == "skip" else 0) and row.tasks_failed == (1 if verdict == "skip" else 3)


def test_on_completion_a_child_runs_after_a_failed_parent() -> None:
    # transform has on: completion: extract's failure (t=25) releases it; the node is back at 50.
    tasks = run(etl(on="completion", recover=True)).tasks
    assert tasks.status.tolist() == ["failed", "completed", "completed"]
    assert tasks.start_time.iloc[1] == pytest.approx(50.0)
    assert tasks.start_time.iloc[2] == pytest.approx(60.0)


def test_an_unschedulable_parent_fails_its_children() -> None:
    workload = [
        {"name": "big", "kind": "burst", "at": 0, "count": 1, "resources": {"cpu": 9000}, "duration": 1},
        {"after": ["big"], "kind": "burst", "at": 0, "count": 1, "resources": {"cpu": 100}, "duration": 1},
    ]
    s = parse_scenario(
        {
            "version": 1,
            "name": "u",
            "policies": ["spread"],
            "cluster": {"nodes": [{"count": 1, "capacity": {"cpu": 4000, "memory": 1024}}]},
            "workload": workload,
        }
    )
    assert run(s).tasks.status.tolist() == ["unschedulable", "failed"]


@pytest.mark.parametrize(
    ("after", "message"),
    [
        ({"a": ["b"], "b": ["a"]}, r"workload\.1\.after: a cycle of dependencies: b -> a -> b"),
        ({"a": ["nope"], "b": []}, r"workload\.0\.after: no workload entry is named 'nope'"),
        ({"a": ["a"], "b": []}, r"workload\.0\.after: a cycle of dependencies: a -> a"),
    ],
)
def test_bad_dependencies_are_one_line_naming_the_field(after: dict[str, list[str]], message: str) -> None:
    workload = [
        {"name": name, "after": parents, "kind": "burst", "at": 0, "count": 2, "resources": {"cpu": 1}, "duration": 1}
        for name, parents in after.items()
    ]
    data = {"version": 1, "name": "c", "cluster": {"nodes": [{"count": 1, "capacity": {"cpu": 4}}]}}
    with pytest.raises(ScenarioError, match=message) as err:
        parse_scenario({**data, "workload": workload}, source="dag.yaml")
    assert "\n" not in str(err.value) and str(err.value).startswith("dag.yaml: ")


def test_counts_must_match_along_an_edge() -> None:
    workload = [
        {"name": "a", "kind": "burst", "at": 0, "count": 2, "resources": {"cpu": 1}, "duration": 1},
        {"after": ["a"], "kind": "burst", "at": 0, "count": 3, "resources": {"cpu": 1}, "duration": 1},
    ]
    data = {"version": 1, "name": "c", "cluster": {"nodes": [{"count": 1, "capacity": {"cpu": 4}}]}}
    with pytest.raises(ScenarioError, match=r"workload\.1\.after: 'a' has 2 tasks, this entry 3"):
        parse_scenario({**data, "workload": workload})
