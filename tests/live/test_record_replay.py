"""Record a live cluster and replay the recording in the simulator: same placements, same waits.

A real master and three process workers on a real etcd run a mixed workload of short
``sleep`` tasks, submitted far enough apart that no scheduling pass holds two of them (no
timing races). ``orchlive record`` writes the recording; ``orchsim replay`` runs it under
the recorded policy; the check compares task -> node and the waits.
"""

from __future__ import annotations

import csv
import json
import time

import numpy as np
import pytest

from orchlive.record import record
from orchsim.recording_format import FORMAT
from orchsim.replay_cli import replay
from orchsim.traces import load_orchlive_tasks

pytestmark = pytest.mark.live

WORKERS = {"w1": (4000, 8192), "w2": (8000, 4096), "w3": (6000, 16384)}  # cpu millicores, memory MiB
# (cpu millicores, memory MiB, seconds of sleep): small and large, cpu-heavy and memory-heavy.
SHAPES = [(500, 256, 0.6), (1500, 1024, 1.2), (250, 2048, 0.4), (2000, 3000, 1.5), (750, 512, 0.8), (3000, 6000, 1.0)]
TASKS = 24
SPACING = 0.35  # seconds between submissions: each task has its own scheduling pass


def test_a_recorded_cluster_replays_with_its_placements_and_waits(cluster_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Single tasks, then a gang and a DAG whose root fails (one child skipped, one run on completion)."""
    policy = "bin_packing"  # spread: the killed-worker test below
    cluster = cluster_factory(policy=policy)
    cluster.start_master()
    for name, (cpu, memory) in WORKERS.items():
        cluster.start_worker(name, cpu=cpu, memory=memory)
    ids = []
    for i in range(TASKS):
        cpu, memory, seconds = SHAPES[i % len(SHAPES)]
        body = {"name": f"t{i}", "command": ["sleep", str(seconds)], "resources": {"cpu": cpu, "memory": memory}}
        ids.append(cluster.submit(body)["id"])
        cluster.wait_until(lambda: cluster.task(ids[-1])["state"] != "PENDING", timeout=15, what="placed")
        time.sleep(SPACING)
    for task_id in ids:  # the gang and the DAG on an idle cluster: their placements depend on nothing else
        cluster.wait_for_state(task_id, {"COMPLETED"}, timeout=30)
    gang = cluster.submit({**GANG, "resources": {"cpu": 3000, "memory": 1024}})
    cluster.wait_for_state(gang["id"], {"COMPLETED"}, timeout=30)
    made = cluster.http.post("/api/v1/dags", json={"name": "etl", "tasks": DAG})
    assert made.status_code == 201, made.text
    dag = {t["name"]: t["id"] for t in made.json()["tasks"]}
    for name, state in (("fails", "FAILED"), ("skipped", "SKIPPED"), ("cleanup", "COMPLETED")):
        cluster.wait_for_state(dag[name], {state}, timeout=30)

    out = tmp_path / "rec"
    done = record(cluster.url, out, quiet=1.0)
    assert done.tasks == TASKS + 2 + 3 and done.nodes == len(WORKERS) and done.policy == policy  # 2 replicas
    rows = {r["task_id"]: r for r in csv.DictReader((out / "tasks.csv").open())}
    assert list(rows)[:TASKS] == ids and all(rows[t]["state"] == "COMPLETED" for t in ids)
    assert all(
        float(r["submit_time"]) <= float(r["assigned_time"]) <= float(r["start_time"])
        for r in rows.values()
        if r["node"]
    )
    live = {t["id"]: t["node_id"] or "" for t in cluster.tasks()}
    assert {t: r["node"] for t, r in rows.items()} == live  # the recording says where each task ran
    replica = rows[f"{gang['id']}-1"]
    assert (replica["gang"], replica["replica"], replica["replicas"]) == (gang["id"], "1", "2")
    failed, skipped, cleanup = (rows[dag[n]] for n in ("fails", "skipped", "cleanup"))
    assert (failed["state"], failed["exit_code"], failed["attempt"]) == ("FAILED", "3", "1")
    assert (skipped["state"], skipped["after"], skipped["if_parent_fails"]) == ("SKIPPED", dag["fails"], "skip")
    assert (cleanup["state"], cleanup["on"]) == ("COMPLETED", "completion")
    nodes = {r["node_id"]: r for r in csv.DictReader((out / "nodes.csv").open())}
    assert {n: (float(r["cpu_milli"]), float(r["memory_mib"])) for n, r in nodes.items()} == WORKERS
    assert json.loads((out / "policy.json").read_text())["format"] == FORMAT

    results, check = replay(out, ["round_robin"])
    print("\n".join(check.lines()))
    print((out / "tasks.csv").read_text(), (out / "node_events.csv").read_text(), sep="\n")  # shown if it fails
    assert check.compared == TASKS + 1 + 2  # the gang (its replica 0), the failed root, the cleanup
    # Tasks whose live placement depended on timing (another task ended or arrived between
    # submission and placement; a slow pass on a loaded machine) are left out, and named.
    assert check.timing <= TASKS // 4, check.lines()  # most are compared: the check can fail
    assert check.agreement >= 0.95, check.lines()
    assert all(d.cause != "unexplained" for d in check.divergences), check.lines()
    # The replay's waits in the recorded mean's bare bootstrap interval: the replay waits the
    # master's decision latency, measured from this recording, on every pass.
    assert check.within and "the mean of" in check.latency, check.lines()
    # Every single task's live placement, decided again by the core on the cluster the master
    # saw (rebuilt in commit order): no race to leave out, and no unexplained difference.
    decisions = check.decisions
    assert decisions is not None and decisions.compared == TASKS + 2, check.lines()  # the DAG's root and cleanup
    assert decisions.unexplained == 0 and decisions.not_checked == {"gang replicas": 2}, check.lines()
    assert list(results.summary["policy"]) == [policy, "round_robin"]
    replayed = results.tasks[results.tasks["policy"] == policy].set_index("task_id")
    order = list(load_orchlive_tasks(out)[0].names)
    status = {order[i]: s for i, s in replayed["status"].items()}
    assert (status[gang["id"]], status[dag["fails"]], status[dag["skipped"]], status[dag["cleanup"]]) == (
        "completed",
        "failed",
        "skipped",
        "completed",
    )
    assert replayed.loc[order.index(gang["id"]), "replicas"] == 2
    replayed_nodes = {order[i]: n for i, n in replayed["node"].items()}
    assert replayed_nodes[gang["id"]] == rows[gang["id"]]["node"]  # replica 0, where the core put it live
    singles = replayed.loc[[order.index(t) for t in ids]]
    durations = np.array([float(rows[t]["end_time"]) - float(rows[t]["assigned_time"]) for t in ids])  # held
    np.testing.assert_allclose(np.sort(singles["end_time"] - singles["start_time"]), np.sort(durations), atol=1e-5)


# A gang of two replicas, then a DAG whose root fails: "skipped" (on success, if_parent_fails
# skip) never runs, "cleanup" (on completion) runs after it either way.
GANG = {"name": "gang", "command": ["sleep", "0.8"], "replicas": 2}
DAG = [
    {"name": "fails", "command": ["sh", "-c", "sleep 0.3; exit 3"], "resources": {"cpu": 100, "memory": 64}},
    {"name": "skipped", "command": ["true"], "resources": {"cpu": 100, "memory": 64}, "after": ["fails"]}
    | {"if_parent_fails": "skip"},
    {"name": "cleanup", "command": ["sleep", "0.3"], "resources": {"cpu": 500, "memory": 64}, "after": ["fails"]}
    | {"on": "completion"},
]


# The killed-worker test paces submissions on a fixed clock, every SLOT seconds, and its tasks
# sleep a whole number of slots and a third: with the worker's start and report (about 0.07 s
# on an idle machine) a task ends about 0.27 s after a submission and 0.33 s before the next.
# The master learns of an end after its report's etcd commit and its watch, later on a loaded
# machine, and an end racing a submission is a timing divergence (left out of the agreement):
# both sides keep well clear of the check's 0.1 s window.
SLOT = 0.6
# (cpu millicores, memory MiB, seconds): long enough that the killed worker has tasks running.
LONG_SHAPES = [(500, 256, 2.6), (1500, 1024, 3.8), (250, 2048, 2.0), (2000, 3000, 3.2), (750, 512, 4.4)]
LONG_TASKS = 30


def test_a_killed_worker_and_a_late_one_replay_with_their_placements_and_waits(cluster_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Acceptance (issue 15): w4 joins after the first tasks, w2 is killed (SIGKILL) mid-run."""
    cluster = cluster_factory(policy="spread")  # spread: every worker has tasks when w2 dies
    cluster.start_master()
    for name in ("w1", "w2", "w3"):
        cluster.start_worker(name, cpu=WORKERS[name][0], memory=WORKERS[name][1])
    ids: list[str] = []
    on_w2: list[str] = []
    began = time.monotonic()
    for i in range(LONG_TASKS):
        time.sleep(max(0.0, began + i * SLOT - time.monotonic()))
        cpu, memory, seconds = LONG_SHAPES[i % len(LONG_SHAPES)]
        body = {"name": f"t{i}", "command": ["sleep", str(seconds)], "resources": {"cpu": cpu, "memory": memory}}
        ids.append(cluster.submit(body)["id"])
        if i == 6:
            cluster.start_worker("w4", cpu=4000, memory=8192, wait=False)  # joins late, whenever it is up
        if i == 17:
            time.sleep(max(0.0, began + (i + 0.75) * SLOT - time.monotonic()))  # between ends and submissions
            on_w2 = [t["id"] for t in cluster.tasks() if t["node_id"] == "w2" and t["state"] in ("ASSIGNED", "RUNNING")]
            cluster.kill_worker("w2")
    cluster.wait_until(lambda: cluster.node_state("w2") == "NOT_READY", timeout=20, what="w2 lost")
    for task_id in ids:
        cluster.wait_for_state(task_id, {"COMPLETED"}, timeout=60)

    out = tmp_path / "rec"
    record(cluster.url, out, quiet=1.0, lease_ttl=cluster.lease_ttl)
    nodes = {r["node_id"]: r for r in csv.DictReader((out / "nodes.csv").open())}
    assert nodes["w2"]["lost"] and not nodes["w1"]["lost"] and float(nodes["w4"]["joined"]) > 0
    rows = list(csv.DictReader((out / "tasks.csv").open()))
    rescheduled = {r["task_id"] for r in rows if r["state"] == "RESCHEDULED"}
    # What ran on w2 ran again elsewhere (unless it ended in the instant between the look and the kill).
    ended_on_w2 = {r["task_id"] for r in rows if r["node"] == "w2" and r["state"] == "COMPLETED"}
    assert rescheduled and set(on_w2) - ended_on_w2 <= rescheduled

    results, check = replay(out, ["bin_packing", "round_robin", "fgd"])
    print("\n".join(check.lines()))
    print((out / "tasks.csv").read_text(), (out / "node_events.csv").read_text(), sep="\n")  # shown if it fails
    assert check.compared == len(ids) and check.timing <= len(ids) // 3, check.lines()
    assert check.agreement >= 0.95, check.lines()
    assert all(d.cause != "unexplained" for d in check.divergences), check.lines()
    low, high = check.interval  # the bare interval: the replay models the master's latency
    decisions = check.decisions  # every live placement, the rescheduled ones too, decided again
    assert decisions is not None and decisions.compared >= len(ids) + len(rescheduled), check.lines()
    assert decisions.unexplained == 0 and not decisions.not_checked, check.lines()
    assert low <= check.replayed_mean_wait <= high and check.within, check.lines()
    # The replay lived through the same history: w2 declared lost when the live master did
    # (died one lease and the master's grace before), w4 given nothing before it joined.
    failure = results.failures[results.failures["policy"] == "spread"].iloc[0]
    assert failure.node == "w2"
    np.testing.assert_allclose(failure.detected_at, float(nodes["w2"]["lost"]), atol=1e-5)
    grace = json.loads((out / "policy.json").read_text())["lost_grace"]  # the master waits it past the lease
    np.testing.assert_allclose(failure.failed_at, float(nodes["w2"]["lost"]) - cluster.lease_ttl - grace, atol=1e-5)
    mine = results.tasks[results.tasks["policy"] == "spread"]
    assert (mine[mine["node"] == "w4"]["start_time"] >= float(nodes["w4"]["joined"]) - 1e-9).all()
    assert (mine["status"] == "completed").all()


def test_record_without_a_master_is_one_line_and_writes_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from orchlive.etcd_server import free_port

    out = tmp_path / "rec"
    done = subprocess.run(
        [sys.executable, "-m", "orchlive", "record", "--master", f"http://127.0.0.1:{free_port()}", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "cannot reach the master" in done.stderr
    assert not out.exists()
