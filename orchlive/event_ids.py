"""Event ids: the etcd revision that recorded an event and the event's index within that transaction.

One transaction may record many events (a placement batch writes one per task), all at
one revision, so the revision alone does not tell them apart: resuming "after revision
R" would either replay or skip the rest of R. An id is ``revision * PER_REVISION +
index``: an integer, unique, ordered as the events happened (by revision, then by their
order in the transaction), and a resume point that says exactly which events came before.
"""

from __future__ import annotations

__all__ = ["MAX_EVENT_ID", "MAX_REVISION", "PER_REVISION", "event_id", "split", "validate_resume_id"]

# etcd revisions are signed 64-bit integers; the client library fails (and, in aetcd 1.0,
# leaves its watch machinery wedged) on anything larger, so nothing larger may reach it.
MAX_REVISION = 2**63 - 1
# Events one transaction may record. etcd refuses transactions of more than 128 operations
# by default (``--max-txn-ops``), so this bound is never the one that binds.
PER_REVISION = 1000
MAX_EVENT_ID = MAX_REVISION


def event_id(revision: int, index: int) -> int:
    """The id of event number ``index`` (from 0) of the transaction committed at ``revision``."""
    return revision * PER_REVISION + index


def split(event: int) -> tuple[int, int]:
    """``(revision, index)`` of an event id."""
    return divmod(event, PER_REVISION)


def validate_resume_id(text: str | int, *, current_revision: int) -> int:
    """A resume point (``Last-Event-ID`` or ``?since=``) checked before it goes anywhere near etcd.

    Args:
        text: the id as the client sent it: decimal digits, 0 meaning "from the start".
        current_revision: the store's revision now; an id beyond it was never issued.

    Returns:
        The id, an integer in ``[0, event_id(current_revision, PER_REVISION - 1)]``.

    Raises:
        ValueError: one sentence naming what is wrong (not a whole number, negative,
            beyond the largest etcd revision, or later than any event recorded yet).
    """
    raw = str(text).strip()
    if not raw.isascii() or not raw.isdigit():
        raise ValueError(f"an event id is a whole number >= 0, got {raw[:40]!r}")
    if len(raw) > len(str(MAX_EVENT_ID)) or int(raw) > MAX_EVENT_ID:
        raise ValueError(f"event id {raw[:40]} is out of range (at most {MAX_EVENT_ID})")
    value = int(raw)
    newest = event_id(current_revision, PER_REVISION - 1)
    if value > newest:
        raise ValueError(
            f"event id {value} is later than any event recorded (the store is at revision {current_revision})"
        )
    return value
