"""The store's connection to etcd: one client at a time over several endpoints, with failover.

Part of the store (with ``orchlive.store`` the only modules that touch the etcd client).
aetcd's ``Client`` talks to one ``host:port``. A ``Connection`` holds the endpoint list
of one etcd cluster (``--etcd a:2379,b:2379,c:2379``, ``ORCH_ETCD``) and one client:

* The first connection, and every one after a loss, probes the endpoints in turn with a
  linearizable read (answered only by a member that is up and part of a quorum) and
  keeps the first that answers. After a loss the probe starts after the endpoint that
  failed and tries it last, so a member that is down is not hammered while others serve.
* A loss is an error about the connection, not the request: unreachable, timed out, no
  leader (``note_failure``). The call that saw it still fails (``StoreUnavailableError``):
  whether a transaction was applied is never guessed; callers already retry.
* The replaced client is closed after one call timeout: its calls in flight finish or
  fail on their own, and its watches end and resume on the new client from their last
  revision (``Store.watch``). Leases live in the etcd cluster, not the connection, so
  heartbeats and the leader's lease carry on across a failover.

With one endpoint nothing of this runs: gRPC reconnects to it by itself, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence

import aetcd
import aetcd.exceptions
import aetcd.rpc

from orchlive.store_types import StoreUnavailableError, parse_endpoints

__all__ = ["MAX_MESSAGE_BYTES", "PROBE_SECONDS", "Connection"]

log = logging.getLogger("orchlive.store")

# The largest reply the client accepts (gRPC's default is 4 MiB): room for a page of
# large records and for a fragmented watch reply, which may pass etcd's limit by one event.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# Seconds an endpoint has to answer a probe before the next one is tried.
PROBE_SECONDS = 2.0
# What says the connection (not the request) failed: the next call moves to another endpoint.
_CONNECTION_LOST = (
    aetcd.exceptions.ConnectionFailedError,
    aetcd.exceptions.ConnectionTimeoutError,
    aetcd.exceptions.WatchTimeoutError,
    ConnectionError,
    OSError,
)
_LOST_CODES = (aetcd.rpc.StatusCode.UNAVAILABLE, aetcd.rpc.StatusCode.DEADLINE_EXCEEDED)


class Connection:
    """An aetcd client on one endpoint of the list at a time; see the module docstring."""

    def __init__(self, endpoints: str | Sequence[str], *, timeout: float, probe_key: str) -> None:
        """Check the endpoints (ValueError naming a bad one); connect later (``connect``).

        Args:
            endpoints: ``"host:port[,host:port...]"`` or a sequence of ``host:port``.
            timeout: seconds per etcd call.
            probe_key: a key the probe reads (any key: it need not exist).
        """
        self.endpoints = [f"{host}:{port}" for host, port in parse_endpoints(endpoints)]
        self.endpoint = self.endpoints[0]  # the one in use
        self.timeout = timeout
        self.probe_key = probe_key.encode()
        self.client = self._client(self.endpoint)
        # With several endpoints the first connection looks for a healthy one, as a failover does.
        self._lost = len(self.endpoints) > 1
        self._used = False
        self._switch_lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    def _client(self, endpoint: str) -> aetcd.Client:
        host, _, port = endpoint.rpartition(":")
        options = {"grpc.max_receive_message_length": MAX_MESSAGE_BYTES}
        return aetcd.Client(host=host, port=int(port), timeout=self.timeout, options=options)

    async def connect(self) -> None:
        """Connect; after a connection loss (several endpoints), to the next healthy endpoint first."""
        if self._lost:
            async with self._switch_lock:
                if self._lost:
                    await self._fail_over()
        with self.unavailable():
            await self.client.connect()

    async def _fail_over(self) -> None:
        """Move to the first endpoint that answers, trying the one that failed last."""
        start = self.endpoints.index(self.endpoint) + 1 if self._used else 0
        for step in range(len(self.endpoints)):
            endpoint = self.endpoints[(start + step) % len(self.endpoints)]
            client = self._client(endpoint)
            if await self._answers(client, endpoint):
                old, self.client, self.endpoint = self.client, client, endpoint
                (log.warning if self._used else log.info)(
                    "etcd: using endpoint %s (of %s)", endpoint, ",".join(self.endpoints)
                )
                self._lost, self._used = False, True
                self._close_later(old)
                return
            with contextlib.suppress(Exception):
                await client.close()
        raise StoreUnavailableError(f"no etcd endpoint answers ({','.join(self.endpoints)})")

    async def _answers(self, client: aetcd.Client, endpoint: str) -> bool:
        """Whether the member serves a linearizable read: it is up and part of a quorum."""
        wait = min(self.timeout, PROBE_SECONDS)
        request = aetcd.rpc.RangeRequest(key=self.probe_key, limit=1, keys_only=True)
        try:
            async with asyncio.timeout(wait):
                await client.connect()
                await client.kvstub.Range(request, timeout=wait, metadata=client.metadata)
        except (aetcd.exceptions.ClientError, aetcd.rpc.AioRpcError, TimeoutError, OSError) as err:
            why = err.details() if isinstance(err, aetcd.rpc.AioRpcError) else repr(err)
            log.info("etcd endpoint %s does not answer: %s", endpoint, why)
            return False
        return True

    def _close_later(self, client: aetcd.Client) -> None:
        """Close a replaced client once its calls had their time; its watches then resume on the new one."""

        async def close() -> None:
            try:
                await asyncio.sleep(self.timeout)
            finally:
                with contextlib.suppress(Exception):
                    await client.close()

        task = asyncio.create_task(close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @contextlib.contextmanager
    def unavailable(self) -> Iterator[None]:
        """Turn the client's errors into ``StoreUnavailableError``, the one error callers handle."""
        try:
            yield
        except aetcd.exceptions.ClientError as err:
            self.note_failure(err)
            raise StoreUnavailableError(str(err)) from err

    def note_failure(self, err: BaseException) -> None:
        """A lost connection (not a refused request) makes the next call fail over."""
        lost = isinstance(err, _CONNECTION_LOST) or (
            isinstance(err, aetcd.rpc.AioRpcError) and err.code() in _LOST_CODES
        )
        if lost and len(self.endpoints) > 1:
            self._lost = True

    async def close(self) -> None:
        for task in list(self._closing):
            task.cancel()
        await self.client.close()
