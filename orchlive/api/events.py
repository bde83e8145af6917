"""``/api/v1/events``: Server-Sent Events of every cluster event, resumable with Last-Event-ID.

Each subscriber has its own etcd watch on the events prefix, so every subscriber
receives every event (the Go orchestrator's subscribers split one channel), and an
event's id is the etcd revision that recorded it: ``Last-Event-ID: N`` resumes at N+1
from etcd's history.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from sse_starlette.sse import EventSourceResponse

from orchlive.api.deps import StoreDep
from orchlive.store import StoreUnavailableError

router = APIRouter(prefix="/api/v1/events", tags=["events"])


@router.get("")
async def stream_events(
    request: Request,
    store: StoreDep,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID")] = None,
    since: Annotated[int | None, Query(ge=0, description="replay events recorded after this id")] = None,
) -> EventSourceResponse:
    """A ``text/event-stream`` of events ``{id, type, object, timestamp}``."""
    after = last_event_id if last_event_id is not None else since
    if after is None:
        try:
            _, revision = await store.range(store.keys.events() + "\x00-none")
        except StoreUnavailableError:
            revision = 0
        start = revision + 1
    else:
        start = after + 1

    async def generate() -> AsyncIterator[dict[str, str]]:
        async for change in store.watch(store.keys.events(), start):
            if change.kind != "put":
                continue
            if await request.is_disconnected():
                return
            event = json.loads(change.value)
            event["id"] = change.create_revision
            yield {"id": str(change.create_revision), "event": event["type"], "data": json.dumps(event)}

    return EventSourceResponse(generate(), ping=10)
