"""The events window (``orchlive.retention``): age enforced by etcd leases, count trimmed by the
leader, etcd compacted below the oldest event kept, and an expired resume point announced.

Compaction is etcd-wide, so the tests that compact have an etcd of their own.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchlive.etcd_server import EtcdServer
from orchlive.models import now
from orchlive.retention import Retention, keep_window
from orchlive.store import Store

from .harness import LiveCluster

pytestmark = pytest.mark.live
BODY = {"name": "r", "image": "alpine", "command": ["true"]}


@pytest.fixture
def private_etcd(etcd: EtcdServer) -> Iterator[EtcdServer]:  # after the session's: skipped alike without etcd
    server = EtcdServer()
    server.start()
    yield server
    server.cleanup()


async def _record_events(store: Store, n: int) -> list[int]:
    """``n`` transactions of one event each; their revisions."""
    revisions = []
    for i in range(n):
        applied, revision = await store.txn().event("test.event", {"i": i}, now().isoformat()).commit()
        assert applied
        revisions.append(revision)
    return revisions


def test_events_expire_by_age_under_a_shared_lease_with_no_master_running(etcd: EtcdServer) -> None:
    window = Retention(max_age=2.0, max_count=0, interval=0)

    async def scenario() -> tuple[set[int], int, float]:
        async with Store(etcd.endpoint, f"/age-{time.monotonic_ns()}", retention=window) as store:
            await _record_events(store, 3)
            leases = {e.lease for e in (await store.range(store.keys.events()))[0]}
            began = time.monotonic()
            while await store.count(store.keys.events()) and time.monotonic() - began < 20:
                await asyncio.sleep(0.2)
            return leases, await store.count(store.keys.events()), time.monotonic() - began

    leases, left, waited = asyncio.run(scenario())
    assert len(leases) == 1 and 0 not in leases  # one lease for the reuse period, not one per event
    assert left == 0, f"events still there after {waited:.1f} s"


def test_a_lease_etcd_no_longer_knows_is_replaced(etcd: EtcdServer) -> None:
    """The writer's events lease revoked (as if it had expired while the process was paused)."""
    window = Retention(max_age=60, max_count=0, interval=0)

    async def scenario() -> tuple[int, int, int]:
        async with Store(etcd.endpoint, f"/gone-{time.monotonic_ns()}", retention=window) as store:
            await _record_events(store, 1)
            first = (await store.range(store.keys.events()))[0][0].lease
            await store.revoke_lease(first)  # its event goes with it
            await _record_events(store, 1)
            events = (await store.range(store.keys.events()))[0]
            return first, len(events), events[0].lease

    first, count, second = asyncio.run(scenario())
    assert count == 1 and second not in (0, first)


def test_the_count_is_trimmed_and_etcd_compacted_below_the_oldest_event_kept(private_etcd: EtcdServer) -> None:
    window = Retention(max_age=0, max_count=5, interval=1)

    async def scenario() -> tuple[int, int, list[int], int]:
        async with Store(private_etcd.endpoint, "/count", retention=window) as store:
            revisions = await _record_events(store, 12)
            first_pass = await keep_window(store, window, 0)  # trims; nothing compacted on a first pass
            kept_after_first = await store.count(store.keys.events())
            revisions += await _record_events(store, 2)
            await keep_window(store, window, first_pass)
            kept = sorted(e.create_revision for e in (await store.range(store.keys.events()))[0])
            compacted = 0
            async for change in store.watch(store.keys.events(), 1, tell_compacted=True):
                compacted = change.mod_revision if change.kind == "compacted" else compacted
                break
            return kept_after_first, first_pass, kept, compacted

    kept_after_first, first_pass, kept, compacted = asyncio.run(scenario())
    assert kept_after_first == 5
    assert len(kept) == 5
    # Compacted up to the oldest event kept, but never past the revision read one pass earlier.
    assert compacted == min(kept[0], first_pass)


class _WindowCluster(LiveCluster):
    """A cluster whose processes get the events window's variables."""

    def __init__(self, etcd: EtcdServer, work_dir: Path, window_env: dict[str, str]) -> None:
        self.window_env = window_env
        super().__init__(etcd, work_dir)

    def _env(self) -> dict[str, str]:
        return super()._env() | self.window_env


def test_a_resume_point_older_than_the_window_gets_an_expired_event(private_etcd: EtcdServer, tmp_path: Path) -> None:
    cluster = _WindowCluster(private_etcd, tmp_path, {"ORCH_EVENTS_MAX_COUNT": "4", "ORCH_RETENTION_INTERVAL": "0.5"})
    try:
        cluster.start_master()
        created = [cluster.submit(BODY)["id"] for _ in range(10)]
        ids = [e["id"] for e in cluster.events(0)]
        first = ids[0]

        def expired() -> bool:
            resumed = cluster.events(first, until_idle=0.5)
            return bool(resumed) and resumed[0]["type"] == "events.expired"

        cluster.wait_until(expired, timeout=30, what="the leader trims and compacts")
        resumed = cluster.events(first)
        notice = resumed[0]["object"]
        assert notice["requested_after"] == first and notice["reason"] == "resume point expired"
        assert notice["resumes_at"] > first
        assert [e["object"]["id"] for e in resumed[1:]][-4:] == created[-4:]
        assert _first_by_header(cluster, first)["type"] == "events.expired"  # Last-Event-ID: the same
        # Within the window, a resume is exact and needs no notice.
        within = cluster.events(ids[-3])
        assert [e["object"]["id"] for e in within] == created[-2:]
    finally:
        cluster.stop()


def _first_by_header(cluster: LiveCluster, after: int) -> dict[str, Any]:
    """The first event of a stream resumed with the ``Last-Event-ID`` header, as a browser would."""
    headers = {"Last-Event-ID": str(after)}
    with httpx.stream("GET", f"{cluster.url}/api/v1/events", headers=headers, timeout=10) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                return json.loads(line[5:])
    raise AssertionError("the stream ended without an event")
