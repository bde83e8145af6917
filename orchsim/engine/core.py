"""The discrete-event cluster: SimPy events around one ``env.run()``.

Design, for speed and for truth:

* No SimPy process per task. Arrivals are one chain of timed events walking the
  pre-generated, sorted submit times; a task's completion is one timed event with a
  callback. Placing tasks is the shared core's ``SchedulingPass`` (queue discipline,
  filters, ``select``), the pass the live master runs: the engine neither scores nodes
  nor decides the order in which queued tasks are tried.
* Event-driven placement: the pass runs when a task arrives and whenever room appears
  (completion, node recovery, scale-out), told where the room appeared, so a task that
  could not have gained anything is not scored again. There is no polling loop.
* Node failures are realistic (``node_events``): a failed node stops heartbeating and is
  believed up until its lease expires; tasks placed on it meanwhile are lost too.
* Two views of the cluster are kept apart: the scheduler's (the ``NodeMatrix``) and the
  physical one (``accounting``), so utilisation can never exceed 1.
* Cluster events are dispatched through a table keyed by event class
  (``node_events.HANDLERS``); the autoscaler is its own process (``autoscaler``); the
  time series are pure functions of the state (``sampling``).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import simpy
from simpy.events import NORMAL, Timeout

from orchsim.cluster import InitialCluster
from orchsim.engine import autoscaler, node_events, sampler, wrapup
from orchsim.engine.accounting import Accounting
from orchsim.engine.latency import PassDelay
from orchsim.engine.never_fits import NeverFits
from orchsim.engine.records import EngineConfig, NodeState, RunRecords, Status, TaskColumns
from orchsim.engine.sampling import series_names
from orchsim.engine.task_queue import TaskQueue
from orchsim.engine.task_structure import TaskStructure, easy_hooks, needs_structure
from orchsim.scheduling import FILTERS, POLICIES, NodeMatrix, PreparedPolicy, explain_never
from orchsim.scheduling.fragmentation import typical_workload
from orchsim.scheduling.node_devices import Assignment
from orchsim.scheduling.queueing import SchedulingPass, random_streams
from orchsim.scheduling.state_classes import keep_decision_aids
from orchsim.workload import Workload

__all__ = ["Simulation"]


class _Completion:
    """A run's end (or the next arrival) as SimPy's queue holds it: what ``Environment.step`` reads of an event.

    One per task, so a bare slotted object scheduled with ``env.schedule`` rather than a
    ``Timeout`` (whose constructor and attributes cost more than the engine's own work).
    """

    __slots__ = ("_ok", "callbacks", "epoch", "task")

    def __init__(self, callback: Callable[[Any], None], task: int, epoch: int) -> None:
        self._ok = True
        self.callbacks: list[Callable[[Any], None]] | None = [callback]
        self.task, self.epoch = task, epoch


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
        self.nodes: NodeMatrix = cluster.matrix(workload.resources)
        self.policy_rng, self.event_rng = random_streams(config.seed)
        self.progress = progress
        self.tasks = TaskColumns(len(workload))
        self._init_task_state(workload)
        self._init_node_state(self.nodes.n_nodes)
        self.acct = Accounting(config.warmup, config.until, self.nodes.capacity.sum(axis=1), self.nodes.n_nodes)
        self._samples: dict[str, list[float]] = {name: [] for name in series_names(workload.resources)}
        # The "typical" task for fragmentation: the per-resource median request, so that
        # a few GPU tasks do not make every CPU-only node look unusable.
        self._typical = np.median(workload.demand, axis=0) if len(workload) else np.zeros(len(workload.resources))
        self._filters = FILTERS.active(config.filters)  # resolved once, used on every decision
        self._params = self._policy_params(config)
        # Priorities, preemption, gangs, dependencies: None (and no cost) when none is used.
        self.ext = TaskStructure(self, config.preemption) if needs_structure(workload, config.preemption) else None
        extensions = self.ext.extensions() if self.ext is not None else None
        # A fifo pass settles a prefix of the queue, unless priorities reorder it.
        self._prefix = config.queue == "fifo" and (extensions is None or extensions.priority_of is None)
        self._delay = PassDelay(config.decision_latency, config.seed)  # the scheduler's latency (default none)
        self._deferred = config.per_instant or self._delay.active
        # An arrival to an empty queue is one decision (SchedulingPass.run_alone), unless the pass does more.
        self._alone = config.queue != "easy" and self.ext is None and not self._delay.active
        # The policy with its state (generator, cursor, sampling scan) for the whole run.
        state = {"filters": self._filters, "rng": self.policy_rng, "params": self._params, "sample": config.sampling}
        policy = PreparedPolicy(config.policy, memo=True, **state)  # memo: a small cluster's repeated states
        keep_decision_aids(
            self.nodes, policy, workload.demand
        )  # state classes or shapes' masks, unless the memo answers
        self.scheduler = SchedulingPass(
            policy,
            request_of=self._demand_rows.__getitem__,
            place=self._start,
            discipline=config.queue,
            window=config.backfill_window,
            selector_of=self._selector if workload.selectors else None,
            never_fits=self.never_fits,
            extensions=extensions,
            easy=easy_hooks(self) if config.queue == "easy" else None,
        )

    def _policy_params(self, config: EngineConfig) -> dict[str, Any]:
        """The policy's parameters, with FGD's target workload learnt from this workload if not given.

        The FGD artifact learns its typical pod shapes from the trace it replays
        (``GetTypicalPods``); here they come from the tasks of the run (the trace's pods and
        any clones of them), the same distribution up to the clones' sampling noise.
        """
        params = dict(config.policy_params)
        spec = POLICIES.spec(config.policy)
        gpu = self.nodes.devices.get("gpu")
        if "workload" in spec.params and "workload" not in params and gpu is not None and len(self.w):
            cpu = (
                self.w.demand[:, self.w.resources.index("cpu")] if "cpu" in self.w.resources else np.zeros(len(self.w))
            )
            models = [(self.w.selectors[c].get("gpu_model", "") if c >= 0 else "") for c in self._selector_of]
            params["workload"] = typical_workload(cpu, self.w.demand[:, self.w.resources.index("gpu")], models)
        return params

    def _init_task_state(self, workload: Workload) -> None:
        # Validated once here, so placements can use the matrix's unchecked allocate/release.
        if len(workload) and not (np.isfinite(workload.demand).all() and (workload.demand >= 0).all()):
            raise ValueError("workload demand must be finite and >= 0")
        self.never_fits = NeverFits(self, len(workload))
        # Python lists for per-task scalars read in the hot path: faster than numpy scalars.
        self._demand_rows = list(workload.demand)
        self._durations = workload.duration.tolist()
        self._fails = set() if workload.fails is None else set(np.flatnonzero(workload.fails).tolist())
        self._selector_of = workload.selector.tolist()
        self.devices: dict[int, Assignment] = {}  # task -> the devices of its last run
        self.queue = TaskQueue()
        # Tasks placed for the first time or rejected outright; of those, how many the progress bar was told.
        self.done = self._progressed = self._reported = 0
        self.reasons: dict[int, str] = {}
        self.decisions = self.rescheduled = self.running = self.forever = 0

    def _init_node_state(self, n: int) -> None:
        self.node_state: list[int] = [NodeState.UP] * n
        self.removed = np.zeros(n, dtype=bool)  # REMOVED nodes, as a mask for vectorised checks
        self.running_on: list[set[int]] = [set() for _ in range(n)]
        self.idle_since: list[float] = [0.0] * n
        self.nodes_in_use = 0
        self.peak_nodes_used = 0
        self.failed_order: deque[int] = deque()  # failed nodes (dead or down), longest-failed first
        self.failed_at: dict[int, float] = {}
        self.node_epoch = [0] * n  # raised when a node returns: its pending detection is void
        self.dead: set[int] = set()  # failed, not yet detected: the scheduler still sees them up
        self.failure_log: list[tuple[float, float, str, int]] = []
        self.provisioning = False
        self.pending_external = 0  # scheduled events that may still change the cluster
        self._due: tuple[list[int], set[int]] | None = None  # the pass this instant still owes

    # ------------------------------------------------------------------ bookkeeping
    def advance(self) -> None:
        """Integrate queue length and running count up to now (call before changing them)."""
        running = self.running if not self.dead else self.physically_running()  # the hot path: no call when none died
        self.acct.advance(self.env.now, len(self.queue), running)

    def physically_running(self) -> int:
        """Running tasks less those on nodes that died unseen: the scheduler still counts them, nothing runs them."""
        if not self.dead:
            return self.running
        return self.running - len(set().union(*(self.running_on[node] for node in self.dead)))

    def physically_used_nodes(self) -> int:
        """Nodes running a task, less the dead ones the scheduler has not yet noticed (the metrics' view)."""
        if not self.dead:
            return self.nodes_in_use
        return self.nodes_in_use - sum(1 for node in self.dead if self.running_on[node])

    def tick(self) -> None:
        """One more task placed for the first time, or rejected: the progress bar moves."""
        self._progressed += 1
        if self.progress is not None and self._progressed - self._reported >= 1000:
            self.progress(self._progressed - self._reported)
            self._reported = self._progressed

    def finish(self, task: int, status: int) -> None:
        self.tasks.status[task] = status
        self.done += 1
        if self.ext is not None:
            self.ext.ended(task, status)  # its children may go, fail or be skipped

    def never_fits_changed(self) -> None:
        """Nodes joined or left for good: "could it ever fit?" must be asked again."""
        self.never_fits.forget()

    # ------------------------------------------------------------------ placement
    def _selector(self, task: int) -> dict[str, str] | None:
        code = self._selector_of[task]
        return self.w.selectors[code] if code >= 0 else None

    def _start(self, task: int, node: int, devices: Assignment) -> None:
        self.occupy(task, node, devices)
        self.begin(task, node)

    def occupy(self, task: int, node: int, devices: Assignment) -> None:
        """Allocate (one replica of) ``task`` on ``node``."""
        self.nodes.allocate_unchecked(node, self._demand_rows[task].tolist(), devices)
        if devices:
            self.devices[task] = devices
        on_node = self.running_on[node]
        on_node.add(task)
        if len(on_node) == 1:
            self.nodes_in_use += 1
            if self.nodes_in_use > self.peak_nodes_used:
                self.peak_nodes_used = max(self.peak_nodes_used, self.physically_used_nodes())

    def begin(self, task: int, node: int) -> None:
        """``task``, allocated, starts running now; its completion is scheduled."""
        tasks = self.tasks
        tasks.status[task] = Status.RUNNING
        tasks.start[task] = self.env.now
        tasks.node[task] = node
        if self.progress is not None and not tasks.attempts[task]:
            self.tick()
        tasks.attempts[task] += 1
        self.running += 1
        duration = self._durations[task]
        if duration == math.inf:
            self.forever += 1  # runs past the end of the simulation
            return
        if self.node_state[node] == NodeState.DEAD:
            return  # lost at detection
        self.env.schedule(_Completion(self._on_complete, task, int(tasks.epoch[task])), NORMAL, duration)

    def stop(self, task: int) -> int:
        """Take ``task`` off its node (every replica of a gang); returns the (first) node."""
        self.running -= 1
        if self._durations[task] == math.inf:
            self.forever -= 1
        if self.ext is not None and task in self.ext.runs:
            return self.ext.release_gang(task)
        node = int(self.tasks.node[task])
        self.vacate(task, node, self._demand_rows[task].tolist(), self.devices.get(task))
        return node

    def vacate(self, task: int, node: int, request: list[float], devices: Assignment | None) -> None:
        """Release (one replica of) ``task`` on ``node``."""
        self.nodes.release_unchecked(node, request, devices)
        on_node = self.running_on[node]
        on_node.discard(task)
        if not on_node:
            self.nodes_in_use -= 1
            self.idle_since[node] = self.env.now

    def held_demand(self, task: int) -> np.ndarray:
        """What a run of ``task`` holds: its request, times the replicas of a gang."""
        demand = self.w.demand[task]
        return demand if self.ext is None else self.ext.held_demand(task, demand)

    def enqueue(self, task: int) -> None:
        """``task`` arrives: it joins the tail (arrivals come in submission order)."""
        self.tasks.enqueued_at[task] = self.env.now
        self.tasks.status[task] = Status.PENDING
        self.queue.append(task)

    def requeue(self, task: int) -> None:
        """``task`` comes back to the queue, at its place in the live master's order (``TaskQueue``)."""
        self.tasks.enqueued_at[task] = self.env.now
        self.tasks.status[task] = Status.PENDING
        self.queue.rejoin(task)

    def evicted(self, task: int) -> None:
        """``task`` was evicted for a higher priority: it will rejoin behind every task that arrived so far."""
        self.queue.evicted(task, self._next_arrival)

    def drain_queue(self, gained: int | None = None, new: tuple[int, ...] = ()) -> None:
        """One pass of the shared core over the queue; ``gained``: the one node that gained room.

        Called after every change (an arrival, a completion, a node event), so the pass's
        memory of tasks without room stays valid; a change that may free room on many
        nodes calls ``self.scheduler.forget()`` first.
        """
        if self.queue.rejoined:  # in queue order, as the master lists the tasks its pass has not tried
            new = self.queue.take_new(new, lambda task: self.tasks.status[task] == Status.PENDING)
        if not self.queue:
            return
        result = self.scheduler.run(self.nodes, self.queue, gained=gained, new=new)
        self.decisions += result.decisions
        done = result.placed + result.never
        if self._prefix:
            for _ in done:  # a fifo pass settles a prefix of the queue
                self.queue.popleft()
        else:
            for task in done:
                self.queue.remove(task)
        now, wait, enqueued_at = self.env.now, self.tasks.wait, self.tasks.enqueued_at
        for task in done:
            wait[task] += now - enqueued_at[task]
        for task in result.never:
            self._reject(task)
        if result.preempted:
            self.ext.requeue_victims()  # type: ignore[union-attr]

    def pass_soon(self, gained: int | None = None, new: tuple[int, ...] = ()) -> None:
        """``scheduler.passes: per_instant``: one pass once every arrival and end of now is in.

        With a decision latency (``orchsim.engine.latency``) the pass runs that long after
        the first change that asked for it, and sees every change up to then.

        Traces in whole seconds end and submit many jobs at the same time. A pass per event
        lets a later task take room that an earlier one gets back a moment later at the same
        time; one pass after all of them sees the cluster as it is at that time, as AccaSim,
        Batsim and the textbook FCFS and EASY do. The pass is a zero-delay event, so it comes
        after every event already scheduled for now. (``drain_queue``'s arguments.)
        """
        if self._due is None:
            self._due = ([], set())
            self.pending_external += 1  # the run is not over while a pass is owed
            Timeout(self.env, self._delay()).callbacks.append(self._owed_pass)
        self._due[0].extend(new)
        if gained is not None:
            self._due[1].add(gained)

    def _owed_pass(self, _: Timeout) -> None:
        new, gained = self._due  # type: ignore[misc]
        self._due = None
        self.pending_external -= 1
        if len(gained) > 1:
            self.scheduler.forget()  # room appeared on several nodes: try every task again
        self.drain_queue(next(iter(gained)) if len(gained) == 1 else None, tuple(new))

    def _reject(self, task: int) -> None:
        """``task`` can never run here: unschedulable, with the reason."""
        self.reasons[task] = explain_never(
            self.nodes,
            self._demand_rows[task],
            self._selector(task),
            candidates=("removed", ~self.removed),
            extra=self._filters,
        )
        self.finish(task, Status.UNSCHEDULABLE)
        if not self.tasks.attempts[task]:
            self.tick()

    # ------------------------------------------------------------------ task events
    def _schedule_arrival(self) -> None:
        """Chain arrivals: one bare timed event (a ``_Completion``'s kind) for the next submit time."""
        i = self._next_arrival
        if i < len(self._submit):
            self.env.schedule(_Completion(self._on_arrival, i, 0), NORMAL, self._submit[i] - self.env.now)
        else:
            self.pending_external -= 1

    def _on_arrival(self, _: _Completion) -> None:
        self.advance()
        submit, now, i = self._submit, self.env.now, self._next_arrival
        n = len(submit)
        while i < n and submit[i] <= now:
            self._next_arrival = i + 1  # i has joined: a victim of its pass goes behind it (``evicted``)
            if self._alone and not self.queue:
                self._arrive_alone(i)
            elif self.ext is None or self.ext.arrives(i):
                self.enqueue(i)
                if self._deferred:
                    self.pass_soon(new=(i,))
                else:
                    self.drain_queue(new=(i,))
            i += 1
        self._next_arrival = i
        self._schedule_arrival()

    def _arrive_alone(self, task: int) -> None:
        """``task`` arrives to an empty queue: placed, set aside or queued, as a pass over it would."""
        self.decisions += 1
        node = self.scheduler.run_alone(self.nodes, task)
        if node is None:
            self.enqueue(task)
        else:
            self.tasks.enqueued_at[task] = self.env.now  # and waited 0
            if node < 0:
                self._reject(task)

    def _on_complete(self, event: _Completion) -> None:
        task, epoch = event.task, event.epoch
        tasks = self.tasks
        if epoch != tasks.epoch[task] or tasks.status[task] != Status.RUNNING:
            return  # the task was lost with its node and has been rescheduled since
        self.advance()
        runs = self.ext.runs if self.ext is not None else {}
        left = list(dict.fromkeys(n for n, _ in runs[task])) if task in runs else [int(tasks.node[task])]
        self.stop(task)
        tasks.end[task] = self.env.now
        self.finish(task, Status.FAILED if task in self._fails else Status.COMPLETED)  # a recorded failure fails
        for gone in [n for n in left if self.node_state[n] == NodeState.DRAINING and not self.running_on[n]]:
            node_events.remove_node(self, gone)  # every node a gang leaves, not only its first
            left.remove(gone)
        if not left:
            return  # its room left with its nodes
        node = left[0]
        if self._deferred:
            self.pass_soon(node)
        else:
            self.drain_queue(node)

    # ------------------------------------------------------------------ background
    def _cluster_events(self) -> Iterator[Any]:
        """The scenario's events in time order, each applied by its handler."""
        for event in sorted(self.cfg.events, key=lambda e: e.at):
            if event.at > self.env.now:
                yield self.env.timeout(event.at - self.env.now)
            self.advance()
            node_events.handle(self, event)
        self.pending_external -= 1

    def _stuck(self) -> bool:
        """Nothing scheduled can change anything any more (tasks may stay pending)."""
        return self.running == self.forever and self.pending_external == 0 and not autoscaler.can_help(self)

    def nodes_believed_up(self) -> int:
        """Nodes up as the scheduler sees them: a dead node counts until it is detected."""
        return self.acct.nodes_up + len(self.dead)

    def finished(self) -> bool:
        return self.done + self.forever == len(self.w) or self._stuck()

    # ------------------------------------------------------------------ run
    def run(self) -> RunRecords:
        """Simulate to the end (every task terminal, or nothing left that could change)."""
        began = time.perf_counter()
        env = self.env
        self.pending_external = 2  # the arrival chain and the cluster-events process
        self._submit = self.w.submit_time.tolist()
        self._next_arrival = 0
        self._schedule_arrival()
        env.process(self._cluster_events())
        ended = env.event()
        env.process(sampler.sample_until_over(self, ended))
        if self.cfg.autoscaler is not None:
            env.process(autoscaler.autoscale(self))
        # Ends on an event, not when SimPy runs dry: completions voided by a node failure
        # may still be scheduled, and they change nothing.
        env.run(until=ended)
        if self.progress is not None:
            # Tasks never placed count as handled now: the run is over for them too.
            self.progress(len(self.w) - self._reported)
        wrapup.pending_reasons(self)
        # Tasks still queued at the end stay "pending" and their wait runs to the end (the
        # last state change: the horizon, not a sampler tick after it).
        for task in self.queue:
            self.tasks.wait[task] += self.acct.last_t - self.tasks.enqueued_at[task]
        return wrapup.records(self, time.perf_counter() - began)
