"""The scheduling loop: etcd watch -> NodeMatrix -> ``orchsim.scheduling.schedule_pass`` -> transactions.

Event-driven, never polling: any change under the cluster prefix (a task created or
finished, a worker joining or losing its lease, a drain) wakes the loop, which runs
one pass over pending tasks, highest priority first, then in creation order. The pass
is the very one the simulator runs (queue discipline, filters, ``select``, never-fits rule, same defaults); the
master only builds the matrix from etcd and commits the decisions through
``transitions.place`` (compare-and-swap transactions), keeping in its cache the tasks and
ledgers the transition returns, so that the next decisions see them before the watch does.

Nodes enter the matrix sorted by id, so a live cluster and a simulation of the same
capacities number their nodes alike (placement parity). Its rows are every resource
name in use: cpu, memory and gpu always, plus any other name a worker offers or a
pending task asks for (a request for a resource no worker has then gets a row of zero
capacity, and the reason "0/3 nodes fit: 3 insufficient disk"). Device kinds the workers
declare (``gpu``) are tracked per device (``orchlive.node_matrix``): a decision names the
devices, and ``transitions.place`` writes them to the task and the node's ledger.
``round_robin``'s cursor and the random policies' generator live in the ``PreparedPolicy``
the master keeps for its lifetime (the simulator's policy stream for the same seed).

A policy that needs its target workload (``fgd``: ``--policy-param workload=[...]``, a list of
``{cpu, gpu, weight}`` shapes; the simulator learns it from its workload) places nothing on a
cluster with GPUs until given one: the pending tasks say so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from orchlive import transitions
from orchlive.cache import ClusterCache, read_cache
from orchlive.dependencies import hold
from orchlive.devices import DeviceConflictError, check_amount
from orchlive.election import Election
from orchlive.gangs import GangPass, keep_whole
from orchlive.models import Task
from orchlive.node_matrix import MatrixBuilder
from orchlive.preemption import Evictions, commit_evictions
from orchlive.stopping import StopWaits
from orchlive.store import Keys, Store, StoreUnavailableError, WatchEvent, retrying
from orchsim.scheduling import (
    DEFAULTS,
    FILTERS,
    FilterError,
    NodeMatrix,
    PreparedPolicy,
    could_ever_fit,
    explain_never,
    schedule_pass,
)
from orchsim.scheduling.pass_extensions import PassExtensions
from orchsim.scheduling.queueing import random_streams

__all__ = ["Master"]

log = logging.getLogger(__name__)
# Placements committed per etcd transaction at most (etcd's default limit is 128 operations;
# a placement costs 3 puts and 1 compare, plus 1 put and 2 compares per node touched).
BATCH = 24
BATCH_BYTES = 1024 * 1024  # below etcd's default request limit of 1.5 MiB, with room for the compares
# Seconds the master waits past a node's lease expiry before rerunning its tasks elsewhere
# (--lost-grace, ORCH_LOST_GRACE): with the worker's margin, time for a copy to stop first.
LOST_GRACE = 2.0
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)  # s, decision + commit
SLOW_PASS = 1.0  # seconds of deciding that get a warning: the API, the watch and the leadership lease wait meanwhile


def batches(placements: list[transitions.Placement]) -> list[list[transitions.Placement]]:
    """The placements cut into transactions of at most ``BATCH`` tasks and about ``BATCH_BYTES``.

    A transaction carries each task two or three times (the record, its event, and a small
    one's copy in the inbox: ``transitions.place_size``); etcd refuses a request over 1.5 MiB,
    and a refused batch would be retried for ever. One task always fits alone: submissions
    are bounded (``orchlive.limits``) far below that.
    """
    out: list[list[transitions.Placement]] = []
    size = 0
    for p in placements:
        cost = transitions.place_size(p.task)
        if not out or len(out[-1]) >= BATCH or size + cost > BATCH_BYTES:
            out.append([])
            size = 0
        out[-1].append(p)
        size += cost
    return out


class Master:
    """Scheduling and health monitoring for one cluster prefix."""

    def __init__(
        self,
        store: Store,
        policy: str,
        *,
        seed: int = 0,
        params: dict[str, Any] | None = None,
        queue: str = DEFAULTS.queue,
        backfill_window: int = DEFAULTS.backfill_window,
        filters: dict[str, dict[str, Any]] | None = None,
        sample: str | dict[str, Any] | None = None,
        preemption: bool = False,
        plugins: list[str] | None = None,
        candidate: str = "master",
        leader_ttl: int = 5,
        lost_grace: float = LOST_GRACE,
    ) -> None:
        self.store, self.keys, self.policy = store, store.keys, policy
        self.params = params or {}
        self.seed = seed  # shown by /health, for recordings (orchlive.record)
        self.queue, self.backfill_window = queue, backfill_window
        self.preemption = preemption  # a task that fits nowhere may evict lower-priority ones (``orchlive.preemption``)
        self.tried: set[str] = set()  # pending tasks some pass has tried: backfill retries them in its window
        self.set_aside: set[str] = set()  # never fitting: PENDING, out of the queue, until the cluster's shape changes
        self._shape: tuple[Any, ...] = ()
        self.filter_config, self.sample, self.plugins = dict(filters or {}), sample, list(plugins or [])  # /health
        self.filters = FILTERS.active(filters or {})  # resolved once, as the simulator does
        # Prepared once, kept across passes with its state (the simulator's stream for the seed; a cursor).
        self.prepared = PreparedPolicy(
            policy, filters=self.filters, rng=random_streams(seed)[0], params=self.params, sample=sample
        )
        self.cache, self.wake = ClusterCache(), asyncio.Event()
        self._matrices = MatrixBuilder()
        self._blocked: dict[str, str] = {}  # pending tasks the pass skips, with the reason (``_unplaceable``)
        self._held: dict[str, str] = {}  # pending tasks waiting for their parents (``orchlive.dependencies``)
        self._stops = StopWaits(self.wake)  # evicted tasks waiting for their old copy to stop (``orchlive.stopping``)
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum, self.decisions = 0.0, 0
        self.is_leader = asyncio.Event()  # set by the election while this master leads
        self.election = Election(store, candidate, self.is_leader, ttl=leader_ttl)
        self.ready = asyncio.Event()
        self._lost_handled: set[str] = set()
        self.lost_grace = lost_grace  # seconds past a lease's expiry before its node is lost
        self._lost_since: dict[str, float] = {}  # nodes seen without their lease, since (time.monotonic)
        self._grace_wake: float | None = None  # when the grace timer wakes the loop (time.monotonic)
        self._since_load: list[WatchEvent] | None = None  # the watch's changes while ``load`` reads

    # ------------------------------------------------------------------ state mirror
    async def load(self) -> int:
        """Read tasks, nodes, heartbeats and ledgers (one snapshot); returns the revision to watch from.

        Never events or logs: what the master reads at start-up grows with the cluster,
        not with its history (``Keys.mirrored``). When the watch already runs (leadership
        regained), the changes it applies during the read go to the new cache as well if
        newer than the read: else they were lost with the old cache (tasks left PENDING
        that no pass saw, seen in issue 13's load runs after a lost leadership).
        """
        self._since_load = []
        try:
            cache, revision = await read_cache(self.store, self.keys.mirrored())
        finally:
            seen, self._since_load = self._since_load, None
        for event in seen:  # what the watch brought meanwhile (a leader again): on the new cache too
            if event.mod_revision > revision:
                cache.apply(self.keys, event)
        self.cache = cache
        # Nodes already dead at start-up need handling only if they still hold tasks.
        self._lost_handled = {n for n in cache.nodes if n not in cache.alive and not cache.ledger(n).count}
        return revision + 1

    async def watch_loop(self, start_revision: int) -> None:
        async for event in self.store.watch(self.keys.root(), start_revision):
            if self._since_load is not None:
                self._since_load.append(event)
            if self.cache.apply(self.keys, event):
                if event.key.startswith(self.keys.alive_all()):
                    node = Keys.last(event.key)
                    if event.kind == "put":
                        self._lost_handled.discard(node)
                        self._lost_since.pop(node, None)
                self.wake.set()

    # ------------------------------------------------------------------ the matrix
    @property
    def matrix(self) -> NodeMatrix | None:
        """The matrix of the last pass (None before the first, or after a lost compare-and-swap)."""
        return self._matrices.matrix

    def _node_matrix(self, pending: list[tuple[Task, int]]) -> NodeMatrix:
        """The NodeMatrix for the current nodes, their devices and the resources in use (``node_matrix``)."""
        return self._matrices.build(self.cache, pending)

    # ------------------------------------------------------------------ scheduling
    async def schedule_pass(self) -> int:
        """One pass of the shared core over the pending tasks; returns how many were placed.

        ``orchsim.scheduling.schedule_pass`` decides, as it does in the simulator: the same
        queue discipline, filters, policy and never-fits rule, highest priority first then
        in creation order, each decision seeing the ones before it on the matrix; with
        ``preemption``, the same victims (``orchlive.preemption``), evicted in etcd before
        the placements. Here the placements are then
        committed in batches of up to ``BATCH`` per transaction, and every task tried and
        left waiting gets its reason. "Never" means no node of the cluster as it is could
        hold the task even empty; it stays PENDING (a worker may join) but does not block.
        """
        if (pending := await self._settled()) is None:
            return 0  # gangs or dependencies moved tasks: the next pass sees them
        matrix = self._node_matrix(pending)
        tasks = {task.id: (task, revision) for task, revision in pending}
        gangs = GangPass(self._matrices, matrix, tasks)
        everyone = np.ones(matrix.n_nodes, dtype=bool)
        placements: list[transitions.Placement] = []
        deciding: list[str] = []  # the task the pass is deciding on: a decision that raises is that task's

        @functools.cache
        def request_of(tid: str) -> np.ndarray:  # only for the tasks the pass reaches (fifo stops at the head)
            return matrix.request_vector(tasks[tid][0].resources.as_request())

        def selector_of(tid: str) -> dict[str, str] | None:
            deciding[:] = [tid]
            return tasks[tid][0].node_selector or None

        def place(tid: str, node: int, devices: Mapping[str, tuple[int, ...]]) -> None:
            task, revision = tasks[tid]
            self._matrices.allocate(node, task, request_of(tid), devices)  # with the decision's devices
            placements.append(transitions.Placement(task, revision, matrix.ids[node], devices))

        def never_fits(tid: str) -> bool:  # a gang: also if its min_replicas could never run together
            ever = could_ever_fit(matrix, request_of(tid), everyone, selector_of(tid), extra=self.filters)
            return not ever or gangs.never_fits(tid, request_of(tid), selector_of(tid))

        began = time.perf_counter()
        queue = gangs.queue(self._queue(matrix, tasks))
        new = [tid for tid in queue if tid not in self.tried]  # tried on arrival, past the window too
        try:
            result = schedule_pass(
                matrix,
                queue,
                self.prepared,
                request_of=request_of,
                place=place,
                discipline=self.queue,
                window=self.backfill_window,
                selector_of=selector_of,
                never_fits=never_fits,
                new=new,
                explain=True,
                extensions=self._extensions(matrix, gangs, request_of),
            )
        except Exception as err:  # a user's policy raised, most likely: that task waits, not the queue
            return await self._decision_failed(tasks, deciding, err)
        self.tried = (self.tried & tasks.keys()) | set(new)
        await self._note_waiting(matrix, tasks, result, (request_of, selector_of), gangs)
        return await self._commit_pass(result, placements, began, gangs)

    async def _commit_pass(self, result: Any, placements: list[transitions.Placement], began: float, gangs: Any) -> int:
        """The pass's evictions, then its placements; returns how many were placed.

        The victims go first: each preemptor's placement then compares a ledger without them.
        A pass that decided for longer than ``SLOW_PASS`` held the loop up: it says so, naming the policy.
        """
        if (took := time.perf_counter() - began) > SLOW_PASS:
            log.warning("a pass took %.1f s deciding %d tasks (policy %s)", took, result.decisions, self.policy)
        if result.preempted and not await commit_evictions(self.store, self.cache, result.preempted):
            self._matrices.reset()
            self.wake.set()
        return await self._commit_all(placements, began, gangs.commits)

    async def _decision_failed(self, tasks: dict[str, tuple[Task, int]], deciding: list[str], err: Exception) -> int:
        """A decision raised: set its task aside with the reason, log it, and pass again without it.

        Kubernetes keeps a pod its plugins fail on pending with the error, and schedules
        the others. Here the exception used to end the scheduling loop: the master went on
        serving its API, placed nothing more, and said nothing. The pass's placements so
        far are dropped (the kept matrices forget them); the next pass makes them again.
        """
        self._matrices.reset()
        self.wake.set()
        if not deciding or deciding[0] not in tasks:
            raise err
        tid = deciding[0]
        what = str(err) if isinstance(err, FilterError) else f"policy {self.policy} raised {type(err).__name__}: {err}"
        log.error("task %s: %s; set aside until the cluster changes", tid, what, exc_info=err)
        self.set_aside.add(tid)
        why = f"{what} (set aside until the cluster changes)"
        await self._note_unplaced(*tasks[tid], why)
        return 0

    async def _settled(self) -> list[tuple[Task, int]] | None:
        """The pending tasks once gangs are whole and children of failed parents settled; None if any moved."""
        if await keep_whole(self.store, self.cache):
            self.wake.set()
            return None
        pending = self.cache.pending()
        self._held, settled = await hold(self.store, self.cache, pending)
        if settled:
            self.wake.set()
            return None
        return pending

    def _extensions(self, matrix: NodeMatrix, gangs: GangPass, request_of: Any) -> PassExtensions | None:
        """Preemption's callbacks (``--preemption``) and gangs' (when the queue holds one), or None."""
        base = Evictions(self.cache, self._matrices, matrix).extensions() if self.preemption else None
        if not gangs.any:
            return base
        place_gang = gangs.place_gang(request_of)
        return dataclasses.replace(base or PassExtensions(), gang_of=gangs.gang_of, place_gang=place_gang)

    async def _note_waiting(
        self, matrix: NodeMatrix, tasks: dict[str, tuple[Task, int]], result: Any, of: Any, gangs: GangPass
    ) -> None:
        """Every task left waiting gets its reason: blocked, never fitting (explained), or the pass's.

        Those never fitting are set aside; a gang's reason goes on each of its replicas.
        ``of``: the pass's ``(request_of, selector_of)``.
        """
        self.set_aside |= set(result.never)
        never = {tid: (of[0](tid), of[1](tid)) for tid in result.never}
        waiting = gangs.spread(result.waiting)
        why_never = {tid: explain_never(matrix, req, sel, extra=self.filters) for tid, (req, sel) in never.items()}
        for tid, reason in (self._blocked | why_never | waiting).items():
            await self._note_unplaced(*tasks[tid], reason)

    def _queue(self, matrix: NodeMatrix, tasks: dict[str, Any]) -> list[str]:
        """Pending task ids in queue order, without those set aside as never fitting this cluster."""
        labels = tuple(tuple(sorted(matrix.labels_of(i).items())) for i in range(matrix.n_nodes))
        shape = (tuple(matrix.ids), matrix.capacity.tobytes(), labels)
        if shape != self._shape:
            self._shape, self.set_aside = shape, set()
        self.set_aside &= tasks.keys()
        self._blocked = self._unplaceable(matrix, tasks) | self._held | self._stopping(tasks)
        return [tid for tid in tasks if tid not in self.set_aside and tid not in self._blocked]

    def _stopping(self, tasks: dict[str, Any]) -> dict[str, str]:
        """Evicted tasks whose old copy has not confirmed its stop yet; a timer wakes the loop when a hold ends."""
        gone = lambda node: node not in self.cache.alive and self._lost_long_enough(node)  # noqa: E731
        return self._stops.held((task for task, _ in tasks.values()), gone)

    def _unplaceable(self, matrix: NodeMatrix, tasks: dict[str, Any]) -> dict[str, str]:
        """Tasks the core must not be asked about, with the reason they wait.

        An amount of a tracked device kind that is neither a share of one device nor whole
        devices (``gpu`` is checked at submission; a kind a worker declared later is not);
        every task when the policy lacks the target workload it needs on a cluster with GPUs.
        """
        if "gpu" in matrix.devices and "workload" in self.prepared.spec.params and "workload" not in self.params:
            shapes = "[{cpu: 1000, gpu: 500, weight: 1}]"
            why = f"policy {self.policy} needs its target workload with GPUs: --policy-param 'workload={shapes}'"
            return dict.fromkeys(tasks, why)
        blocked = {}
        for tid, (task, _) in tasks.items():
            for kind in matrix.devices:
                try:
                    check_amount(kind, task.resources.get(kind, 0))
                except ValueError as err:
                    blocked[tid] = str(err)
        return blocked

    async def _commit_all(self, placements: list[transitions.Placement], began: float, gangs: Any = ()) -> int:
        """Commit the placements in batches (``batches``), then each gang in one; returns how many were placed."""
        placed = 0
        for batch, spare in [(batch, ()) for batch in batches(placements)] + list(gangs):
            if not await self._commit(batch, began, spare):
                return placed
            placed += len(batch)
            began = time.perf_counter()
        return placed

    async def _commit(self, batch: list[transitions.Placement], began: float, spare: Any = ()) -> bool:
        try:
            placed = await transitions.place(self.store, batch, self.cache.ledgers, spare=spare)
        except DeviceConflictError as err:  # decided on other devices than the ledgers': re-read them
            log.error("placement refused by a ledger (%s); re-reading", err)
            placed = transitions.Placed(False, 0, [], {})
        elapsed = time.perf_counter() - began
        for _ in batch:
            self._observe(elapsed / len(batch))
        if not placed.applied:
            # Someone moved first (another master, a worker's report): re-read what we used,
            # rebuild the matrix from the truth, and try again on the next pass.
            for p in batch:
                await self._refresh(p.task.id, p.node_id)
            self._matrices.reset()
            self.wake.set()
            return False
        # Mirror our own write at once (the watch confirms it later) so the next decisions see it.
        for node_id, ledger in placed.ledgers.items():
            self.cache.ledgers[node_id] = (ledger, placed.revision)
        for task in placed.tasks:
            self.cache.tasks[task.id] = (task, placed.revision)
            if task.node_id and task.state.holds_resources:
                self.cache.note_placed(task.node_id, task.id)
        return True

    async def _refresh(self, task_id: str, node_id: str) -> None:
        read = await transitions.read_task(self.store, task_id)
        if read is None:
            self.cache.tasks.pop(task_id, None)
        else:
            self.cache.tasks[task_id] = read
        self.cache.ledgers[node_id] = await transitions.read_ledger(self.store, node_id)

    async def _note_unplaced(self, task: Task, revision: int, reason: str) -> None:
        """Keep the reason a task waits visible on the task itself (no event: it is not a transition)."""
        if task.reason == reason:
            return
        noted = await transitions.note_reason(self.store, task, revision, reason)
        if noted is not None:
            self.cache.tasks[task.id] = noted

    def _observe(self, seconds: float) -> None:
        self.decisions += 1
        self.latency_sum += seconds
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.latency_counts[i] += 1
                return
        self.latency_counts[-1] += 1

    # ------------------------------------------------------------------ health
    def _lost_long_enough(self, node_id: str) -> bool:
        """Whether ``lost_grace`` seconds passed since this master first saw the node without its lease.

        The first sight is no earlier than the expiry (the watch reports the deletion, or
        a new leader sees the node already gone), so a copy still running there has had
        the worker's margin plus the grace to stop. Until then a timer wakes the loop.
        """
        now = time.monotonic()
        due = self._lost_since.setdefault(node_id, now) + self.lost_grace
        if now >= due:
            return True
        if self._grace_wake is None or self._grace_wake <= now or due < self._grace_wake:
            asyncio.get_running_loop().call_later(due - now, self.wake.set)
            self._grace_wake = due
        return False

    async def handle_lost_nodes(self) -> None:
        """Requeue the tasks of every node whose lease expired ``lost_grace`` seconds ago (once per loss)."""
        for node_id in list(self.cache.nodes):
            if node_id in self.cache.alive or node_id in self._lost_handled:
                continue
            if not self._lost_long_enough(node_id):
                continue
            if await self.store.get(self.keys.alive(node_id)) is not None:
                continue  # back already: a leader paused meanwhile must not act on what it saw before
            placed = self.cache.on_node(node_id)
            for task_id in placed:  # each only while the node is still gone (it may register meanwhile)
                await transitions.requeue(
                    self.store, task_id, node_id, f"node {node_id} lost (heartbeat lease expired)", node_lost=True
                )
            if await self.store.get(self.keys.alive(node_id)) is not None:
                log.info("node %s registered again while its tasks were requeued", node_id)
                continue
            await transitions.node_lost(self.store, self.cache.node_view(node_id))
            self._lost_handled.add(node_id)
            log.info("node %s lost; requeued %d task(s)", node_id, len(placed))

    # ------------------------------------------------------------------ run
    async def run(self) -> None:
        """Mirror etcd, campaign for leadership, and while leading schedule on every change."""
        start = await retrying(self.load, what="master: initial load")
        watcher = asyncio.create_task(self.watch_loop(start))
        election = asyncio.create_task(self.election.run())
        self.ready.set()
        self.wake.set()
        leading = False
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                if not self.is_leader.is_set():
                    leading = False
                    await self.is_leader.wait()
                try:
                    if not leading:
                        # Just took over: start from etcd's truth, not from what a standby saw.
                        await self.load()
                        self._matrices.reset()
                        leading = True
                    await self.handle_lost_nodes()
                    await self.schedule_pass()
                except Exception as err:  # etcd away, or a bug: the loop must not end (the API would serve on, idle)
                    bug = not isinstance(err, StoreUnavailableError)
                    log.log(logging.ERROR if bug else logging.INFO, "scheduling pass: %s; retrying", err, exc_info=bug)
                    await asyncio.sleep(0.5)
                    leading = False
                    self.wake.set()
        finally:
            watcher.cancel()
            election.cancel()
            await self.election.resign()
