"""The Go orchestrator's README example, verbatim, on a process-runtime worker."""

from __future__ import annotations

import subprocess

import pytest

pytestmark = pytest.mark.live

# From the Go orchestrator's README (the request body is used byte for byte).
README_BODY = (
    '{"name":"test-task","image":"alpine","command":["echo","hello world"],"resources":{"cpu":500,"memory":256}}'
)


def test_readme_example_runs_to_completed(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("w1", cpu=4000, memory=8192)
    cluster.start_worker("w2", cpu=2000, memory=4096)
    curl = subprocess.run(
        [
            "curl",
            "-s",
            "-X",
            "POST",
            f"{cluster.url}/api/v1/tasks",
            "-H",
            "Content-Type: application/json",
            "-d",
            README_BODY,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    import json

    created = json.loads(curl.stdout)
    assert created["state"] == "PENDING" and created["name"] == "test-task"
    done = cluster.wait_for_state(created["id"], {"COMPLETED", "FAILED"})
    assert done["state"] == "COMPLETED", done
    assert done["exit_code"] == 0
    assert done["node_id"] in {"w1", "w2"}
    assert done["start_time"] and done["end_time"]
    logs = cluster.http.get(f"/api/v1/tasks/{created['id']}/logs")
    assert logs.status_code == 200 and "hello world" in logs.text


def test_nodes_list_every_worker_with_correct_allocations(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(policy="spread")
    cluster.start_master()
    cluster.start_worker("w1", cpu=4000, memory=8192, labels="zone=a")
    cluster.start_worker("w2", cpu=4000, memory=8192)
    sleeper = {
        "name": "sleeper",
        "image": "alpine",
        "command": ["sleep", "30"],
        "resources": {"cpu": 1500, "memory": 1024},
    }
    a = cluster.submit(sleeper)
    b = cluster.submit({**sleeper, "resources": {"cpu": 500, "memory": 256}})
    a = cluster.wait_for_state(a["id"], {"RUNNING"})
    b = cluster.wait_for_state(b["id"], {"RUNNING"})
    nodes = cluster.nodes()
    assert set(nodes) == {"w1", "w2"}
    assert nodes["w1"]["labels"] == {"zone": "a"}
    # spread: the first task goes to w1 (both empty, lowest index), the second to w2 (fewer tasks).
    assert a["node_id"] == "w1" and b["node_id"] == "w2"
    # Every resource the node offers, and no other (these workers declared no gpu).
    assert nodes["w1"]["allocated"] == {"cpu": 1500, "memory": 1024}
    assert nodes["w2"]["allocated"] == {"cpu": 500, "memory": 256}
    assert nodes["w2"]["free"] == {"cpu": 3500, "memory": 7936}
    assert nodes["w1"]["tasks"] == [a["id"]] and nodes["w2"]["tasks"] == [b["id"]]
    assert all(n["state"] == "READY" and n["last_heartbeat"] for n in nodes.values())
    # Deleting a running task stops it and frees its resources.
    assert cluster.http.delete(f"/api/v1/tasks/{a['id']}").status_code == 204
    assert cluster.http.get(f"/api/v1/tasks/{a['id']}").status_code == 404
    cluster.wait_until(lambda: cluster.nodes()["w1"]["allocated"]["cpu"] == 0, timeout=10, what="w1 freed")


def test_a_task_that_fits_nowhere_stays_pending_with_the_reason(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    for name in ("w1", "w2", "w3"):
        cluster.start_worker(name, cpu=2000, memory=1024)
    big = cluster.submit(
        {"name": "big", "image": "alpine", "command": ["true"], "resources": {"cpu": 500, "memory": 4096}}
    )
    cluster.wait_until(lambda: cluster.task(big["id"])["reason"] is not None, timeout=10, what="a reason")
    task = cluster.task(big["id"])
    assert task["state"] == "PENDING"
    # No node has 4096 MiB: the shared pass says it never fits (on the nodes there are).
    assert task["reason"] == "never fits: 0/3 nodes could hold it even when empty: 3 insufficient memory"


def test_bad_input_gets_422_naming_the_field_and_writes_nothing(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    cases = [
        ({"image": "alpine"}, "name"),
        ({"name": "x", "image": ""}, "image"),  # optional (process tasks need none), never empty
        ({"name": "x", "resources": {"gpu": 1500}}, "resources"),  # half a GPU or whole GPUs, not 1.5
        ({"name": "x", "image": "alpine", "resources": {"cpu": -1}}, "cpu"),
        ({"name": "x", "image": "alpine", "resources": {"memory": 1.5}}, "memory"),
    ]
    for body, field in cases:
        response = cluster.http.post("/api/v1/tasks", json=body)
        assert response.status_code == 422, body
        assert any(field in [str(p) for p in err["loc"]] for err in response.json()["detail"]), response.text
    assert cluster.tasks() == []
    assert cluster.http.get("/api/v1/tasks/nope").status_code == 404
    assert cluster.http.get("/api/v1/nodes").json() == []


def test_every_subscriber_receives_every_event_and_can_resume(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("w1")
    task = cluster.submit({"name": "e", "image": "alpine", "command": ["true"], "resources": {"cpu": 100}})
    cluster.wait_for_state(task["id"], {"COMPLETED"})
    first = cluster.events(0)
    second = cluster.events(0)
    assert [e["id"] for e in first] == [e["id"] for e in second]
    types = [e["type"] for e in first if e["object"].get("id") == task["id"]]
    assert types == ["task.created", "task.assigned", "task.running", "task.completed"]
    assert "node.joined" in {e["type"] for e in first}
    ids = [e["id"] for e in first]
    assert ids == sorted(ids)
    # Resume after the second event: exactly the rest.
    resumed = cluster.events(ids[1])
    assert [e["id"] for e in resumed] == ids[2:]


def test_health_and_metrics(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("w1")
    task = cluster.submit({"name": "m", "image": "alpine", "command": ["true"], "resources": {"cpu": 100}})
    cluster.wait_for_state(task["id"], {"COMPLETED"})
    assert cluster.http.get("/health").json()["status"] == "ok"
    text = cluster.http.get("/metrics").text
    assert 'orch_tasks{state="COMPLETED"} 1' in text
    assert 'orch_nodes{state="READY"} 1' in text
    assert "orch_scheduling_seconds_count 1" in text
