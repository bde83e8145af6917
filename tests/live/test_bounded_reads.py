"""Bounded reads (issue 13, item 1): more than 4 MiB under the prefix no longer stops a master.

The master once read the whole prefix, events and logs included, in one range: past the
client's 4 MiB message limit it could never start again (``/health`` 503 for ever), and
no standby could take over. The limit is now 16 MiB (``MAX_MESSAGE_BYTES``), so the
values written here pass that, not the old one: tasks written before the size limits
existed, more of them than one reply can carry, beside large logs and events. Two masters
start, serve and schedule; the leader is killed and the standby takes over and schedules.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from orchlive.keys import Keys
from orchlive.models import Task
from orchlive.store import Store
from orchlive.store_connection import MAX_MESSAGE_BYTES

pytestmark = pytest.mark.live

MIB = 1024 * 1024


LEGACY = 22  # 800 KB tasks: 17.6 MB of them, past one reply's MAX_MESSAGE_BYTES


async def _fill(endpoint: str, prefix: str) -> int:
    """``LEGACY`` 800 KB legacy tasks, six 1 MiB logs and six 1 MiB events; returns the bytes written."""
    written = 0
    async with Store(endpoint, prefix) as store:
        for i in range(LEGACY):
            task = Task(name=f"legacy{i}", image="alpine", command=["echo", "x" * 800_000])
            body = task.model_dump_json().encode()
            await store.put(store.keys.task(task.id), body)
            written += len(body)
        for i in range(6):
            await store.put(store.keys.logs(f"old{i}"), b"l" * MIB)
            event = (
                b'{"type":"task.completed","object":{"pad":"' + b"e" * MIB + b'"},"timestamp":"2020-01-01T00:00:00Z"}'
            )
            await store.put(store.keys.new_event(), event)
            written += MIB + len(event)
        entries, _ = await store.range(store.keys.tasks())
        assert sum(len(e.value) for e in entries) > MAX_MESSAGE_BYTES  # the tasks alone: more than one reply
    return written


def test_a_master_starts_and_schedules_with_more_than_one_reply_under_the_prefix(cluster_factory, etcd) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(leader_ttl=2)
    assert asyncio.run(_fill(etcd.endpoint, cluster.prefix)) > 1.5 * MAX_MESSAGE_BYTES
    first = cluster.start_master()  # waits for /health 200
    standby = cluster.start_master()
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
    assert len(legacy) == LEGACY
    for t in legacy:
        failed = cluster.wait_for_state(t["id"], {"FAILED"}, timeout=60)
        assert failed["reason"], failed
    # The leader dies: the standby, which mirrored the same prefix, takes over and schedules.
    leader = cluster.leader_ports()
    assert len(leader) == 1 and leader[0] in (first, standby)
    cluster.kill_master(leader[0], signal.SIGKILL)
    cluster.wait_until(lambda: len(cluster.leader_ports()) == 1, timeout=30, what="the standby leading")
    later = cluster.submit({"name": "later", "image": "alpine", "command": ["true"], "resources": {"cpu": 100}})
    assert cluster.wait_for_state(later["id"], {"COMPLETED"}, timeout=60)["state"] == "COMPLETED"


def test_a_master_mirrors_neither_events_nor_logs() -> None:
    """The master's start-up read and watch (``Keys.mirrored``) cover no event and no log key."""
    keys = Keys("/orch")
    for history in (keys.new_event(), keys.logs("t1"), keys.events()):
        assert not any(history.startswith(prefix) for prefix in keys.mirrored()), history
    for kept in (keys.task("t1"), keys.alloc("n1"), keys.assignment("n1", "t1")):
        assert any(kept.startswith(prefix) for prefix in keys.mirrored()), kept


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


def test_a_task_log_keeps_only_its_tail(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    """``ORCH_LOG_TAIL_BYTES``: etcd keeps the last N bytes of a task's output, however much it printed."""
    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("w1", env={"ORCH_LOG_TAIL_BYTES": "1000"})
    script = "for i in $(seq 1 2000); do echo line$i; done"  # about 17 KB
    task = cluster.submit({"name": "chatty", "image": "alpine", "command": ["sh", "-c", script]})
    assert cluster.wait_for_state(task["id"], {"COMPLETED"})["state"] == "COMPLETED"
    logs = cluster.http.get(f"/api/v1/tasks/{task['id']}/logs")
    assert logs.status_code == 200
    assert len(logs.content) == 1000 and logs.text.endswith("line2000\n"), logs.text[:80]
    assert "line1\n" not in logs.text
