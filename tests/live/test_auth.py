"""The optional bearer token (every /api/v1 request), and a worker refusing an assignment beyond its capacity."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from orchlive.models import Resources, Task, TaskState
from orchlive.store import Store

pytestmark = pytest.mark.live

BODY = {"name": "t", "image": "alpine", "command": ["true"], "resources": {"cpu": 100, "memory": 64}}


def test_every_api_request_needs_the_token_when_one_is_set(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(api_token="s3cret")
    cluster.start_master()
    cluster.start_worker("w1")
    anonymous = httpx.Client(base_url=cluster.url, timeout=10.0)
    wrong = httpx.Client(base_url=cluster.url, timeout=10.0, headers={"Authorization": "Bearer wrong"})
    for http in (anonymous, wrong):
        assert http.post("/api/v1/tasks", json=BODY).status_code == 401
    created = cluster.http.post("/api/v1/tasks", json=BODY)  # the harness sends the token
    assert created.status_code == 201
    task_id = created.json()["id"]
    for http in (anonymous, wrong):
        assert http.delete(f"/api/v1/tasks/{task_id}").status_code == 401
        assert http.post("/api/v1/nodes/w1/drain").status_code == 401
        # Reads too (issue 13, item 7).
        for path in ("/api/v1/tasks", f"/api/v1/tasks/{task_id}", f"/api/v1/tasks/{task_id}/logs"):
            assert http.get(path).status_code == 401, path
        for path in ("/api/v1/nodes", "/api/v1/nodes/w1", "/api/v1/events?since=0", "/api/v1/events"):
            assert http.get(path).status_code == 401, path
    # Probes and scrapers need none.
    assert anonymous.get("/health").status_code == 200
    assert anonymous.get("/metrics").status_code == 200
    assert cluster.http.get(f"/api/v1/tasks/{task_id}").status_code == 200
    assert cluster.http.delete(f"/api/v1/tasks/{task_id}").status_code == 204


def test_every_api_route_in_the_schema_refuses_a_request_without_the_token(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    """Every operation under ``/api/v1`` that ``/openapi.json`` lists, path parameters filled: 401.

    The test above names routes by hand; this one also covers any route added later.
    """
    cluster = cluster_factory(api_token="s3cret")
    cluster.start_master()
    schema = cluster.http.get("/openapi.json").json()
    anonymous = httpx.Client(base_url=cluster.url, timeout=10.0)
    checked = []
    for path, operations in schema["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method in operations.keys() & {"get", "post", "put", "patch", "delete"}:
            body = {} if method in ("post", "put", "patch") else None
            status = anonymous.request(method.upper(), concrete, json=body).status_code
            assert status == 401, (method, path, status)
            checked.append(f"{method.upper()} {path}")
    assert len(checked) >= 14, checked  # tasks, nodes, events, dags: every resource's routes


def test_worker_rejects_an_assignment_beyond_its_capacity(cluster_factory, etcd) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("w1", cpu=1000, memory=1024)
    # Play a faulty master by hand: assign w1 a task five times its cpu.
    task = Task(
        name="huge",
        image="alpine",
        command=["true"],
        resources=Resources(cpu=5000, memory=64),
        state=TaskState.ASSIGNED,
        node_id="w1",
        attempts=1,
    )

    async def assign() -> None:
        async with Store(etcd.endpoint, cluster.prefix) as store:
            body = task.model_dump(mode="json")
            await (
                store.txn()
                .put_json(store.keys.task(task.id), body)
                .put(store.keys.assignment("w1", task.id), b"1")
                .commit()
            )

    asyncio.run(assign())
    cluster.wait_until(lambda: cluster.task(task.id)["state"] == "PENDING", timeout=10, what="requeued")
    # The worker's refusal, or, once the master has tried it again, its verdict: it can never fit.
    reason = cluster.task(task.id)["reason"]
    assert "capacity" in reason or "never fits: 0/1 nodes could hold it even when empty" in reason, reason
