"""Secrets (issue 13, item 7): env values never leave etcd through the API or the events,
process tasks see only their own environment, and ``--protect-system`` closes the probes too."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest

from orchlive.api import create_app
from orchlive.master import Master
from orchlive.store import Store

pytestmark = pytest.mark.live

SECRET = "hunter2-" + uuid.uuid4().hex[:6]


def test_env_values_are_never_served_and_tasks_get_a_clean_environment(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(api_token="tok")
    cluster.start_master()
    # The worker's own environment holds something a task must not see.
    cluster.start_worker("w1", env={"WORKER_ONLY_SECRET": "do-not-leak"})
    task = cluster.submit(
        {"name": "s", "image": "alpine", "command": ["env"], "env": {"DB_PASSWORD": SECRET, "MODE": "x"}}
    )
    assert "env" not in task and task["env_names"] == ["DB_PASSWORD", "MODE"]
    cluster.wait_for_state(task["id"], {"COMPLETED"})
    dag_task = {"name": "d", "image": "alpine", "command": ["true"], "env": {"DB_PASSWORD": SECRET}}
    dag = cluster.http.post("/api/v1/dags", json={"tasks": [dag_task]})
    assert dag.status_code == 201, dag.text
    served = [
        cluster.http.get(f"/api/v1/tasks/{task['id']}").text,
        cluster.http.get("/api/v1/tasks").text,
        dag.text,
        cluster.http.get(f"/api/v1/dags/{dag.json()['id']}").text,
        json.dumps(cluster.events(0)),
    ]
    for text in served:
        assert SECRET not in text
        assert "DB_PASSWORD" in text
    # The task's own output (its business) shows what it was given: its env, ORCH_* and nothing else.
    output = cluster.http.get(f"/api/v1/tasks/{task['id']}/logs").text
    names = {line.split("=", 1)[0] for line in output.splitlines() if "=" in line}
    assert f"DB_PASSWORD={SECRET}" in output
    assert "WORKER_ONLY_SECRET" not in names and "ORCH_ETCD" not in names and "ORCH_API_TOKEN" not in names
    assert {"DB_PASSWORD", "MODE", "ORCH_TASK_ID", "ORCH_ATTEMPT"} <= names
    assert names - {"DB_PASSWORD", "MODE", "ORCH_TASK_ID", "ORCH_ATTEMPT"} <= {"PWD", "SHLVL", "_"}, names


def test_protect_system_closes_health_and_metrics(etcd) -> None:  # type: ignore[no-untyped-def]
    store = Store(etcd.endpoint, f"/protect-{uuid.uuid4().hex[:6]}")
    master = Master(store, "bin_packing")
    master.ready.set()  # the API alone (no lifespan, no scheduling loop): the routes answer from memory

    async def main() -> None:
        for protect, anonymous in ((False, 200), (True, 401)):
            app = create_app(store, master, api_token="tok", protect_system=protect)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://master") as client:
                assert (await client.get("/health")).status_code == anonymous
                assert (await client.get("/metrics")).status_code == anonymous
                assert (await client.get("/health", headers={"Authorization": "Bearer tok"})).status_code == 200
                assert (await client.get("/api/v1/tasks")).status_code == 401

    asyncio.run(main())


def test_an_event_shows_of_a_task_what_the_api_shows_and_no_env_value() -> None:
    from datetime import UTC, datetime

    from orchlive.models import Resources, Task, TaskPublic, TaskState, task_public_json

    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    task = Task(
        name="n", image="img", command=["sh", "-c", "echo é"], env={"Z": SECRET, "A": "1"},
        resources=Resources.model_validate({"cpu": 250, "memory": 64, "gpu": 500}), node_selector={"zone": "a"},
        timeout=3.5, priority=2, state=TaskState.RUNNING, node_id="w1", start_time=started, attempts=2,
        devices={"gpu": [1]}, after=["x"], reason="why",
    )  # fmt: skip
    body = task_public_json(task)
    assert body == TaskPublic.of(task).model_dump(mode="json")
    assert body["env_names"] == ["A", "Z"] and SECRET not in json.dumps(body)
