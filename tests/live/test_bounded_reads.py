"""Bounded reads (issue 13, item 1): more than 4 MiB under the prefix no longer stops a master.

The master once read the whole prefix, events and logs included, in one range: past the
client's 4 MiB message limit it could never start again (``/health`` 503 for ever). Here
a few large values (logs, events, and tasks written before the size limits existed, over
4 MiB of tasks alone) sit under the prefix before the master starts; it starts, serves,
and schedules.
"""

from __future__ import annotations

import asyncio

import pytest

from orchlive.models import Task
from orchlive.store import Store

pytestmark = pytest.mark.live

MIB = 1024 * 1024


async def _fill(endpoint: str, prefix: str) -> int:
    """Six 1 MiB logs, six 1 MiB events and six 800 KB legacy tasks; returns the bytes written."""
    written = 0
    async with Store(endpoint, prefix) as store:
        for i in range(6):
            task = Task(name=f"legacy{i}", image="alpine", command=["echo", "x" * 800_000])
            body = task.model_dump_json().encode()
            await store.put(store.keys.task(task.id), body)
            await store.put(store.keys.logs(f"old{i}"), b"l" * MIB)
            event = (
                b'{"type":"task.completed","object":{"pad":"' + b"e" * MIB + b'"},"timestamp":"2020-01-01T00:00:00Z"}'
            )
            await store.put(store.keys.new_event(), event)
            written += len(body) + MIB + len(event)
        entries, _ = await store.range(store.keys.tasks())
        assert sum(len(e.value) for e in entries) > 4 * MIB  # the tasks alone pass the old limit
    return written


def test_a_master_starts_and_schedules_with_more_than_4_mib_under_the_prefix(cluster_factory, etcd) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    assert asyncio.run(_fill(etcd.endpoint, cluster.prefix)) > 12 * MIB
    cluster.start_master()  # waits for /health 200
    assert cluster.http.get("/health").status_code == 200
    assert cluster.http.get("/api/v1/nodes").status_code == 200
    listed = cluster.http.get("/api/v1/tasks", params={"limit": 2})
    assert listed.status_code == 200 and len(listed.json()) == 2
    cluster.start_worker("w1")
    # The legacy tasks cannot start (an argument past the kernel's 128 KiB): they fail with
    # the reason and free their room; a new task runs.
    task = cluster.submit({"name": "new", "image": "alpine", "command": ["true"], "resources": {"cpu": 100}})
    assert cluster.wait_for_state(task["id"], {"COMPLETED"}, timeout=60)["state"] == "COMPLETED"
    legacy = [t for t in cluster.tasks() if t["name"].startswith("legacy")]
    assert len(legacy) == 6
    for t in legacy:
        failed = cluster.wait_for_state(t["id"], {"FAILED"}, timeout=60)
        assert failed["reason"], failed


def test_a_large_history_streams_without_breaking_the_watch(cluster_factory, etcd) -> None:  # type: ignore[no-untyped-def]
    """Replaying a large history from the start: etcd fragments its replies, and every watch keeps up."""
    cluster = cluster_factory()
    prefix = cluster.prefix

    async def fill() -> None:
        async with Store(etcd.endpoint, prefix) as store:
            for i in range(16):  # 19 MB in all: past the client's message limit, even raised to 16 MiB
                pad = "p" * 1_200_000
                txn = store.txn()
                txn.event("test.big", {"id": f"b{i}", "pad": pad}, "2020-01-01T00:00:00Z")
                await txn.commit()

    asyncio.run(fill())
    cluster.start_master()
    events = cluster.events(0, until_idle=3.0)
    assert [e["object"]["id"] for e in events if e["type"] == "test.big"] == [f"b{i}" for i in range(16)]
