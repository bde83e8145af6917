"""Which worker a node name belongs to: one data directory, one process, one name.

A node name is how the master addresses a worker (its inbox, its ledger). Two workers
under one name would both take every task placed there: two copies of one task at once.
So a worker keeps a token in its data directory (``instance``), registered with its node
record; another worker, from another directory, is refused the name while the holder's
lease is alive (``transitions.NodeNameInUseError``). A worker restarted from the same
directory is the same worker and takes its name back at once. Two processes sharing one
directory are stopped earlier, by an exclusive lock on it.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO

from orchlive import transitions
from orchlive.models import NodeRecord
from orchlive.store import Store

__all__ = ["DataDirInUseError", "claim_name", "instance_token", "lock_data_dir"]

log = logging.getLogger(__name__)

INSTANCE_FILE = "instance"
LOCK_FILE = "lock"


class DataDirInUseError(Exception):
    """Another process holds the data directory's lock."""


def instance_token(data_dir: Path) -> str:
    """The worker's token, kept in ``data_dir``: made on the first start, the same after every restart."""
    path = data_dir / INSTANCE_FILE
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if not token:
        data_dir.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        tmp = path.with_suffix(".tmp")
        tmp.write_text(token + "\n")
        os.replace(tmp, path)
    return token


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold ``data_dir``'s exclusive lock for as long as the returned file stays open.

    Raises:
        DataDirInUseError: another live process holds it (the lock goes with its process,
            even after ``kill -9``: no stale lock to clean up).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held open for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataDirInUseError(f"{data_dir} is in use by another worker process") from None
    return handle


async def claim_name(store: Store, record: NodeRecord, lease_id: int, refresh: Callable[[], Awaitable[None]]) -> int:
    """Register ``record``; while another worker holds the name, wait for its lease to go, unless it beats.

    A worker restarted from a fresh data dir finds its previous self's lease alive until
    etcd expires it (its TTL, which may be longer than ours; etcd may revoke late): the
    holder's ``alive`` key then stays as it was, and the name is free once it goes. A twin
    (the same name from another machine or directory) beats every TTL / 4: the first beat
    seen is the evidence, and ``NodeNameInUseError`` goes up. ``refresh`` renews this
    worker's own lease while it waits. Returns the registration's revision.
    """
    seen = 0  # the holder's alive key's revision when first refused
    while True:
        try:
            return await transitions.register_node(store, record, lease_id)
        except transitions.NodeNameInUseError as refused:
            if seen and refused.beat != seen:
                raise  # it beat while this one waited: a live twin
            if not seen:
                log.warning("worker %s: the name is held by another worker's lease; waiting for it", record.id)
            seen = refused.beat
            await asyncio.sleep(0.5)
            await refresh()
