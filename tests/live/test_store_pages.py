"""Paged reads return every key once, however many one transaction created.

Reading tasks in submission order pages by create revision. A DAG, a gang or a batch of
the API's creates writes many tasks in one transaction, so many keys share a create
revision; when such a group straddled a page's edge, the next page began one revision
later and the rest of the group was never listed (an operator's audit: 256 of 283 tasks
listed, and deleting a DAG deleted only the members the listing found).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from orchlive.store import PAGE, Store

pytestmark = pytest.mark.live


async def _write_groups(store: Store, sizes: list[int]) -> list[str]:
    """One transaction per size, each creating that many keys; the keys in creation order."""
    keys: list[str] = []
    for g, size in enumerate(sizes):
        txn = store.txn()
        group = [f"{store.keys.tasks()}{g:03d}-{i:03d}" for i in range(size)]
        for key in group:
            txn.put(key, key.encode())
        applied, _ = await txn.commit()
        assert applied
        keys += group
    return keys


@pytest.mark.parametrize("by_creation", [True, False])
def test_groups_created_together_are_listed_whole_across_page_edges(etcd, by_creation: bool) -> None:  # type: ignore[no-untyped-def]
    # Groups of 100 straddle the edges of 256-key pages (100, 200 | 300, ...), one of 1
    # sits right after an edge, and a last group of 90 ends the read.
    sizes = [100, 100, 56, 1, 100, 100, 100, 90]
    assert PAGE == 256 and sum(sizes) > 2 * PAGE

    async def check() -> None:
        async with Store(etcd.endpoint, f"/pages-{uuid.uuid4().hex[:8]}") as store:
            written = await _write_groups(store, sizes)
            pages = [page async for page, _ in store.scan(store.keys.tasks(), by_creation=by_creation)]
            listed = [entry.key for page in pages for entry in page]
            assert len(listed) == len(set(listed)) == len(written)
            assert listed == (written if by_creation else sorted(written))
            assert len(pages) >= 2  # it did page
            created = [entry.create_revision for page in pages for entry in page]
            assert created == sorted(created) or not by_creation

    asyncio.run(check())
