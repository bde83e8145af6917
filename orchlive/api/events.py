"""``/api/v1/events``: Server-Sent Events of every cluster event, resumable with Last-Event-ID.

Each subscriber has its own etcd watch on the events prefix, so every subscriber
receives every event (the Go orchestrator's subscribers split one channel). An event's
id is the etcd revision that recorded it and its index within that transaction
(``orchlive.event_ids``): unique, ordered, and ``Last-Event-ID: N`` (or ``?since=N``)
resumes with exactly the events after N, from etcd's history, on any master of the
cluster. The resume point is checked before it reaches the etcd client: a malformed one,
or one later than any event recorded, is a 422. Events are kept for a window
(``orchlive.retention``: an hour or 100,000 events by default), and the leader compacts
etcd's history below the oldest event kept; a resume point older than that finds its
history compacted, and the stream begins with an ``events.expired`` event saying from
which id it carries on, instead of silently skipping what was lost.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request
from sse_starlette.sse import EventSourceResponse

from orchlive.api.deps import StoreDep
from orchlive.api.errors import UNPROCESSABLE
from orchlive.event_ids import event_id, split, validate_resume_id
from orchlive.models import now
from orchlive.store import Store, WatchEvent

router = APIRouter(prefix="/api/v1/events", tags=["events"])


@router.get("")
async def stream_events(
    request: Request,
    store: StoreDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
    since: Annotated[
        str | None, Query(max_length=64, description="replay the events after this event id (0: from the start)")
    ] = None,
) -> EventSourceResponse:
    """A ``text/event-stream`` of events ``{id, type, object, timestamp}``."""
    given = last_event_id if last_event_id is not None else since
    revision = await store.revision()  # before the stream starts: etcd unreachable is a 503
    if given is None:
        return EventSourceResponse(_stream(request, store, revision + 1, -1), ping=10)
    try:
        after = validate_resume_id(given, current_revision=revision)
    except ValueError as err:
        raise HTTPException(status_code=UNPROCESSABLE, detail=str(err)) from None
    # The events after ``after`` may share its revision: watch from that revision, skip up to it.
    return EventSourceResponse(_stream(request, store, max(split(after)[0], 1), after), ping=10)


async def _stream(request: Request, store: Store, start: int, after: int) -> AsyncIterator[dict[str, str]]:
    """The events recorded from revision ``start`` on whose id is above ``after``, as SSE messages."""
    async for change in store.watch(store.keys.events(), start, tell_compacted=True):
        if await request.is_disconnected():
            return
        if change.kind == "compacted":
            if after > 0:  # "from the start" (0) promised nothing: it starts where history does
                yield _expired(after, change)
            continue
        if change.kind != "put":
            continue
        body = json.loads(change.value)
        ident = event_id(change.create_revision, int(body.pop("index", 0)))
        if ident <= after:
            continue  # the part of the resume point's transaction already delivered
        event = {"id": ident, **body}
        yield {"id": str(ident), "event": event["type"], "data": json.dumps(event)}


def _expired(after: int, change: WatchEvent) -> dict[str, str]:
    """The message that replaces the events etcd no longer holds: what was asked, where it carries on."""
    resumes = event_id(change.mod_revision, 0)
    event = {
        "id": resumes - 1 if resumes else 0,
        "type": "events.expired",
        "object": {"requested_after": after, "resumes_at": resumes, "reason": "resume point expired"},
        "timestamp": now().isoformat(),
    }
    return {"id": str(event["id"]), "event": "events.expired", "data": json.dumps(event)}
