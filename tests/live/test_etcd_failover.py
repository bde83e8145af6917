"""Several etcd endpoints: the store uses the first healthy member and fails over when it dies.

A real 3-member etcd cluster on loopback (``orchlive.etcd_cluster``); the member in use
is killed by the PID the test started it with.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from orchlive.etcd_cluster import EtcdCluster
from orchlive.etcd_server import free_port
from orchlive.store import Store, retrying

from .harness import LiveCluster

pytestmark = pytest.mark.live
BODY = {"name": "f", "image": "alpine", "command": ["true"]}


def test_a_dead_first_endpoint_is_skipped(etcd_cluster: EtcdCluster) -> None:
    dead = f"127.0.0.1:{free_port()}"

    async def check() -> str:
        async with Store(f"{dead},{etcd_cluster.endpoint}", "/skip") as store:
            await store.put("/skip/k", b"v")
            return store.endpoint

    assert asyncio.run(check()) == etcd_cluster.members[0].endpoint


def test_the_store_and_its_watch_survive_the_loss_of_their_member(etcd_cluster: EtcdCluster) -> None:
    async def scenario() -> tuple[str, str, list[tuple[str, int]]]:
        async with Store(etcd_cluster.endpoint, "/fo") as store:
            first = await store.put("/fo/k0", b"0")
            seen: list[tuple[str, int]] = []

            async def watch() -> None:
                async for change in store.watch("/fo/", first, retry_delay=0.1):
                    seen.append((change.key, change.mod_revision))
                    if change.key == "/fo/k5":
                        return

            watcher = asyncio.create_task(watch())
            await store.put("/fo/k1", b"1")
            used = store.endpoint
            etcd_cluster.kill(etcd_cluster.member_at(used))
            async with asyncio.timeout(60):  # without a failover the puts would be retried for ever
                for i in range(2, 6):
                    await retrying(lambda i=i: store.put(f"/fo/k{i}", b"x"), what="put", delay=0.1)
                await watcher
            return used, store.endpoint, seen

    before, after, seen = asyncio.run(scenario())
    assert after != before
    revisions = [revision for _, revision in seen]
    assert revisions == sorted(set(revisions))  # nothing delivered twice, in order, across the failover
    # Nothing missed (a put retried after a timeout may have landed twice: two revisions, both seen).
    assert list(dict.fromkeys(key for key, _ in seen)) == [f"/fo/k{i}" for i in range(6)]


def test_the_master_keeps_scheduling_when_its_member_dies(etcd_cluster: EtcdCluster, tmp_path: Path) -> None:
    cluster = LiveCluster(etcd_cluster, tmp_path, lease_ttl=3)  # type: ignore[arg-type]  # duck-typed: .endpoint
    try:
        cluster.start_master()
        cluster.start_worker("w1")
        done = {"COMPLETED"}
        cluster.wait_for_state(cluster.submit(BODY)["id"], done)
        used = _endpoint_in_use(tmp_path / f"master-{cluster.port}.log")
        etcd_cluster.kill(etcd_cluster.member_at(used))
        ids = [_submit_through_the_election(cluster) for _ in range(5)]
        for task_id in ids:
            cluster.wait_for_state(task_id, done, timeout=60)
        assert _endpoint_in_use(tmp_path / f"master-{cluster.port}.log") != used
        assert cluster.http.get("/health").status_code == 200
        created = [e["object"]["id"] for e in cluster.events(0) if e["type"] == "task.created"]
        assert created[-5:] == ids
    finally:
        cluster.stop()


def _submit_through_the_election(cluster: LiveCluster, within: float = 20.0) -> str:
    """Submit; a 503 while the surviving members elect a leader is the API saying so, retried in a bound.

    Right after the member dies, a write may find no member able to serve a linearizable
    request until the other two agree on a leader (etcd's election timeout, longer on a
    loaded machine); the master answers 503 rather than hanging, and serves again after.
    """
    deadline = time.monotonic() + within
    while True:
        response = cluster.http.post("/api/v1/tasks", json=BODY, headers=cluster._auth())
        if response.status_code == 201:
            return str(response.json()["id"])
        assert response.status_code == 503 and time.monotonic() < deadline, response.text
        time.sleep(0.25)


def _endpoint_in_use(log: Path) -> str:
    found = re.findall(r"etcd: using endpoint (\S+)", log.read_text())
    assert found, f"the master logged no endpoint in {log}"
    return found[-1]
