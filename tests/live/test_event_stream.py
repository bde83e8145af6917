"""The event stream under hostile resume points (issue 13, items 2 and 5).

A resume point out of range once wedged every watch of the master (the etcd client left
its pending-watch slot taken); event ids were revisions, shared by every event of a
placement batch, so resuming inside a batch lost the rest of it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import pytest

from orchlive.store import Store, StoreUnavailableError

pytestmark = pytest.mark.live

BODY = {"name": "e", "image": "alpine", "command": ["true"], "resources": {"cpu": 100, "memory": 64}}


def test_a_bad_resume_point_is_422_and_wedges_no_watch(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    bad = ["9223372036854775807", "9223372036854775808", "-1", "abc", "1e3", "99999999999999999999999", "٣"]
    for value in bad:
        response = cluster.http.get("/api/v1/events", headers={"Last-Event-ID": value.encode()})
        assert response.status_code == 422, (value, response.text)
        assert "event id" in response.json()["detail"]
        response = cluster.http.get("/api/v1/events", params={"since": value})
        assert response.status_code == 422, (value, response.text)
    # Every watch of the master still works: a new subscriber sees events, the scheduler
    # sees a worker join and a task arrive, and runs it.
    cluster.start_worker("w1")
    task = cluster.submit(BODY)
    assert cluster.wait_for_state(task["id"], {"COMPLETED"})["state"] == "COMPLETED"
    kinds = [e["type"] for e in cluster.events(0) if e["object"].get("id") == task["id"]]
    assert kinds == ["task.created", "task.assigned", "task.running", "task.completed"]
    assert cluster.http.get("/health").status_code == 200
    logs = {p.name: p.read_text(errors="replace") for p in cluster.work_dir.glob("*.log")}
    assert not [name for name, text in logs.items() if "Traceback" in text or "ValueError" in text], logs


def test_the_store_survives_a_wedged_client_library(etcd) -> None:  # type: ignore[no-untyped-def]
    """A failure inside aetcd (here, the very one of issue 13) no longer stops later watches."""

    async def main() -> None:
        async with Store(etcd.endpoint, f"/wedge-{uuid.uuid4().hex[:8]}") as store:
            with pytest.raises(ValueError):  # the library itself, called directly: its slot stays taken
                await store.client.watch_prefix(b"/anything", start_revision=2**63)
            with pytest.raises(ValueError):  # the store refuses it before the library sees it
                async for _ in store.watch(store.keys.tasks(), 2**63):
                    pass
            revision = await store.put(store.keys.task("a"), b"1")

            async def first() -> str:
                async for change in store.watch(store.keys.tasks(), revision):
                    return change.key
                raise AssertionError("the watch ended")

            assert await asyncio.wait_for(first(), timeout=15) == store.keys.task("a")

    asyncio.run(main())


def test_store_refuses_revisions_etcd_cannot_hold(etcd) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Store(etcd.endpoint, "/refuse") as store:
            for revision in (-1, 2**63, 1.5, True):
                with pytest.raises((ValueError, StoreUnavailableError)):
                    await store._open_watch(store.keys.tasks(), revision)  # type: ignore[arg-type]

    asyncio.run(main())


def test_event_ids_are_unique_and_resume_inside_a_batch_is_exact(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    # Twenty tasks wait; one worker joins and one pass places them all in one transaction.
    tasks = [cluster.submit({**BODY, "name": f"b{i}"}) for i in range(20)]
    cluster.start_worker("w1")
    for task in tasks:
        cluster.wait_for_state(task["id"], {"COMPLETED"})
    events = cluster.events(0)
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)), Counter(ids).most_common(3)
    assert ids == sorted(ids)
    assigned = [e for e in events if e["type"] == "task.assigned"]
    assert len(assigned) == 20
    # One revision for the whole batch (id = revision * 1000 + index): the case that lost events.
    assert len({e["id"] // 1000 for e in assigned}) == 1
    for cut in (0, 1, 18):
        after = assigned[cut]["id"]
        resumed = cluster.events(after)
        assert [e["id"] for e in resumed] == [i for i in ids if i > after]
        by_header = _events_with_header(cluster.url, after)
        assert [e["id"] for e in by_header] == [i for i in ids if i > after]


def _events_with_header(url: str, after: int) -> list[dict]:
    import json

    out: list[dict] = []
    try:
        with httpx.stream(
            "GET", f"{url}/api/v1/events", headers={"Last-Event-ID": str(after)}, timeout=httpx.Timeout(10, read=1.0)
        ) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    out.append(json.loads(line[5:]))
    except httpx.ReadTimeout:
        pass
    return out
