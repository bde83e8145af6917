"""Dependencies in the live cluster: DAGs submitted at once, held, failed or skipped as in the simulator.

The shipped ``scenarios/dag.yaml`` (ETL jobs: extract -> three transforms -> load) runs in
a bounded form (three jobs, durations / 30, two process workers, every job at 0) both in
the simulator and live, and both give the same outcome: every task completed, every task
started after its parents ended, every DAG completed. To keep CI short, the tests share one
cluster (``two_nodes``: two workers of 4000 millicores, 8192 MiB), and each uses its own names.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from orchlive.etcd_server import EtcdServer
from orchsim import run
from orchsim.scenario import parse_scenario
from orchsim.scheduling.dependencies import critical_path
from orchsim.workload import build_workload

from .harness import LiveCluster

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[2]
JOBS = 3
SCALE = 1 / 30  # the scenario's durations (20 to 90 s) become sleeps of about 1 to 3 s


def bounded_dag_scenario() -> Any:
    """``scenarios/dag.yaml`` with three jobs, all submitted at 0, durations scaled, on the live test's two nodes."""
    raw = yaml.safe_load((ROOT / "scenarios" / "dag.yaml").read_text())
    raw["policies"] = ["bin_packing"]
    raw["cluster"]["nodes"] = [{"count": 2, "capacity": {"cpu": 4000, "memory": 8192}}]
    for entry in raw["workload"]:
        entry.update(count=JOBS, over=0)
        entry["duration"] = {k: v * SCALE if k in ("low", "high") else v for k, v in entry["duration"].items()}
    return parse_scenario(raw)


@pytest.fixture(scope="module")
def two_nodes(etcd: EtcdServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    cluster = LiveCluster(etcd, Path(tmp_path_factory.mktemp("dags")))
    cluster.start_master()
    for name in ("w1", "w2"):
        cluster.start_worker(name, cpu=4000, memory=8192)
    yield cluster
    cluster.stop()


def _time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_the_dag_scenario_runs_live_as_in_the_simulator(two_nodes: LiveCluster) -> None:
    scenario = bounded_dag_scenario()
    w = build_workload(scenario, ("cpu", "memory"))
    deps = w.dependencies
    assert deps is not None
    entries = [entry.name for entry in scenario.workload]
    sim = run(scenario).tasks
    simulated = {(int(row.dag), entries[w.source[row.task_id]]): row.status for row in sim.itertuples()}
    assert len(simulated) == 5 * JOBS and set(simulated.values()) == {"completed"}

    cluster = two_nodes
    dags = {}
    for dag in range(JOBS):
        members = np.flatnonzero(deps.dag == dag).tolist()
        body = [
            {
                "name": entries[w.source[t]],
                "command": ["sleep", f"{w.duration[t]:.3f}"],
                "resources": {"cpu": int(w.demand[t, 0]), "memory": int(w.demand[t, 1])},
                "after": [entries[w.source[p]] for p in deps.parents[t]],
            }
            for t in members
        ]
        made = cluster.http.post("/api/v1/dags", json={"name": f"etl-{dag}", "tasks": body})
        assert made.status_code == 201, made.text
        dags[dag] = made.json()["id"]
    cluster.wait_until(
        lambda: all(cluster.http.get(f"/api/v1/dags/{d}").json()["state"] == "COMPLETED" for d in dags.values()),
        timeout=90,
        what="every DAG completed",
    )
    live = {}
    for dag, dag_id in dags.items():
        tasks = cluster.http.get(f"/api/v1/dags/{dag_id}").json()["tasks"]
        by_id = {t["id"]: t for t in tasks}
        for task in tasks:
            live[(dag, task["name"])] = task["state"].lower()
            for parent in task["after"]:  # held until its parents ended
                assert _time(task["start_time"]) >= _time(by_id[parent]["end_time"]), (task["name"], parent)
        members = np.flatnonzero(deps.dag == dag)
        local = {int(t): i for i, t in enumerate(members)}
        path = critical_path(w.duration[members], [[local[p] for p in deps.parents[t]] for t in members.tolist()])
        makespan = max(_time(t["end_time"]) for t in tasks) - min(_time(t["creation_time"]) for t in tasks)
        assert makespan >= path - 1e-3
    assert live == simulated


def test_a_failing_parent_fails_or_skips_its_descendants(two_nodes: LiveCluster) -> None:
    """Worked by hand from the rules (the simulator's):

    a fails -> b (fail) FAILED -> c (after b, skip) SKIPPED
            -> d (skip) SKIPPED -> f (after d, fail) FAILED
            -> e (on: completion) runs and COMPLETED
    """
    cluster = two_nodes
    body = [
        {"name": "a", "command": ["false"]},
        {"name": "b", "command": ["true"], "after": ["a"]},
        {"name": "c", "command": ["true"], "after": ["b"], "if_parent_fails": "skip"},
        {"name": "d", "command": ["true"], "after": ["a"], "if_parent_fails": "skip"},
        {"name": "e", "command": ["true"], "after": ["a"], "on": "completion"},
        {"name": "f", "command": ["true"], "after": ["d"]},
    ]
    made = cluster.http.post("/api/v1/dags", json={"tasks": body})
    assert made.status_code == 201, made.text
    dag = made.json()["id"]
    cluster.wait_until(
        lambda: (
            cluster.http.get(f"/api/v1/dags/{dag}").json()["counts"].get("PENDING", 0) == 0
            and all(
                t["state"] not in ("ASSIGNED", "RUNNING")
                for t in cluster.http.get(f"/api/v1/dags/{dag}").json()["tasks"]
            )
        ),
        timeout=30,
        what="the DAG settled",
    )
    found = cluster.http.get(f"/api/v1/dags/{dag}").json()
    states = {t["name"]: t["state"] for t in found["tasks"]}
    assert states == {"a": "FAILED", "b": "FAILED", "c": "SKIPPED", "d": "SKIPPED", "e": "COMPLETED", "f": "FAILED"}
    assert found["state"] == "FAILED"
    reasons = {t["name"]: t["reason"] for t in found["tasks"]}
    ids = {t["name"]: t["id"] for t in found["tasks"]}
    assert reasons["c"] == f"skipped: parent task {ids['b']} ended FAILED", reasons
    assert reasons["f"] == f"failed: parent task {ids['d']} ended SKIPPED", reasons


def test_cycles_and_unknown_parents_are_refused_with_one_message(two_nodes: LiveCluster) -> None:
    cluster = two_nodes
    before = {t["id"] for t in cluster.tasks()}
    cycle = [
        {"name": "a", "command": ["true"], "after": ["c"]},
        {"name": "b", "command": ["true"], "after": ["a"]},
        {"name": "c", "command": ["true"], "after": ["b"]},
    ]
    response = cluster.http.post("/api/v1/dags", json={"tasks": cycle})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    # The core's message (``dependencies.CycleError``, as scenario files get it), parent -> child, from b (index 1).
    assert error["msg"] == "a cycle of dependencies: b -> c -> a -> b", error
    assert error["loc"] == ["body", "tasks", 1, "after"], error
    self_loop = [{"name": "a", "command": ["true"], "after": ["a"]}]
    assert "a cycle of dependencies: a -> a" in cluster.http.post("/api/v1/dags", json={"tasks": self_loop}).text
    unknown = cluster.http.post("/api/v1/tasks", json={"name": "x", "command": ["true"], "after": ["nope"]})
    assert unknown.status_code == 422
    assert unknown.json()["detail"] == [
        {
            "type": "value_error",
            "loc": ["body", "after", 0],
            "msg": "unknown parent 'nope': no task has this id or name",
        }
    ]
    twins = {cluster.submit({"name": "twin", "command": ["true"]})["id"] for _ in range(2)}
    ambiguous = cluster.http.post("/api/v1/tasks", json={"name": "x", "command": ["true"], "after": ["twin"]})
    assert ambiguous.status_code == 422 and "'twin' names 2 tasks; give its id" in ambiguous.text
    twice = [{"name": "twice", "command": ["true"]}, {"name": "twice", "command": ["true"]}]
    assert "'twice' names two tasks of this DAG" in cluster.http.post("/api/v1/dags", json={"tasks": twice}).text
    assert {t["id"] for t in cluster.tasks()} == before | twins  # nothing else was created


def test_a_dag_grown_task_by_task_shows_its_state_and_delete_cascades(two_nodes: LiveCluster, capsys: Any) -> None:
    """Tasks submitted alone with ``after`` join their parent's DAG; ``DELETE`` of the root takes them all."""
    from orchlive.__main__ import main

    cluster = two_nodes
    root = cluster.submit({"name": "ingest", "command": ["sleep", "600"]})
    child = cluster.submit({"name": "clean", "command": ["true"], "after": ["ingest"]})
    capsys.readouterr()
    argv = ["--master", cluster.url, "submit", "--name", "publish", "--after", child["id"], "--if-parent-fails", "skip"]
    assert main([*argv, "--", "true"]) == 0
    load = cluster.task(capsys.readouterr().out.strip())
    assert (child["dag"], load["dag"], load["after"], load["if_parent_fails"]) == (
        root["id"],
        root["id"],
        [child["id"]],
        "skip",
    )
    cluster.wait_for_state(root["id"], {"RUNNING"}, timeout=20)
    cluster.wait_until(
        lambda: (cluster.task(child["id"])["reason"] or "").startswith("waiting for parent task(s)"),
        timeout=20,
        what="the child's reason",
    )
    assert cluster.task(child["id"])["reason"] == f"waiting for parent task(s): {root['id']} (RUNNING)"
    dag = cluster.http.get(f"/api/v1/dags/{root['id']}").json()
    assert dag["state"] == "RUNNING" and dag["counts"] == {"RUNNING": 1, "PENDING": 2}, dag
    assert main(["--master", cluster.url, "dag", root["id"]]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].split()[:2] == [f"dag/{root['id']}", "RUNNING"]
    assert [line.split()[1:3] for line in shown[2:]] == [
        ["ingest", "RUNNING"],
        ["clean", "PENDING"],
        ["publish", "PENDING"],
    ]
    assert cluster.http.delete(f"/api/v1/tasks/{root['id']}").status_code == 204
    assert cluster.http.get(f"/api/v1/dags/{root['id']}").status_code == 404
    assert all(cluster.http.get(f"/api/v1/tasks/{t}").status_code == 404 for t in (child["id"], load["id"]))
    cluster.wait_until(lambda: not any(n["tasks"] for n in cluster.nodes().values()), timeout=10, what="nodes empty")
