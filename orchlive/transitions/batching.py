"""Group commit: the calls that arrive while a transaction is in flight go together in the next one.

Under load a writer spends most of a transition waiting on its own transaction: one round
trip and one raft entry each. A ``GroupCommit`` queues each call; while one batch is in
flight the next calls gather, and go together (``commit`` of the batch). A lone call still
goes at once, alone: nothing waits on a timer. Batches stay within etcd's limits: at most
``max_items`` calls (etcd refuses more than 128 operations in a transaction) and about
``max_bytes`` (its request limit is 1.5 MiB).

``commit`` answers each call of the batch, in order: a result, or an exception that call
raises. If ``commit`` itself raises (etcd unavailable), every call of the batch raises it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """Queues calls and commits them in batches (see the module docstring).

    Args:
        commit: Writes a batch; one answer per item (a result, or an exception to raise).
        size: An upper estimate of an item's bytes in the transaction.
        key: Items with the same key never share a batch (etcd refuses a key written twice).
    """

    def __init__(
        self,
        commit: Callable[[list[T]], Awaitable[list[R | Exception]]],
        *,
        max_items: int,
        max_bytes: int,
        size: Callable[[T], int],
        key: Callable[[T], Hashable] | None = None,
    ) -> None:
        self.commit = commit
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.size = size
        self.key = key
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.transactions = 0  # how many batches were committed (tests, benchmarks)

    async def submit(self, item: T) -> R:
        """``item``'s answer, once the batch it joined is committed."""
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await done

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        """The next batch: the oldest waiting calls, within the limits (at least one)."""
        size, count, keys = 0, 0, set()
        for item, _ in self._waiting:
            cost = self.size(item)
            key = None if self.key is None else self.key(item)
            if count and (count >= self.max_items or size + cost > self.max_bytes or (key is not None and key in keys)):
                break
            size, count = size + cost, count + 1
            keys.add(key)
        batch, self._waiting = self._waiting[:count], self._waiting[count:]
        return batch

    async def _flush(self) -> None:
        while self._waiting:
            batch = [(item, done) for item, done in self._take() if not done.cancelled()]  # callers that left
            if not batch:
                continue
            try:
                answers = await self.commit([item for item, _ in batch])
            except asyncio.CancelledError:
                for _, done in batch + self._waiting:
                    done.cancel()
                raise
            except Exception as err:  # etcd unavailable: every call of the batch says so
                answers = [err] * len(batch)
            else:
                self.transactions += 1
            for (_, done), answer in zip(batch, answers, strict=True):
                with contextlib.suppress(asyncio.InvalidStateError):  # the caller left meanwhile
                    if isinstance(answer, Exception):
                        done.set_exception(answer)
                    else:
                        done.set_result(answer)
