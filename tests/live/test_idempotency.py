"""``Idempotency-Key`` (issue 13): a POST sent again under the same key returns the first task, never a second.

Against a real etcd, through the API app (no master loop: nothing is placed). The resent
POST after a frozen master's timeout, end to end, is ``test_ha.py``'s.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from orchlive.api import create_app
from orchlive.master import Master
from orchlive.store import Store

pytestmark = pytest.mark.live

BODY = {"name": "once", "command": ["true"], "resources": {"cpu": 100}}


async def _stored(store: Store) -> tuple[list[str], int]:
    """The ids of the stored tasks and the number of ``task.created`` events."""
    tasks, _ = await store.range(store.keys.tasks(), keys_only=True)
    events, _ = await store.range(store.keys.events())
    created = sum(b'"task.created"' in e.value for e in events)
    return sorted(store.keys.last(e.key) for e in tasks), created


async def _session(endpoint: str, check: Any) -> None:
    async with Store(endpoint, f"/idem-{uuid.uuid4().hex[:8]}") as store:
        app = create_app(store, Master(store, "bin_packing"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://master") as client:
            await check(store, client)


def test_a_resent_post_returns_the_first_task(etcd) -> None:  # type: ignore[no-untyped-def]
    async def check(store: Store, client: httpx.AsyncClient) -> None:
        # Without a key, a resent POST is a second task (what a timeout against a frozen master did).
        plain = [await client.post("/api/v1/tasks", json=BODY) for _ in range(2)]
        assert [r.status_code for r in plain] == [201, 201] and plain[0].json()["id"] != plain[1].json()["id"]
        key = {"Idempotency-Key": "k-" + uuid.uuid4().hex}
        first = await client.post("/api/v1/tasks", json=BODY, headers=key)
        again = await client.post("/api/v1/tasks", json=BODY, headers=key)
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"] and again.json()["state"] == "PENDING"
        # Racing copies of one keyed POST (the batcher gathers them together): still one task.
        raced = {"Idempotency-Key": "r-" + uuid.uuid4().hex}
        replies = await asyncio.gather(*(client.post("/api/v1/tasks", json=BODY, headers=raced) for _ in range(6)))
        assert sorted(r.status_code for r in replies) == [200] * 5 + [201], [r.text for r in replies]
        assert len({r.json()["id"] for r in replies}) == 1
        ids, created = await _stored(store)
        assert len(ids) == 4 and created == 4, (ids, created)
        # The same key for another task is refused, naming the header; a malformed key too.
        other = await client.post("/api/v1/tasks", json=BODY | {"name": "other"}, headers=key)
        assert other.status_code == 422 and other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
        bad = await client.post("/api/v1/tasks", json=BODY, headers={"Idempotency-Key": "has space"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
        # A gang and a DAG: every record once, the first answer again.
        gang = BODY | {"name": "gang", "replicas": 3}
        made = [await client.post("/api/v1/tasks", json=gang, headers={"Idempotency-Key": "g1"}) for _ in range(2)]
        assert [r.status_code for r in made] == [201, 200] and made[0].json()["id"] == made[1].json()["id"]
        dag = {"tasks": [BODY | {"name": "a"}, BODY | {"name": "b", "after": ["a"]}]}
        dags = [await client.post("/api/v1/dags", json=dag, headers={"Idempotency-Key": "g1"}) for _ in range(2)]
        assert [r.status_code for r in dags] == [201, 200], dags[1].text
        assert dags[0].json()["id"] == dags[1].json()["id"] and len(dags[1].json()["tasks"]) == 2
        ids, created = await _stored(store)
        assert len(ids) == 4 + 3 + 2 and created == len(ids)

    asyncio.run(_session(etcd.endpoint, check))
