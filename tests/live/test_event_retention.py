"""A resume point older than etcd's history gets a clear ``events.expired`` event, not silence.

Compaction is etcd-wide, so this test has an etcd of its own: the session's is shared. Here
etcd is compacted by hand; ``test_retention_window.py`` has the leader do it for the window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchlive.etcd_server import EtcdServer
from orchlive.store import Store

from .harness import LiveCluster

pytestmark = pytest.mark.live


@pytest.fixture
def private_etcd(etcd: EtcdServer) -> Iterator[EtcdServer]:  # after the session's: skipped alike without etcd
    server = EtcdServer()
    server.start()
    yield server
    server.cleanup()


def test_a_compacted_resume_point_gets_an_expired_event(private_etcd: EtcdServer, tmp_path: Path) -> None:
    cluster = LiveCluster(private_etcd, tmp_path)
    try:
        cluster.start_master()
        body = {"name": "r", "image": "alpine", "command": ["true"]}
        for _ in range(3):
            cluster.submit(body)
        before = cluster.events(0)
        assert [e["type"] for e in before] == ["task.created"] * 3
        first = before[0]["id"]
        asyncio.run(_compact(private_etcd.endpoint, cluster.prefix))
        later = cluster.submit(body)
        resumed = cluster.events(first)
        assert resumed[0]["type"] == "events.expired", resumed[:2]
        notice = resumed[0]["object"]
        assert notice["requested_after"] == first and notice["reason"] == "resume point expired"
        rest = resumed[1:]
        assert all(e["id"] >= notice["resumes_at"] > first for e in rest)
        assert rest[-1]["object"]["id"] == later["id"]
        # From the start (0): what is left, without a notice (nothing was promised).
        assert cluster.events(0)[0]["type"] != "events.expired"
    finally:
        cluster.stop()


async def _compact(endpoint: str, prefix: str) -> None:
    async with Store(endpoint, prefix) as store:
        assert await store.compact(await store.revision())
