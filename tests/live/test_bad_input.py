"""Hostile and malformed input (issue 13, items 3 and 4): never a 500, never a body that cannot render,
nothing stored that cannot start, and a task that cannot start fails and gives its resources back."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from orchlive.models import Ledger, Resources, Task, TaskState
from orchlive.store import Store

pytestmark = pytest.mark.live

OK = '{"name":"x","image":"alpine","command":["true"]'
# (raw JSON body, what must be named in the answer): each was a 500, or accepted and wrong.
CASES = [
    (OK + ',"timeout":NaN}', "timeout"),
    (OK + ',"timeout":Infinity}', "timeout"),
    (OK + ',"timeout":"5"}', "timeout"),
    (OK + ',"timeout":1e12}', "timeout"),
    (OK + ',"resources":{"cpu":NaN}}', "cpu"),
    (OK + ',"resources":{"cpu":1000000000000000000000000000000}}', "resources"),
    (OK + ',"resources":{"cpu":1e30}}', "cpu"),
    (OK + ',"resources":{"gpu":-Infinity}}', "gpu"),
    (OK + ',"resources":{"gpu":1e13}}', "resources"),
    (OK + ',"max_attempts":"5"}', "max_attempts"),
    ('{"name":"\\ud800","image":"alpine"}', "name"),
    ('{"name":"a\\u0000b","image":"alpine"}', "name"),
    (OK + ',"env":{"A=B":"1"}}', "env"),
    (OK + ',"env":{"A":"x\\u0000y"}}', "env"),
    (OK + ',"env":{"ORCH_TASK_ID":"mine"}}', "env"),
    (OK + ',"env":{"A":"\\udfff"}}', "env"),
    ('{"name":"x","image":"alpine","command":["a\\u0000b"]}', "command"),
    ('{"name":"x","image":"alpine","command":["' + "y" * 40_000 + '"]}', "command"),
    ('{"name":"x","image":"alpine","node_selector":{"zone":"\\u0000"}}', "node_selector"),
    ("[1, 2", "body"),
    ('"\\ud800"', "body"),
]


def test_bad_bodies_are_422_with_a_body_that_renders_and_nothing_is_stored(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    headers = {"Content-Type": "application/json"}
    for body, field in CASES:
        response = cluster.http.post("/api/v1/tasks", content=body.encode("utf-8", "surrogatepass"), headers=headers)
        assert response.status_code == 422, (body[:80], response.status_code, response.text[:300])
        detail = response.json()["detail"]  # renders, and is JSON
        assert field in json.dumps(detail), (body[:80], detail)
    huge = '{"name":"x","image":"alpine","command":["' + "z" * 1_000_000 + '"]}'
    response = cluster.http.post("/api/v1/tasks", content=huge, headers=headers)
    assert response.status_code == 413, response.text[:200]
    chunked = cluster.http.post(
        "/api/v1/tasks", content=iter([huge.encode()[i : i + 65536] for i in range(0, 10**6, 65536)])
    )
    assert chunked.status_code == 413
    assert cluster.tasks() == []
    assert _no_traceback(cluster.work_dir)


def test_bad_queries_and_paths_are_4xx(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    for path in [
        "/api/v1/tasks?offset=-1",
        "/api/v1/tasks?offset=100000000000000000000",
        "/api/v1/tasks?limit=0",
        "/api/v1/tasks?state=NOPE",
        "/api/v1/tasks/" + "a" * 300,
        "/api/v1/nodes/" + "n" * 300,
        "/api/v1/events?since=-5",
    ]:
        response = cluster.http.get(path)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text[:200])
        response.json()
    assert cluster.http.get("/api/v1/tasks/%00").status_code == 404
    assert cluster.http.post("/api/v1/nodes/%ED%A0%80/drain").status_code == 404
    assert _no_traceback(cluster.work_dir)


def test_a_non_ascii_bearer_token_is_401_not_500(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(api_token="s3cret-\u00e9\u4e2d")
    cluster.start_master()
    body = {"name": "t", "image": "alpine", "command": ["true"]}
    for token in ("\u00e9t\u00e9".encode(), "\u4e2d".encode(), b"\xff\xfe"):
        response = cluster.http.post("/api/v1/tasks", json=body, headers={"Authorization": b"Bearer " + token})
        assert response.status_code == 401, response.text
    right = {"Authorization": b"Bearer " + "s3cret-\u00e9\u4e2d".encode()}
    assert cluster.http.post("/api/v1/tasks", json=body, headers=right).status_code == 201
    assert _no_traceback(cluster.work_dir)


def test_a_task_that_cannot_start_fails_with_the_reason_and_frees_its_resources(cluster_factory, etcd) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("w1", cpu=1000, memory=1024)
    missing = cluster.submit(
        {"name": "m", "image": "alpine", "command": ["/no/such/program"], "resources": {"cpu": 1000}}
    )
    done = cluster.wait_for_state(missing["id"], {"FAILED"})
    assert "/no/such/program" in done["reason"], done
    # A record no submission could make any more (a NUL in the command, written before the
    # checks existed), assigned to w1 by hand: the worker fails it instead of sticking.
    legacy = Task(
        name="legacy",
        image="alpine",
        command=["echo", "a\x00b"],
        resources=Resources(cpu=1000, memory=64),
        state=TaskState.ASSIGNED,
        node_id="w1",
        attempts=1,
    )
    asyncio.run(_assign_by_hand(etcd.endpoint, cluster.prefix, legacy))
    failed = cluster.wait_for_state(legacy.id, {"FAILED"})
    assert "cannot start" in failed["reason"] and "null" in failed["reason"], failed
    # Its cpu came back: a task needing the whole node runs.
    after = cluster.submit({"name": "after", "image": "alpine", "command": ["true"], "resources": {"cpu": 1000}})
    assert cluster.wait_for_state(after["id"], {"COMPLETED"})["state"] == "COMPLETED"
    assert cluster.nodes()["w1"]["allocated"]["cpu"] == 0
    assert _no_traceback(cluster.work_dir)


def test_a_worker_restarted_holding_tasks_that_cannot_start_fails_them_and_stays_up(cluster_factory, etcd) -> None:  # type: ignore[no-untyped-def]
    """Item 3's restart case: a worker that came back to such assignments exited 0 and logged nothing.

    Master and worker stop; three records no submission could make any more (a NUL in the
    command, an env key with ``=``, a NUL in an env value) are assigned to w1 by hand; w1
    starts alone (no master to requeue anything meanwhile). It fails each with the reason,
    gives their cpu back, keeps running, and runs the next task.
    """
    cluster = cluster_factory()
    port = cluster.start_master()
    cluster.start_worker("w1", cpu=1000, memory=1024)
    cluster.kill_master(port, signal.SIGTERM)
    cluster.kill_worker("w1", signal.SIGTERM)
    patches = [{"command": ["echo", "a\x00b"]}, {"env": {"A=B": "1"}}, {"env": {"A": "x\x00y"}}]
    legacy = [
        Task(
            name=f"legacy{i}",
            image="alpine",
            command=["true"],
            resources=Resources(cpu=300, memory=64),
            state=TaskState.ASSIGNED,
            node_id="w1",
            attempts=1,
        )
        for i in range(len(patches))
    ]
    for task, patch in zip(legacy, patches, strict=True):
        asyncio.run(_assign_by_hand(etcd.endpoint, cluster.prefix, task, patch))
    cluster.start_worker("w1", cpu=1000, memory=1024, wait=False)
    reasons = asyncio.run(_wait_until_failed(etcd.endpoint, cluster.prefix, [t.id for t in legacy]))
    assert all("cannot start" in reason for reason in reasons), reasons
    assert "null" in reasons[0] and "environment variable name" in reasons[1] and "null" in reasons[2], reasons
    assert cluster.workers["w1"].poll() is None, "the worker exited"
    cluster.start_master()
    after = cluster.submit({"name": "after", "image": "alpine", "command": ["true"], "resources": {"cpu": 1000}})
    assert cluster.wait_for_state(after["id"], {"COMPLETED"})["state"] == "COMPLETED"
    assert cluster.nodes()["w1"]["allocated"]["cpu"] == 0
    assert _no_traceback(cluster.work_dir)


async def _wait_until_failed(endpoint: str, prefix: str, ids: list[str], timeout: float = 30) -> list[str]:
    """The reasons of tasks ``ids`` once every one is FAILED in etcd (read directly: no master runs)."""
    deadline = time.monotonic() + timeout
    async with Store(endpoint, prefix) as store:
        while True:
            records = [await store.get(store.keys.task(task_id)) for task_id in ids]
            tasks = [Task.model_validate(entry.json()) for entry in records if entry is not None]
            if len(tasks) == len(ids) and all(t.state == TaskState.FAILED for t in tasks):
                return [t.reason or "" for t in tasks]
            assert time.monotonic() < deadline, [(t.name, t.state) for t in tasks]
            await asyncio.sleep(0.2)


async def _assign_by_hand(endpoint: str, prefix: str, task: Task, patch: dict[str, Any] | None = None) -> None:
    """Place ``task`` on w1 as the master would; ``patch`` overrides fields of the stored record unchecked."""
    async with Store(endpoint, prefix) as store:
        entry = await store.get(store.keys.alloc("w1"))
        assert entry is not None
        ledger = Ledger.from_json(entry.json())
        ledger.add(task)
        applied, _ = await (
            store.txn()
            .expect_revision(store.keys.alloc("w1"), entry.mod_revision)
            .put_json(store.keys.alloc("w1"), ledger.to_json())
            .put_json(store.keys.task(task.id), task.model_dump(mode="json") | (patch or {}))
            .put(store.keys.assignment("w1", task.id), b"1")
            .commit()
        )
        assert applied


def _no_traceback(work_dir: Path) -> bool:
    logs = {p.name: p.read_text(errors="replace") for p in work_dir.glob("*.log")}
    bad = {name: text[text.index("Traceback") :][:2000] for name, text in logs.items() if "Traceback" in text}
    assert not bad, bad
    return True
