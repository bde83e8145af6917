"""``Idempotency-Key`` on ``POST /api/v1/tasks`` and ``/api/v1/dags``: a resent POST returns the first answer's task.

A client whose POST got no answer (a frozen master, a cut connection, a 503 while etcd
changed leader) cannot tell whether its task was created; sending it again used to create a
second copy. With the header, the submission's ids derive from the key (``keyed_id``), so
the create transaction, which compares every id absent, cannot write them twice: the resent
POST finds the task (or the DAG) and answers it with 200 instead of 201, however the two
requests raced. A key reused for a different task (another name, image, command or
resources) is a 422 naming the header. The key lives as long as its task: after a
``DELETE``, the same key creates the task again.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Header, HTTPException

from orchlive import transitions
from orchlive.api.errors import UNPROCESSABLE
from orchlive.models import Task, TaskCreate
from orchlive.store import Store

__all__ = ["IdempotencyKey", "keyed_id", "replayed"]

# Printable ASCII without spaces, as in the IETF draft's examples (a UUID is the usual key).
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="any client-chosen string (a UUID): a resent POST with the same key returns the first task",
    ),
]


def keyed_id(key: str, index: int = 0) -> str:
    """The id of the ``index``-th record a keyed submission creates (16 hex digits, as ``Task`` makes them)."""
    return hashlib.sha256(f"{index}:{key}".encode()).hexdigest()[:16]


def _differs(stored: Task, body: TaskCreate) -> bool:
    """Whether ``body`` is another task than the one stored under the same key."""
    same = ("name", "image", "command", "resources", "replicas")
    return any(getattr(stored, name) != getattr(body, name) for name in same)


async def replayed(store: Store, task_id: str, body: TaskCreate) -> Task | None:
    """The task a first POST with this key created (``task_id`` = ``keyed_id``), or None if there is none.

    Raises:
        HTTPException: 422 when the key was first used for a different task.
    """
    read = await transitions.read_task(store, task_id)
    if read is None:
        return None
    if _differs(read[0], body):
        message = f"this Idempotency-Key was first used for another task ({read[0].id}, {read[0].name!r})"
        error = {"type": "value_error", "loc": ["header", "Idempotency-Key"], "msg": message}
        raise HTTPException(status_code=UNPROCESSABLE, detail=[error])
    return read[0]
