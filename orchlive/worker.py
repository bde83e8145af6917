"""A worker: heartbeat lease, watch its inbox, run tasks, report.

* Registration writes the node record and an ``alive`` key bound to a lease; keeping
  the lease alive is the heartbeat. If the worker stops (crash, ``kill -9``, network
  partition) the lease expires and the master requeues its tasks.
* The inbox is ``PREFIX/assign/<node>/``: a key appears when the master places a task
  here and disappears when the task must stop (deleted, evicted, or placed elsewhere
  after this node was presumed lost). Deleting is how the master fences a worker.
* On (re)start the worker reconciles with etcd before watching: tasks ASSIGNED here are
  started, tasks RUNNING here from a previous incarnation (whose processes died with
  it) go back to the queue. Nothing runs twice, nothing is forgotten.
* A worker whose lease expired while it was cut off first stops every task whose
  inbox key is gone, then registers again (fencing: the Go orchestrator let the old
  copy run on beside the new one).
* At most one copy (README, "At most one copy"): after each renewal the worker knows
  the lease cannot expire before ``sent + TTL``. It writes its *lease deadline*,
  ``sent + TTL - margin``, to ``heartbeat_path``, which every task's supervisor reads
  (``orchlive.runtime.supervisor``: it kills the task at the deadline even when the
  worker is frozen), and stops its tasks itself at the deadline when etcd cannot be
  reached (``lease_watchdog``), recording why. Once etcd answers again those tasks go
  back to the queue with that reason (or, if the lease expired, the master's requeue
  stands and the worker registers anew).
* Devices (``orchlive.devices``): the worker declares them in its record (``devices``,
  its ``gpu`` capacity derived as GPUs x 1000) and gives a task the ones the master
  assigned (``ORCH_DEVICES``, ``CUDA_VISIBLE_DEVICES``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from orchlive import devices as dev
from orchlive import transitions
from orchlive.models import NodeRecord, Resources, Task, TaskState
from orchlive.runtime import Handle, Runtime, TaskSpec, TaskStartError, exit_reason, log_tail
from orchlive.runtime.supervisor import write_deadline
from orchlive.store import Keys, Store, StoreUnavailableError, retrying
from orchlive.worker_checks import AssignmentCheck, assigned_copy
from orchlive.worker_identity import claim_name, instance_token
from orchlive.worker_lease import HEARTBEAT_FILE, check_lease_margin, default_lease_margin, stop_at_deadline

__all__ = ["Worker"]

log = logging.getLogger(__name__)
LOG_TAIL_BYTES = 64 * 1024  # the default of ORCH_LOG_TAIL_BYTES (no flag)
MAX_LOG_TAIL_BYTES = 1024 * 1024  # one etcd request is at most 1.5 MiB
STARTING = 16  # tasks being started at once (``Worker._take_logged``)
TAIL_IN_REPORT = 64 * 1024  # a log tail up to this size goes in the report's transaction


@dataclass
class _Running:
    task: Task
    attempt: int
    handle: Handle
    waiter: asyncio.Task[None]
    stopping: bool = False
    ended: bool = False  # it ended on its own: its outcome is to be reported, not stopped


class Worker:
    """One node of the cluster."""

    def __init__(
        self,
        store: Store,
        runtime: Runtime,
        *,
        node_id: str,
        capacity: Resources,
        labels: dict[str, str] | None = None,
        lease_ttl: int = 5,
        data_dir: Path,
        address: str = "",
        log_tail_bytes: int = LOG_TAIL_BYTES,
        devices: Mapping[str, int] | None = None,
        lease_margin: float | None = None,
        heartbeat_path: Path | None = None,
    ) -> None:
        """``devices``: per kind (``--devices gpu=8``); None: ``ORCH_DEVICES``, else ``devices.declare``'s rule.

        ``lease_margin``: seconds before the lease could expire at which tasks stop
        (``default_lease_margin``). ``heartbeat_path``: where the lease deadline is written
        for the supervisors (default ``data_dir / HEARTBEAT_FILE``; give the runtime the same).

        Raises:
            ValueError: one line, for malformed or contradictory devices (``declare``), or a bad margin.
        """
        self.lease_margin = default_lease_margin(lease_ttl) if lease_margin is None else lease_margin
        check_lease_margin(lease_ttl, self.lease_margin)
        self.heartbeat_path = heartbeat_path or data_dir / HEARTBEAT_FILE
        if devices is None and os.environ.get("ORCH_DEVICES", "").strip():
            devices = dev.parse_devices(os.environ["ORCH_DEVICES"])
        amounts, self.devices = dev.declare(capacity, devices)
        self.store, self.keys, self.runtime, self.node_id = store, store.keys, runtime, node_id
        self.capacity = Resources.model_validate(amounts)
        self.check = AssignmentCheck(self.capacity, self.devices)
        self.labels = labels or {}
        self.lease_ttl = lease_ttl
        self.data_dir = data_dir
        self.instance = instance_token(data_dir)  # the name is this worker's while its lease lives
        self.address = address
        self.log_tail_bytes = log_tail_bytes
        self.lease_id = self.registered_revision = 0  # the lease, and the revision that registered it
        self.running: dict[str, _Running] = {}
        self._taking: set[str] = set()
        self._starting = asyncio.Semaphore(STARTING)
        self.reads = transitions.read_batches(store)
        self.starts = transitions.start_batches(store, node_id)
        self.reports = transitions.report_batches(store, node_id)
        transitions.keep_totals(store, node_id)  # its releases read the node's totals only when needed
        self._unassigned: set[str] = set()  # unassigned while being taken: stop confirmed after
        # Containers a previous incarnation left, by (task, attempt): adopted if etcd still wants them, else removed.
        self.orphans: dict[tuple[str, int], Handle] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.registered = asyncio.Event()
        self.renewed_at = time.monotonic()  # the lease's last grant or renewal: /metrics' heartbeat age
        # When the tasks must have stopped if the lease is not renewed, and when the renewal that set it was sent.
        self.deadline = self.renewal_sent = time.monotonic()
        self.stranded: dict[str, tuple[int, str]] = {}  # stopped at the lease deadline, why: requeued later

    # ------------------------------------------------------------------ registration
    async def register(self) -> int:
        """Write the node record and the alive key under a fresh lease; returns the revision."""
        sent = time.monotonic()
        self.lease_id = await self.store.grant_lease(self.lease_ttl)
        self._renewed(sent)
        record = NodeRecord(
            id=self.node_id,
            address=self.address,
            runtime=self.runtime.name,
            capacity=self.capacity,
            devices=self.devices,
            labels=self.labels,
            instance=self.instance,
        )
        self.registered_revision = revision = await claim_name(self.store, record, self.lease_id, self._refresh)
        self.registered.set()
        log.info("worker %s registered (lease %x)", self.node_id, self.lease_id)
        return revision

    async def _refresh(self) -> None:
        """Renew the lease once (while waiting for the name: ours must outlive the wait)."""
        sent = time.monotonic()
        if await self.store.refresh_lease(self.lease_id) > 0:
            self._renewed(sent)

    def _renewed(self, sent: float) -> None:
        """The lease was granted or renewed by a request sent at ``sent``: push the deadline."""
        self.renewed_at = time.monotonic()
        self.renewal_sent = sent
        self.deadline = sent + self.lease_ttl - self.lease_margin
        self.heartbeat_path.parent.mkdir(parents=True, exist_ok=True)
        write_deadline(str(self.heartbeat_path), self.deadline)

    async def heartbeat_loop(self) -> None:
        """Keep the lease alive; after an expiry, fence stale tasks and register again.

        A renewal goes every TTL / 4 counted from when the previous one was sent, not from
        its answer: a slow etcd must not also space the renewals out.
        """
        interval = max(self.lease_ttl / 4, 0.2)
        sent = time.monotonic()
        while True:
            await asyncio.sleep(max(sent + interval - time.monotonic(), 0))
            try:
                sent = time.monotonic()
                ttl = await self.store.refresh_lease(self.lease_id)
                if ttl <= 0:
                    log.warning("worker %s: lease expired; fencing and re-registering", self.node_id)
                    self.registered.clear()  # no new task until the name is ours again (another may take it)
                    await self.fence()
                    await self.register()  # NodeNameInUseError: taken meanwhile; ``run`` ends the worker
                    await self.reconcile()
                    self.stranded.clear()  # reconcile requeued those the master had not
                elif not self.registered.is_set():  # a re-registration that etcd cut short: finish it
                    self._renewed(sent)
                    await self.register()
                    await self.reconcile()
                    self.stranded.clear()
                else:
                    self._renewed(sent)
                    await self._requeue_stranded()
                    await transitions.beat(self.store, self.node_id, self.lease_id)
            except StoreUnavailableError as err:
                log.info("heartbeat: etcd unavailable (%s)", err)

    async def lease_watchdog(self) -> None:
        """Stop every task at the lease deadline, recording why (``worker_lease.stop_at_deadline``)."""
        await stop_at_deadline(self)

    async def _requeue_stranded(self) -> None:
        """Send the tasks stopped at the lease deadline back to the queue, if still placed here."""
        for task_id, (attempt, reason) in list(self.stranded.items()):
            await transitions.requeue(self.store, task_id, self.node_id, reason, attempt=attempt)
            self.stranded.pop(task_id, None)

    async def fence(self) -> None:
        """Stop every local task whose inbox key is gone (it was placed elsewhere or deleted)."""
        for task_id in list(self.running):
            if await self.store.get(self.keys.assignment(self.node_id, task_id)) is None:
                await self._stop(task_id, "fenced: placed elsewhere while this node was lost")

    # ------------------------------------------------------------------ inbox
    async def reconcile(self) -> int:
        """Bring local reality in line with etcd; returns the revision to watch the inbox from."""
        entries, revision = await self.store.range(self.keys.assignments(self.node_id), keys_only=True)
        assigned = {Keys.last(e.key) for e in entries}
        for task_id in list(self.running):
            if task_id not in assigned:
                await self._stop(task_id, "no longer assigned here")
        for task_id in assigned:
            if task_id not in self.running:
                await self._take_contained(task_id)
        return revision + 1

    async def inbox_loop(self, start_revision: int) -> None:
        async for event in self.store.watch(self.keys.assignments(self.node_id), start_revision):
            task_id = Keys.last(event.key)
            if event.kind == "put":
                if not self.registered.is_set():
                    continue  # re-registering: the name may be another's now; reconcile takes what is ours
                if task_id not in self.running and task_id not in self._taking:
                    self._taking.add(task_id)  # started concurrently: a slow start must not hold up the inbox
                    copy = assigned_copy(event, self.deadline, self.registered_revision)  # or None: read it
                    taking = asyncio.create_task(self._take_logged(task_id, copy))
                    self._background.add(taking)
                    taking.add_done_callback(self._background.discard)
            else:
                try:
                    killed = await self._stop(task_id, "unassigned")
                    if task_id in self._taking:
                        self._unassigned.add(task_id)  # confirmed once its start gave up (``_take_logged``)
                    elif killed:  # the master may place it again (``orchlive.stopping``)
                        await transitions.stopped(self.store, task_id, self.node_id)
                except StoreUnavailableError as err:
                    log.info("inbox: etcd unavailable (%s); reconciling later", err)

    async def _take_logged(self, task_id: str, copy: tuple[Task, int] | None = None) -> None:
        """``_take``, again until etcd answers: a task left ASSIGNED would hold its place for ever.

        At most ``STARTING`` at a time (read, spawn, report RUNNING); the others wait their
        turn. Hundreds of assignments started all at once filled the event loop so that the
        lease renewal's answer waited behind them: the lease expired and every task was requeued.

        Safe to repeat: until the process starts, ``_take`` only reads and decides; once it
        started, ``_mark_running`` retries on its own and never gives up half-way.
        """
        copies = iter([copy])  # the first try only: a retry reads the task
        try:
            async with self._starting:
                take = lambda: self._take_contained(task_id, next(copies, None))  # noqa: E731
                await retrying(take, what=f"task {task_id}: start")
        finally:
            self._taking.discard(task_id)
        if task_id in self._unassigned:  # unassigned while starting: stop what started, then confirm
            self._unassigned.discard(task_id)
            with contextlib.suppress(StoreUnavailableError):  # unconfirmed, the master waits ``STOP_WAIT``
                if await self.store.get(self.keys.assignment(self.node_id, task_id)) is None:
                    await self._stop(task_id, "unassigned while starting")
                await transitions.stopped(self.store, task_id, self.node_id)

    async def _take_contained(self, task_id: str, copy: tuple[Task, int] | None = None) -> None:
        """``_take``, logging what is not etcd's fault: one bad task must not stop the inbox or the worker."""
        try:
            await self._take(task_id, copy)
        except StoreUnavailableError:
            raise
        except Exception:
            log.exception("task %s: could not be taken", task_id)

    async def _take(self, task_id: str, copy: tuple[Task, int] | None = None) -> None:
        read = copy or await self.reads.submit(task_id)  # with the other tasks just assigned here
        if read is None:
            return
        task, _ = read
        if task.node_id != self.node_id:
            return
        if task.state == TaskState.RUNNING:
            await self._adopt_or_requeue(task)
            return
        if task.state != TaskState.ASSIGNED:
            return
        if (never := self.check.never_fits(task)) is not None:
            reason = f"request exceeds this worker's capacity ({never})"
            await transitions.requeue(self.store, task_id, self.node_id, reason)
            return
        try:
            grants = self.check.grants(task)
        except ValueError as err:
            await transitions.requeue(self.store, task_id, self.node_id, f"devices not on this worker: {err}")
            return
        spec = TaskSpec(
            task_id=task.id,
            attempt=task.attempts,
            image=task.image,
            command=list(task.command),
            env=dict(task.env),
            # The only limits a runtime can enforce; other resources are bookkeeping.
            cpu_millis=task.resources.cpu,
            memory_mib=task.resources.memory,
            log_path=self._log_path(task),
            devices=grants,
            node_has_gpus=self.devices.get(dev.GPU, 0) > 0,
        )
        # Start first, then report RUNNING: once anyone can see RUNNING, the process exists
        # (and, with the process runtime, is already bound to die with this worker).
        try:
            handle = await self.runtime.start(spec)
        except Exception as err:  # whatever the reason, the task fails with it and frees its resources
            reason = str(err) if isinstance(err, TaskStartError) else f"cannot start: {type(err).__name__}: {err}"
            log.warning("task %s could not start: %s", task_id, reason)
            await self._fail_to_start(task, reason)
            return
        started = await retrying(lambda: self._mark_running(read), what=f"task {task_id}: RUNNING")
        if started is None:
            await handle.kill()  # the task moved on while we were starting it
            return
        waiter = asyncio.create_task(self._supervise(started, handle, spec.log_path))
        self.running[task_id] = _Running(started[0], task.attempts, handle, waiter)

    async def _mark_running(self, read: tuple[Task, int]) -> tuple[Task, int] | None:
        """ASSIGNED -> RUNNING for a started process (as ``read``); the task and its revision, None if it moved on.

        Retried while etcd is unavailable (the process runs: dropping it would leave the
        task ASSIGNED for ever, holding its resources). A try whose commit applied but
        whose answer was lost finds the task RUNNING here, at this attempt: that is ours.
        """
        task_id, attempt = read[0].id, read[0].attempts
        if (started := await self.starts.submit(read)) is not None:  # with the starts going together
            return started
        started = await transitions.start(self.store, task_id, self.node_id, attempt)  # alone: read again, decide
        if started is not None:
            return started
        now = await transitions.read_task(self.store, task_id)
        if now is not None:
            task = now[0]
            if task.state == TaskState.RUNNING and task.node_id == self.node_id and task.attempts == attempt:
                return now
        return None

    async def _fail_to_start(self, task: Task, reason: str) -> None:
        """ASSIGNED -> RUNNING -> FAILED with ``reason``: the report frees the task's resources."""
        if (started := await transitions.start(self.store, task.id, self.node_id, task.attempts)) is not None:
            await transitions.finish(
                self.store, task.id, self.node_id, task.attempts, exit_code=None, reason=reason, known=started
            )

    def _log_path(self, task: Task) -> Path:
        return self.data_dir / "logs" / f"{task.id}-{task.attempts}.log"

    async def _adopt_or_requeue(self, task: Task) -> None:
        """A task etcd says RUNNING here at (re)start: adopt its container, or send it back to the queue."""
        orphan = self.orphans.pop((task.id, task.attempts), None)
        if orphan is None:
            # Its process died with the previous worker, or was stopped at the lease deadline.
            _, why = self.stranded.pop(task.id, (0, "worker restarted while the task ran"))
            await transitions.requeue(self.store, task.id, self.node_id, why, attempt=task.attempts)
            return
        log_path = self._log_path(task)
        if hasattr(orphan, "log_path"):
            orphan.log_path = log_path  # type: ignore[attr-defined]
        waiter = asyncio.create_task(self._supervise((task, 0), orphan, log_path))
        self.running[task.id] = _Running(task, task.attempts, orphan, waiter)
        log.info("adopted %s for task %s", orphan.describe(), task.id)

    async def _supervise(self, running: tuple[Task, int], handle: Handle, log_path: Path) -> None:
        """Wait for the end (or the timeout), then report the outcome.

        ``running``: the task as RUNNING and its revision (0: unknown), which the report
        tries first without reading it again.
        """
        task, attempt = running[0], running[0].attempts
        reason = None
        try:
            if task.timeout is not None:
                exit_code = await asyncio.wait_for(handle.wait(), timeout=task.timeout)
            else:
                exit_code = await handle.wait()
        except TimeoutError:
            await handle.kill()
            exit_code = await handle.wait()
            reason = f"timed out after {task.timeout:g} s and was killed"
        run = self.running.get(task.id)
        if run is not None:
            run.ended = True
        if run is not None and run.stopping:
            return  # stopped on purpose (unassigned): nothing to report
        if (fenced := handle.fenced()) is not None:  # its supervisor stopped it at the lease deadline
            log.warning("task %s %s", task.id, fenced)
            self.stranded[task.id] = (attempt, fenced)
            self.running.pop(task.id, None)
            with contextlib.suppress(StoreUnavailableError):
                await self._requeue_stranded()
            return
        if reason is None:
            reason = handle.failure_reason()
        if reason is None and exit_code != 0:
            reason = exit_reason(exit_code)
        tail = log_tail(log_path, self.log_tail_bytes)
        await retrying(lambda: self._report(running, exit_code, reason, tail), what=f"report of task {task.id}")
        self.running.pop(task.id, None)

    async def _report(self, running: tuple[Task, int], exit_code: int, reason: str | None, tail: bytes) -> None:
        """The outcome, with the log's tail in the same transaction (a long tail first, on its own).

        With the reports of the tasks ending meanwhile when it can (``ReportBatcher``), else alone.
        """
        report = transitions.Report(running, exit_code, reason, tail)
        if transitions.batchable(report) and await self.reports.submit(report):
            return
        task = running[0]
        if len(tail) > TAIL_IN_REPORT:  # the report's transaction stays well under etcd's request limit
            await transitions.save_log_tail(self.store, task.id, tail)
        await transitions.finish(
            self.store,
            task.id,
            self.node_id,
            task.attempts,
            exit_code=exit_code,
            reason=reason,
            known=running if running[1] else None,
            log_tail=tail if len(tail) <= TAIL_IN_REPORT else None,
        )

    async def _stop(self, task_id: str, why: str) -> bool:
        """Kill the task's copy here, if one runs; True if it was still running (not ending on its own)."""
        run = self.running.pop(task_id, None)
        if run is None:
            return False
        log.info("stopping task %s (%s)", task_id, why)
        run.stopping, running = True, not run.ended  # read before the kill: its end sets ``ended``
        await run.handle.kill()
        run.waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run.waiter
        return running

    # ------------------------------------------------------------------ run
    async def run(self) -> None:
        await retrying(self.store.connect, what="worker: connect")
        await retrying(self.register, what="worker: register")
        self.orphans = await self.runtime.orphans()
        start = await retrying(self.reconcile, what="worker: reconcile")
        for key, orphan in list(self.orphans.items()):
            log.info("removing %s of task %s: no longer wanted here", orphan.describe(), key[0])
            await orphan.kill()
        self.orphans.clear()
        beats = asyncio.create_task(self.heartbeat_loop())
        watchdog = asyncio.create_task(self.lease_watchdog())
        inbox = asyncio.create_task(self.inbox_loop(start))
        try:
            # The heartbeat ends the worker too: a name another worker took while this one was
            # cut off must not be served by both (``NodeNameInUseError`` goes up to the CLI).
            done, _ = await asyncio.wait({beats, inbox}, return_when=asyncio.FIRST_COMPLETED)
            for ended in done:
                ended.result()
        finally:
            inbox.cancel()
            beats.cancel()
            watchdog.cancel()
            for task_id in list(self.running):
                await self._stop(task_id, "worker shutting down")

    async def shutdown(self) -> None:
        """Leave cleanly: stop local tasks and give up the lease (the master requeues at once)."""
        for task_id in list(self.running):
            await self._stop(task_id, "worker shutting down")
        with contextlib.suppress(StoreUnavailableError):
            await self.store.revoke_lease(self.lease_id)
