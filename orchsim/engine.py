"""The discrete-event cluster: SimPy events around one ``env.run()``.

Design, for speed and for truth:

* No SimPy process per task. Arrivals are one process walking the pre-generated,
  sorted submit times; a task's completion is one ``Timeout`` with a callback. Placing
  tasks is one call of the shared core's ``schedule_pass`` (queue discipline, filters,
  ``select``), the same pass the live master runs: the engine neither scores nodes nor
  decides the order in which queued tasks are tried.
* Event-driven placement: a task is placed on arrival and whenever capacity frees up
  (completion, node recovery, scale-out). There is no polling loop.
* No work when nothing can fit: a queued task that failed to place can only fit after
  capacity is freed, and only on the node that freed it, so after a completion the
  pass is told which node changed and checks a task against that one node (an R-vector
  comparison) before paying for a full ``select``.
* Node failures are realistic: a failed node stops heartbeating; until its lease
  expires (last heartbeat + ``failure_timeout``) the scheduler still believes it up and
  may place tasks there, which are then lost too. At detection every task on it goes
  back to the queue (front, in submission order) with its attempt count raised. A node
  that comes back before its lease expired heartbeats again and is never declared lost,
  but its tasks died with it: they are given up as lost when it returns.
* Two views of the cluster are kept apart. The scheduler's view (what ``select`` sees)
  changes at detection; the physical one (what the metrics measure) changes at the
  failure itself: a dead node has no capacity, and the work lost on it ends when it
  died, so utilisation can never exceed 1.
* Exact time integrals (utilisation, queue length, running tasks) are accumulated at
  every state change over the measurement window ``[warmup, until)``, so means are
  time-weighted exactly; the time series is sampled every ``sample_interval`` seconds
  for plots.

Records are columnar numpy arrays indexed by task id, so a million tasks cost a few
tens of MB.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy
from simpy.events import Timeout

from orchsim import scenario as sc
from orchsim.cluster import InitialCluster
from orchsim.scheduling import FILTERS, NodeMatrix, could_ever_fit, explain_never, select
from orchsim.scheduling.queueing import SchedulingPass, random_streams
from orchsim.workload import Workload

__all__ = ["EngineConfig", "RunRecords", "Simulation", "Status"]


class Status:
    """Task status codes in the records (strings in the CSV)."""

    PENDING = 0
    RUNNING = 1
    COMPLETED = 2
    FAILED = 3
    UNSCHEDULABLE = 4
    NAMES = ("pending", "running", "completed", "failed", "unschedulable")


class NodeState:
    """Node states. DEAD: failed but not yet detected (the scheduler still sees it up)."""

    UP = 0
    DEAD = 1
    DOWN = 2
    DRAINING = 3
    REMOVED = 4


@dataclass(frozen=True)
class EngineConfig:
    """Everything the engine needs besides the tasks and the initial nodes."""

    policy: str
    policy_params: dict[str, Any]
    seed: int
    queue: str = "fifo"
    backfill_window: int = 100
    max_attempts: int = 5
    heartbeat_interval: float = 5.0
    failure_timeout: float = 15.0
    events: tuple[Any, ...] = ()
    autoscaler: sc.Autoscaler | None = None
    sample_interval: float = 10.0
    filters: dict[str, dict[str, Any]] = field(default_factory=dict)  # beyond the built-ins, with params
    warmup: float = 0.0  # start of the measurement window (simulated seconds)
    until: float | None = None  # its end; None: the end of the run


@dataclass
class RunRecords:
    """What one policy run produced: per-task columns, samples and exact integrals."""

    policy: str
    node_ids: list[str]
    start_time: np.ndarray
    end_time: np.ndarray
    node: np.ndarray
    status: np.ndarray
    attempts: np.ndarray
    wait: np.ndarray
    samples: dict[str, np.ndarray]
    integrals: dict[str, float]
    horizon: float
    peak_nodes_used: int
    rescheduled: int
    wall_seconds: float
    decisions: int
    # One entry per node failure, at detection: (failed at, detected at, node id, tasks lost).
    failures: list[tuple[float, float, str, int]] = field(default_factory=list)
    # Why a task did not run: for tasks never placed, unschedulable or given up (task -> text).
    reasons: dict[int, str] = field(default_factory=dict)
    # The measurement window (start, end) in simulated seconds; end is at most the horizon.
    window: tuple[float, float] = (0.0, math.inf)


class Simulation:
    """One policy on one workload and cluster. ``run()`` once."""

    def __init__(
        self,
        workload: Workload,
        cluster: InitialCluster,
        config: EngineConfig,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.w = workload
        self.cfg = config
        self.env = simpy.Environment()
        self.nodes: NodeMatrix = cluster.matrix(workload.resources, seed=0)
        self.policy_rng, self.event_rng = random_streams(config.seed)
        self.progress = progress

        n_tasks = len(workload)
        self.start = np.full(n_tasks, np.nan)
        self.end = np.full(n_tasks, np.nan)
        self.node_of = np.full(n_tasks, -1, dtype=np.int64)
        self.status = np.zeros(n_tasks, dtype=np.int8)
        self.attempts = np.zeros(n_tasks, dtype=np.int32)
        self.wait = np.zeros(n_tasks)
        self.enqueued_at = np.zeros(n_tasks)
        self.epoch = np.zeros(n_tasks, dtype=np.int32)
        self._fit_checked = [False] * n_tasks  # "could it ever fit?" asked once per task
        # ... and answered once per (request, selector) until nodes join or leave for good.
        self._never_cache: dict[tuple[bytes, int], bool] = {}
        # Python lists for per-task scalars read in the hot path: faster than numpy scalars.
        self._demand_rows = list(workload.demand)
        self._durations = workload.duration.tolist()
        self._selector_of = workload.selector.tolist()
        self._selectors = workload.selectors

        n = self.nodes.n_nodes
        self.node_state: list[int] = [NodeState.UP] * n
        self._removed = np.zeros(n, dtype=bool)  # REMOVED nodes, as a mask for vectorised checks
        self.running_on: list[set[int]] = [set() for _ in range(n)]
        self.idle_since: list[float] = [0.0] * n
        self.queue: deque[int] = deque()
        self.done = 0
        self._progressed = 0  # tasks placed for the first time or rejected outright
        self._reported = 0  # of those, how many the progress bar has been told about
        self.reasons: dict[int, str] = {}
        self.decisions = 0
        self.rescheduled = 0
        self.nodes_in_use = 0
        self.peak_nodes_used = 0
        self.running = 0
        self.forever = 0
        self._failed_order: deque[int] = deque()  # failed nodes (dead or down), longest-failed first
        self._failed_at: dict[int, float] = {}
        self._node_epoch = [0] * n  # raised when a node returns: its pending detection is void
        self._dead: set[int] = set()  # failed, not yet detected: the scheduler still sees them up
        self._provisioning = False
        self._pending_external = 0  # scheduled events that may still change the cluster

        r = len(workload.resources)
        self._w0 = float(config.warmup)
        self._w1 = math.inf if config.until is None else float(config.until)
        self._windowed = self._w0 > 0 or self._w1 < math.inf
        self.cap_total = self.nodes.capacity.sum(axis=1)  # live (physically up) capacity
        self._last_t = 0.0
        self._cap_since = 0.0
        self._int_cap = np.zeros(r)
        self._int_lost_used = np.zeros(r)  # allocation held by runs lost with their node, until it died
        self._int_queue = 0.0
        self._int_running = 0.0
        self._int_nodes_up = 0.0
        self.nodes_up = n  # physically up (the scheduler also counts the undetected dead)
        self._failure_log: list[tuple[float, float, str, int]] = []
        self._samples: dict[str, list[float]] = {
            k: [] for k in ("time", "queue", "running", "nodes_up", "nodes_used", "max_tasks_per_node", "fragmentation")
        }
        for name in workload.resources:
            self._samples[f"util_{name}"] = []
            self._samples[f"stranded_{name}"] = []
        # The "typical" task for fragmentation: the per-resource median request, so that
        # a few GPU tasks do not make every CPU-only node look unusable.
        self._typical = np.median(workload.demand, axis=0) if n_tasks else np.zeros(r)
        self._params = dict(config.policy_params)
        self._filters = FILTERS.active(config.filters)  # resolved once, used on every decision
        # Validated once here, so placements can use the matrix's unchecked allocate/release.
        if n_tasks and not (np.isfinite(workload.demand).all() and (workload.demand >= 0).all()):
            raise ValueError("workload demand must be finite and >= 0")
        self._scheduler = SchedulingPass(
            config.policy,
            request_of=self._demand_rows.__getitem__,
            place=self._start,
            discipline=config.queue,
            window=config.backfill_window,
            selector_of=self._selector if workload.selectors else None,
            never_fits=self._never_fits_once,
            rng=self.policy_rng,
            filters=self._filters,
            params=self._params,
        )

    # ------------------------------------------------------------------ bookkeeping
    def _in_window(self, begin: float, end: float) -> float:
        """Length of ``[begin, end]`` inside the measurement window (0 if none)."""
        return max(0.0, min(end, self._w1) - max(begin, self._w0))

    def _advance(self) -> None:
        """Integrate queue length and running count up to now (call before changing them)."""
        now = self.env.now
        if now > self._last_t:
            dt = self._in_window(self._last_t, now) if self._windowed else now - self._last_t
            if dt > 0:
                self._int_queue += len(self.queue) * dt
                self._int_running += self.running * dt
            self._last_t = now

    def _capacity_changing(self, now: float | None = None) -> None:
        """Integrate live capacity and node count up to now (call before changing them).

        Capacity changes only with node events, so it is integrated there and not on
        every task event; allocated capacity is integrated from the task records at
        the end (sum of demand x run time), which is exact and costs nothing per event.
        """
        now = self.env.now if now is None else now
        if now > self._cap_since:
            dt = self._in_window(self._cap_since, now)
            if dt > 0:
                self._int_cap += self.cap_total * dt
                self._int_nodes_up += self.nodes_up * dt
            self._cap_since = now

    def _tick(self) -> None:
        """One more task placed for the first time, or rejected: the progress bar moves."""
        self._progressed += 1
        if self.progress is not None and self._progressed - self._reported >= 1000:
            self.progress(self._progressed - self._reported)
            self._reported = self._progressed

    def _finish(self, task: int, status: int) -> None:
        self.status[task] = status
        self.done += 1

    # ------------------------------------------------------------------ placement
    def _selector(self, task: int) -> dict[str, str] | None:
        code = self._selector_of[task]
        return self._selectors[code] if code >= 0 else None

    def _never_fits_once(self, task: int) -> bool:
        """``_never_fits``, asked once per task: the first failed try decides."""
        if self._fit_checked[task]:
            return False
        self._fit_checked[task] = True
        key = (self._demand_rows[task].tobytes(), self._selector_of[task])
        never = self._never_cache.get(key)
        if never is None:
            never = self._never_cache[key] = self._never_fits(task)
        return never

    def _never_fits(self, task: int) -> bool:
        """True if no node that exists or may return could hold ``task`` even when empty."""
        demand = self._demand_rows[task]
        if could_ever_fit(self.nodes, demand, ~self._removed, self._selector(task), extra=self._filters):
            return False
        # New nodes may still arrive: the autoscaler's shape or a pending scale-out.
        future = [e.capacity for e in self.cfg.events if isinstance(e, sc.ScaleOut) and e.at > self.env.now]
        if self.cfg.autoscaler is not None:
            future.append(self.cfg.autoscaler.capacity)
        for capacity in future:
            vec = np.array([capacity.get(r, 0.0) for r in self.w.resources])
            if np.all(vec >= demand):
                return False
        return True

    def _never_fits_reason(self, task: int) -> str:
        """Why ``task`` can never run: nodes counted under the first check they fail, empty."""
        return explain_never(
            self.nodes,
            self._demand_rows[task],
            self._selector(task),
            candidates=("removed", ~self._removed),
            extra=self._filters,
        )

    def _start(self, task: int, node: int) -> None:
        self.nodes.allocate_unchecked(node, self._demand_rows[task].tolist())
        on_node = self.running_on[node]
        on_node.add(task)
        if len(on_node) == 1:
            self.nodes_in_use += 1
            if self.nodes_in_use > self.peak_nodes_used:
                self.peak_nodes_used = self.nodes_in_use
        now = self.env.now
        self.status[task] = Status.RUNNING
        self.start[task] = now
        self.node_of[task] = node
        if self.progress is not None and not self.attempts[task]:
            self._tick()
        self.attempts[task] += 1
        self.running += 1
        duration = self._durations[task]
        if duration == math.inf:
            self.forever += 1  # runs past the end of the simulation
            return
        if self.node_state[node] == NodeState.DEAD:
            return  # lost at detection
        done = Timeout(self.env, duration, value=(task, int(self.epoch[task])))
        done.callbacks.append(self._on_complete)

    def _stop(self, task: int) -> int:
        """Take ``task`` off its node; returns the node."""
        node = int(self.node_of[task])
        self.nodes.release_unchecked(node, self._demand_rows[task].tolist())
        self.running -= 1
        if self._durations[task] == math.inf:
            self.forever -= 1
        on_node = self.running_on[node]
        on_node.discard(task)
        if not on_node:
            self.nodes_in_use -= 1
            self.idle_since[node] = self.env.now
        return node

    def _enqueue(self, task: int, front: bool = False) -> None:
        self.enqueued_at[task] = self.env.now
        self.status[task] = Status.PENDING
        if front:
            self.queue.appendleft(task)
        else:
            self.queue.append(task)

    def _dequeue(self, task: int) -> None:
        self.wait[task] += self.env.now - self.enqueued_at[task]

    def _drain_queue(self, gained: int | None = None, new: tuple[int, ...] = ()) -> None:
        """One pass of the shared core over the queue; ``gained``: the one node that gained room.

        Called after every change (an arrival, a completion, a node event), so the pass's
        memory of tasks without room stays valid; a change that may free room on many
        nodes calls ``self._scheduler.forget()`` first.
        """
        if not self.queue:
            return
        result = self._scheduler.run(self.nodes, self.queue, gained=gained, new=new)
        self.decisions += result.decisions
        done = result.placed + result.never
        if self.cfg.queue == "fifo":
            for _ in done:  # a fifo pass settles a prefix of the queue
                self.queue.popleft()
        else:
            for task in done:
                self.queue.remove(task)
        for task in done:
            self._dequeue(task)
        for task in result.never:
            self._reject(task)

    # ------------------------------------------------------------------ event handlers
    def _schedule_arrival(self) -> None:
        """Chain arrivals: one Timeout for the next submit time, none queued up ahead."""
        i = self._next_arrival
        if i < len(self._submit):
            arrival = Timeout(self.env, self._submit[i] - self.env.now)
            arrival.callbacks.append(self._on_arrival)
        else:
            self._pending_external -= 1

    def _on_arrival(self, _: Timeout) -> None:
        self._advance()
        submit, now, i = self._submit, self.env.now, self._next_arrival
        n = len(submit)
        while i < n and submit[i] <= now:
            self._arrive(i)
            i += 1
        self._next_arrival = i
        self._schedule_arrival()

    def _arrive(self, task: int) -> None:
        self._enqueue(task)
        self._drain_queue(new=(task,))

    def _reject(self, task: int) -> None:
        """``task`` can never run here: unschedulable, with the reason."""
        self.reasons[task] = self._never_fits_reason(task)
        self._finish(task, Status.UNSCHEDULABLE)
        if not self.attempts[task]:
            self._tick()

    def _on_complete(self, event: Timeout) -> None:
        task, epoch = event.value
        if epoch != self.epoch[task] or self.status[task] != Status.RUNNING:
            return  # the task was lost with its node and has been rescheduled since
        self._advance()
        node = self._stop(task)
        self.end[task] = self.env.now
        self._finish(task, Status.COMPLETED)
        if self.node_state[node] == NodeState.DRAINING and not self.running_on[node]:
            self._remove_node(node)
            return
        self._drain_queue(node)

    # ------------------------------------------------------------------ cluster events
    def _cluster_events(self):  # type: ignore[no-untyped-def]
        for event in sorted(self.cfg.events, key=lambda e: e.at):
            if event.at > self.env.now:
                yield self.env.timeout(event.at - self.env.now)
            self._advance()
            if isinstance(event, sc.NodeFailure):
                self._fail_nodes(event.count)
            elif isinstance(event, sc.NodeRecovery):
                self._recover_nodes(event.count)
            elif isinstance(event, sc.ScaleOut):
                self._add_nodes(event.count, event.capacity, event.labels)
            elif isinstance(event, sc.ScaleIn):
                self._drain_nodes(event.count)
        self._pending_external -= 1

    def _fail_nodes(self, count: int) -> None:
        up = [i for i, s in enumerate(self.node_state) if s == NodeState.UP]
        if not up:
            return
        chosen = self.event_rng.choice(up, size=min(count, len(up)), replace=False)
        now = self.env.now
        hb = self.cfg.heartbeat_interval
        detect_at = max(now, math.floor(now / hb) * hb + self.cfg.failure_timeout)
        self._capacity_changing()  # physically, the capacity is gone now
        for node in sorted(int(x) for x in chosen):
            self.node_state[node] = NodeState.DEAD
            self._dead.add(node)
            self._failed_at[node] = now
            self._failed_order.append(node)
            self.nodes_up -= 1
            self.cap_total -= self.nodes.capacity[:, node]
            for task in self.running_on[node]:
                self.epoch[task] += 1  # its completion event, if any, is now void
            self._pending_external += 1
            timer = Timeout(self.env, detect_at - now, value=(node, self._node_epoch[node]))
            timer.callbacks.append(self._detect_failure)

    def _detect_failure(self, event: Timeout) -> None:
        node, node_epoch = event.value
        self._pending_external -= 1
        if node_epoch != self._node_epoch[node]:
            return  # the node came back before its lease expired
        self._advance()
        self.node_state[node] = NodeState.DOWN
        self._dead.discard(node)
        self.nodes.set_schedulable(node, False)
        if self._give_up_tasks(node):
            self._drain_queue()

    def _give_up_tasks(self, node: int) -> bool:
        """Take the tasks that died with ``node`` off it: requeue or fail them. True if any.

        Counted now (at detection, or when the node returns), so tasks placed on the dead
        node before anyone noticed are lost too. Their run, for the metrics, ended when
        the node died (a task placed after that ran for no time at all).
        """
        failed_at = self._failed_at[node]
        lost = sorted(self.running_on[node])
        self._failure_log.append((failed_at, self.env.now, self.nodes.ids[node], len(lost)))
        for task in lost:
            start = float(self.start[task])
            self._int_lost_used += self.w.demand[task] * self._in_window(start, max(start, failed_at))
            self._stop(task)
            self.epoch[task] += 1
            self.rescheduled += 1
        for task in reversed(lost):
            if self.attempts[task] >= self.cfg.max_attempts:
                self.end[task] = max(float(self.start[task]), failed_at)
                self.reasons[task] = (
                    f"lost with its node {self.attempts[task]} times (max_attempts {self.cfg.max_attempts})"
                )
                self._finish(task, Status.FAILED)
            else:
                self._enqueue(task, front=True)
        return bool(lost)

    def _recover_nodes(self, count: int) -> None:
        back: list[int] = []
        while self._failed_order and len(back) < count:
            node = self._failed_order.popleft()
            if self.node_state[node] in (NodeState.DEAD, NodeState.DOWN):
                back.append(node)
        self._capacity_changing()
        for node in back:
            if self.node_state[node] == NodeState.DEAD:
                # Back before its lease expired: never declared lost, but its processes died.
                self._node_epoch[node] += 1
                self._dead.discard(node)
                self._give_up_tasks(node)
            self.node_state[node] = NodeState.UP
            self.nodes.set_schedulable(node, True)
            self.nodes_up += 1
            self.cap_total += self.nodes.capacity[:, node]
            self.idle_since[node] = self.env.now
        if back:
            self._scheduler.forget()
            self._drain_queue()

    def _add_nodes(self, count: int, capacity: dict[str, float], labels: dict[str, str]) -> None:
        self._capacity_changing()
        self._never_cache.clear()
        start = self.nodes.n_nodes
        vec = np.array([capacity.get(r, 0.0) for r in self.w.resources])
        ids = [f"scaled-{start + i}" for i in range(count)]
        self.nodes.add_nodes(ids, np.repeat(vec[:, None], count, axis=1), labels=[dict(labels)] * count)
        self.node_state.extend([NodeState.UP] * count)
        self._node_epoch.extend([0] * count)
        self._removed = np.concatenate([self._removed, np.zeros(count, dtype=bool)])
        self.running_on.extend(set() for _ in range(count))
        self.idle_since.extend([self.env.now] * count)
        self.nodes_up += count
        self.cap_total += vec * count
        self._scheduler.forget()
        self._drain_queue()

    def _drain_nodes(self, count: int) -> None:
        up = [i for i, s in enumerate(self.node_state) if s == NodeState.UP]
        # Fewest tasks first; among equals the newest node, as cluster autoscalers do.
        chosen = sorted(up, key=lambda i: (int(self.nodes.tasks[i]), -i))[:count]
        for node in chosen:
            self.node_state[node] = NodeState.DRAINING
            self.nodes.set_schedulable(node, False)
            if not self.running_on[node]:
                self._remove_node(node)

    def _remove_node(self, node: int) -> None:
        # Columns are kept (indices stay valid); the node is simply gone for good.
        self._capacity_changing()
        self._never_cache.clear()
        self.node_state[node] = NodeState.REMOVED
        self._removed[node] = True
        self.nodes.set_schedulable(node, False)
        self.nodes_up -= 1
        self.cap_total -= self.nodes.capacity[:, node]

    # ------------------------------------------------------------------ background
    def _stuck(self) -> bool:
        """Nothing scheduled can change anything any more (tasks may stay pending)."""
        return self.running == self.forever and self._pending_external == 0 and not self._autoscaler_can_help()

    def _autoscaler_can_help(self) -> bool:
        a = self.cfg.autoscaler
        return a is not None and bool(self.queue) and (self._nodes_believed_up() < a.max_nodes or self._provisioning)

    def _nodes_believed_up(self) -> int:
        """Nodes up as the scheduler sees them: a dead node counts until it is detected."""
        return self.nodes_up + len(self._dead)

    def _finished(self) -> bool:
        return self.done + self.forever == len(self.w) or self._stuck()

    def _sampler(self):  # type: ignore[no-untyped-def]
        while True:
            self._sample()
            if self._finished():
                return
            yield self.env.timeout(self.cfg.sample_interval)

    def _sample(self) -> None:
        s = self._samples
        s["time"].append(self.env.now)
        s["queue"].append(len(self.queue))
        s["running"].append(self.running)
        s["nodes_up"].append(self.nodes_up)
        s["nodes_used"].append(self.nodes_in_use)
        # The blast radius: what the worst single node failure would take down right now.
        s["max_tasks_per_node"].append(int(self.nodes.tasks.max()) if len(self.nodes) else 0)
        cap = np.where(self.cap_total > 0, self.cap_total, 1.0)
        busy = self.nodes.tasks > 0
        used_total = self.nodes.allocated.sum(axis=1)
        if self._dead:  # physically: nothing runs on a dead node, whatever the scheduler believes
            dead = list(self._dead)
            used_total = used_total - self.nodes.allocated[:, dead].sum(axis=1)
            busy[dead] = False
        # Stranded: free capacity on nodes that run something (they cannot be switched off or
        # handed back), as a share of live capacity. Consolidation drives it down.
        stranded = self.nodes.free[:, busy].sum(axis=1)
        for name, used, idle, c in zip(self.w.resources, used_total, stranded, cap, strict=True):
            s[f"util_{name}"].append(float(used / c))
            s[f"stranded_{name}"].append(float(idle / c))
        s["fragmentation"].append(self._fragmentation())

    def _fragmentation(self) -> float:
        """Share of free capacity stranded on schedulable nodes too full for a typical task.

        Per resource: free amount on schedulable nodes that cannot fit the workload's
        median request, over all free amount on schedulable nodes; averaged over the
        resources that median request asks for.
        """
        nodes = self.nodes
        sched = nodes.schedulable
        free = nodes.free
        fits = sched & np.all(free >= self._typical[:, None], axis=0)
        stranded = sched & ~fits
        shares = []
        for r in np.flatnonzero(self._typical):
            total = float(free[r][sched].sum())
            if total > 0:
                shares.append(float(free[r][stranded].sum()) / total)
        return float(np.mean(shares)) if shares else 0.0

    def _autoscale(self):  # type: ignore[no-untyped-def]
        a = self.cfg.autoscaler
        assert a is not None
        while not self._finished():
            yield self.env.timeout(a.interval)
            now = self.env.now
            active = self._nodes_believed_up()
            if (
                self.queue
                and not self._provisioning
                and now - self.enqueued_at[self.queue[0]] > a.scale_out_wait
                and active < a.max_nodes
            ):
                self._advance()
                self._provisioning = True
                add = min(a.step, a.max_nodes - active)
                self.env.process(self._provision(add))
            elif not self.queue:
                idle = [
                    i
                    for i, s in enumerate(self.node_state)
                    if s == NodeState.UP and self.nodes.tasks[i] == 0 and now - self.idle_since[i] >= a.scale_in_idle
                ]
                removable = max(0, active - a.min_nodes)
                if idle and removable:
                    self._advance()
                for node in sorted(idle, reverse=True)[:removable]:
                    self.node_state[node] = NodeState.DRAINING
                    self._remove_node(node)

    def _provision(self, count: int):  # type: ignore[no-untyped-def]
        a = self.cfg.autoscaler
        assert a is not None
        if a.provision_delay:
            yield self.env.timeout(a.provision_delay)
        self._advance()
        self._add_nodes(count, a.capacity, a.labels)
        self._provisioning = False

    def _used_integral(self) -> np.ndarray:
        """Time integral of allocated capacity over the window: demand x run time, summed over runs.

        The last run of a running or completed task is read from the records; every run
        lost with a node (including the last run of a task that failed for good) was
        added to ``_int_lost_used`` when it was given up, ending when the node died.
        """
        ran = (self.status == Status.RUNNING) | (self.status == Status.COMPLETED)
        start = np.where(ran, self.start, 0.0)
        end = np.where(ran, np.where(np.isnan(self.end), self._last_t, self.end), 0.0)
        w0, w1 = self._w0, min(self._w1, self._last_t)
        run_time = np.clip(end, w0, w1) - np.clip(start, w0, w1)
        return np.where(ran, run_time, 0.0) @ self.w.demand + self._int_lost_used

    def _pending_reasons(self) -> None:
        """Why each task still queued at the end never ran: once per task, not per decision."""
        if not self.queue:
            return
        n = self.nodes.n_nodes
        for position, task in enumerate(self.queue):
            decision = select(
                self.nodes,
                self._demand_rows[task],
                self.cfg.policy,
                rng=np.random.default_rng(0),  # the run's own stream is left untouched
                node_selector=self._selector(task),
                filters=self._filters,
                **self._params,
            )
            if decision.node is None:
                reason = decision.reason
            else:
                reason = (
                    f"fits on {decision.feasible}/{n} nodes at the end, but waited behind "
                    f"{position} task(s) in the {self.cfg.queue} queue"
                )
            self.reasons[task] = reason if np.isnan(self.start[task]) else f"lost with its node; then {reason}"

    # ------------------------------------------------------------------ run
    def run(self) -> RunRecords:
        """Simulate to the end (every task terminal, or nothing left that could change)."""
        began = time.perf_counter()
        env = self.env
        self._pending_external = 2
        self._submit = self.w.submit_time.tolist()
        self._next_arrival = 0
        self._schedule_arrival()
        env.process(self._cluster_events())
        env.process(self._sampler())
        if self.cfg.autoscaler is not None:
            env.process(self._autoscale())
        env.run()
        if self.progress is not None:
            # Tasks never placed count as handled now: the run is over for them too.
            self.progress(len(self.w) - self._reported)
        self._pending_reasons()
        # Tasks still queued at the end stay "pending" and their wait runs to the end (the
        # last state change: the horizon, not a sampler tick after it).
        for task in self.queue:
            self.wait[task] += self._last_t - self.enqueued_at[task]
        samples = {k: np.asarray(v, dtype=np.float64) for k, v in self._samples.items()}
        self._capacity_changing(now=self._last_t)
        integrals = {f"used_{r}": float(v) for r, v in zip(self.w.resources, self._used_integral(), strict=True)}
        integrals |= {f"capacity_{r}": float(v) for r, v in zip(self.w.resources, self._int_cap, strict=True)}
        integrals |= {"queue": self._int_queue, "running": self._int_running, "nodes_up": self._int_nodes_up}
        return RunRecords(
            policy=self.cfg.policy,
            node_ids=list(self.nodes.ids),
            start_time=self.start,
            end_time=self.end,
            node=self.node_of,
            status=self.status,
            attempts=self.attempts,
            wait=self.wait,
            samples=samples,
            integrals=integrals,
            horizon=float(self._last_t),
            peak_nodes_used=self.peak_nodes_used,
            rescheduled=self.rescheduled,
            wall_seconds=time.perf_counter() - began,
            decisions=self.decisions,
            failures=list(self._failure_log),
            reasons=dict(self.reasons),
            window=(self._w0, min(self._w1, float(self._last_t))),
        )
