"""Priorities, preemption, gangs and dependencies in the simulator: the owner's side.

The decisions are the shared core's (``orchsim.scheduling.pass_extensions``): the queue
order by priority, the victims of a preemption, a gang's nodes. This module is what the
simulator does with them, the way the live master will with its own state:

* ``running_of``: the running single tasks as ``RunningTasks`` columns (gangs are never
  victims: a gang is evicted whole or not at all, which victim selection on one node
  cannot express);
* ``evict``: stop each victim now, account the lost work (its run so far counts as
  used capacity, then it is gone, as for a run lost with its node), and re-queue it
  after the pass, which counts one more attempt when it is placed again;
* ``place_gang``: allocate every replica, one run with one completion;
* dependencies: a task with parents is held outside the queue until they end; then it
  joins the queue, or (``on: success`` and a parent did not complete) fails or is
  skipped, which its own children see in turn.

A run that uses none of these builds no ``TaskStructure`` and pays nothing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from orchsim.engine.records import Status
from orchsim.scheduling.dependencies import critical_path
from orchsim.scheduling.easy import EasyHooks
from orchsim.scheduling.gangs import gang_could_ever_fit
from orchsim.scheduling.node_devices import Assignment
from orchsim.scheduling.pass_extensions import PassExtensions
from orchsim.scheduling.preemption import RunningTasks
from orchsim.workload import Workload

if TYPE_CHECKING:
    from orchsim.engine.core import Simulation

__all__ = ["TaskStructure", "easy_hooks", "needs_structure"]


def needs_structure(workload: Workload, preemption: bool) -> bool:
    """Whether a run needs a ``TaskStructure`` at all."""
    return preemption or any(x is not None for x in (workload.priority, workload.gang, workload.dependencies))


class TaskStructure:
    """Per-run state for priorities, preemption, gangs and dependencies."""

    def __init__(self, sim: Simulation, preemption: bool) -> None:
        w = sim.w
        self.sim = sim
        n = len(w)
        self.priority = w.priority.tolist() if w.priority is not None else [0] * n
        self.gang = None if w.gang is None else [(int(r), int(m)) if r > 1 else None for r, m in w.gang.tolist()]
        self.runs: dict[int, list[tuple[int, Assignment]]] = {}  # gang -> its replicas' nodes
        self.replicas = np.ones(n)  # replicas of each task's last run
        self.preemption = preemption
        self.preempted = np.zeros(n, dtype=np.int32)
        self.lost_work = np.zeros(n)  # seconds of run time thrown away by evictions, per task
        self.victims: list[int] = []  # evicted in the current pass, re-queued after it
        deps = w.dependencies
        self.deps = deps
        self.children: list[list[int]] = [[] for _ in range(n)]
        self.waiting = [0] * n  # parents not ended yet
        if deps is not None:
            for child, parents in enumerate(deps.parents):
                self.waiting[child] = len(parents)
                for parent in parents:
                    self.children[parent].append(child)
        self.arrived = [False] * n

    def extensions(self) -> PassExtensions | None:
        """What the shared pass needs (None when only dependencies are in use)."""
        w = self.sim.w
        if not self.preemption and w.priority is None and self.gang is None:
            return None
        preempt = self.preemption
        gang = self.gang
        return PassExtensions(
            priority_of=self.priority.__getitem__ if (w.priority is not None or preempt) else None,
            running_of=self.running if preempt else None,
            evict=self.evict if preempt else None,
            gang_of=gang.__getitem__ if gang is not None else None,
            place_gang=self.place_gang if gang is not None else None,
        )

    # ------------------------------------------------------------------ preemption
    def running(self) -> RunningTasks:
        """The running single tasks, as columns for victim selection."""
        sim = self.sim
        rows = sorted({t for on_node in sim.running_on for t in on_node if t not in self.runs})
        if not rows:
            return RunningTasks.empty(len(sim.w.resources))
        index = np.asarray(rows, dtype=np.int64)
        return RunningTasks(
            task=rows,
            node=sim.tasks.node[index],
            priority=np.asarray([self.priority[t] for t in rows], dtype=np.int64),
            demand=sim.w.demand[index],
            start=sim.tasks.start[index],
            devices=[sim.devices.get(t) for t in rows],
        )

    def evict(self, victims: list[Any], node: int) -> None:
        """Stop ``victims`` on ``node`` now (released on the matrix); re-queued after the pass.

        On a node that died unnoticed, their run physically ended with it (as a loss counts it).
        """
        sim, tasks = self.sim, self.sim.tasks
        ended = sim.failed_at[node] if node in sim.dead else sim.env.now
        for task in victims:
            start = float(tasks.start[task])
            sim.acct.lose_run(sim.w.demand[task], start, ended)
            self.lost_work[task] += max(ended - start, 0.0)
            self.preempted[task] += 1
            sim.stop(task)
            tasks.epoch[task] += 1  # its completion event is void
            tasks.status[task] = Status.PENDING
            self.victims.append(task)

    def requeue_victims(self) -> None:
        """After the pass: the evicted tasks join the queue again, behind every task queued before.

        One more attempt when placed.
        """
        sim = self.sim
        for task in self.victims:
            sim.evicted(task)
            sim.requeue(task)
        self.victims.clear()

    # ------------------------------------------------------------------ gangs
    def place_gang(self, task: int, placements: list[tuple[int, Assignment]]) -> None:
        """Allocate every replica of ``task``; one run, one completion."""
        sim = self.sim
        self.runs[task] = placements
        self.replicas[task] = len(placements)
        vector = sim.w.demand[task].tolist()
        seen: set[int] = set()
        for node, devices in placements:
            if node in seen:  # another replica on a node it already occupies
                sim.nodes.allocate_unchecked(node, vector, devices)
            else:
                seen.add(node)
                sim.occupy(task, node, devices)
        sim.begin(task, placements[0][0])

    def release_gang(self, task: int) -> int:
        """Release every replica of a gang's run; returns its first node."""
        sim = self.sim
        placements = self.runs.pop(task)
        vector = sim.w.demand[task].tolist()
        last = {node: i for i, (node, _) in enumerate(placements)}
        for i, (node, devices) in enumerate(placements):
            if last[node] == i:  # the node's last replica leaves it
                sim.vacate(task, node, vector, devices)
            else:
                sim.nodes.release_unchecked(node, vector, devices)
        sim.scheduler.forget()  # room appeared on several nodes at once
        return placements[0][0]

    def gang_size(self, task: int) -> tuple[int, int] | None:
        """``(replicas, min_replicas)`` of a gang, None for a single task."""
        return None if self.gang is None else self.gang[task]

    def gang_could_fit(self, task: int) -> bool:
        """Could ``task``'s gang ever run on the nodes there are (True for a single task)?"""
        gang = self.gang_size(task)
        if gang is None:
            return True
        sim = self.sim
        candidates = ~sim.removed
        selector = sim._selector(task)
        if selector:
            candidates = candidates & sim.nodes.label_mask(selector)
        return gang_could_ever_fit(sim.nodes.capacity, sim.w.demand[task], gang[1], candidates)

    def held_demand(self, task: int, demand: np.ndarray) -> np.ndarray:
        """What a run of ``task`` holds: its request, times the replicas of a gang's run."""
        placements = self.runs.get(task)
        return demand if placements is None else demand * len(placements)

    # ------------------------------------------------------------------ dependencies
    def arrives(self, task: int) -> bool:
        """``task`` is submitted: True if it joins the queue now (else held, or already ended)."""
        self.arrived[task] = True
        return self.waiting[task] == 0 and self.sim.tasks.status[task] == Status.PENDING

    def ended(self, task: int, status: int) -> None:
        """``task`` reached ``status`` for good: release, fail or skip the children it held."""
        deps = self.deps
        if deps is None:
            return
        sim = self.sim
        for child in self.children[task]:
            if sim.tasks.status[child] != Status.PENDING or self.waiting[child] == 0:
                continue  # already ended (another parent failed it)
            if status != Status.COMPLETED and deps.on_success[child]:
                self.waiting[child] = 0
                verdict = "skipped" if deps.skip[child] else "failed"
                sim.reasons[child] = f"{verdict}: parent task {task} ended {Status.NAMES[status]}"
                sim.finish(child, Status.SKIPPED if deps.skip[child] else Status.FAILED)
                sim.tick()
                continue
            self.waiting[child] -= 1
            if self.waiting[child] == 0 and self.arrived[child]:
                sim.requeue(child)

    def held_reasons(self) -> None:
        """Why each task still held at the end never ran."""
        sim = self.sim
        for task, waiting in enumerate(self.waiting):
            if waiting and sim.tasks.status[task] == Status.PENDING:
                sim.reasons[task] = f"held: {waiting} parent task(s) never ended"

    # ------------------------------------------------------------------ records
    def task_columns(self) -> dict[str, np.ndarray]:
        """Extra per-task columns of the run's tables (only those in use)."""
        w, columns = self.sim.w, {}
        if w.priority is not None or self.preemption:
            columns["priority"] = np.asarray(self.priority, dtype=np.int64)
        if self.preemption:
            columns["preempted"] = self.preempted
            columns["lost_work_s"] = self.lost_work
        if self.gang is not None:
            columns["replicas"] = self.replicas.astype(np.int64)
        if self.deps is not None:
            columns["dag"] = self.deps.dag
        return columns

    def summary(self) -> dict[str, float | int]:
        """Extra summary keys (only those in use): evictions, lost work, skipped tasks, per-DAG makespan and slack."""
        row: dict[str, float | int] = {}
        if self.preemption:
            row["preempted"] = int(self.preempted.sum())
            row["lost_work_s"] = float(self.lost_work.sum())
        if self.deps is not None:
            row["tasks_skipped"] = int((self.sim.tasks.status == Status.SKIPPED).sum())
            dags = self.dag_table()
            done = ~np.isnan(dags["makespan"])
            row["dags_completed"] = int(done.sum())
            row["mean_dag_makespan"] = float(dags["makespan"][done].mean()) if done.any() else math.nan
            row["mean_dag_slack"] = float(dags["slack"][done].mean()) if done.any() else math.nan
        return row

    def dag_table(self) -> dict[str, np.ndarray]:
        """One row per DAG: first submit, last end, makespan, critical path and slack (seconds).

        Makespan and slack are NaN for a DAG with a task that did not complete.
        """
        deps, sim = self.deps, self.sim
        assert deps is not None
        ids = np.unique(deps.dag[deps.dag >= 0])
        table = {name: np.full(len(ids), np.nan) for name in ("submit", "end", "makespan", "critical_path", "slack")}
        for row, dag in enumerate(ids.tolist()):
            members = np.flatnonzero(deps.dag == dag)
            local = {int(t): i for i, t in enumerate(members)}
            parents = [[local[p] for p in deps.parents[t]] for t in members.tolist()]
            table["critical_path"][row] = critical_path(sim.w.duration[members], parents)
            table["submit"][row] = sim.w.submit_time[members].min()
            if np.all(sim.tasks.status[members] == Status.COMPLETED):
                table["end"][row] = sim.tasks.end[members].max()
        table["makespan"] = table["end"] - table["submit"]
        table["slack"] = table["makespan"] - table["critical_path"]
        return {"dag": ids, **table}


def easy_hooks(sim: Simulation) -> EasyHooks:
    """The expected ends EASY backfilling needs: the tasks' true durations (exact estimates)."""

    def running() -> list[tuple[float, np.ndarray, list[tuple[int, Assignment]]]]:
        tasks, durations, runs = sim.tasks, sim.w.duration, sim.ext.runs if sim.ext is not None else {}
        out = []
        for task in sorted({t for on_node in sim.running_on for t in on_node}):
            replicas = runs.get(task) or [(int(tasks.node[task]), sim.devices.get(task, {}))]
            out.append((float(tasks.start[task] + durations[task]), sim.w.demand[task], replicas))
        return out

    return EasyHooks(now=lambda: float(sim.env.now), duration_of=sim.w.duration.__getitem__, running=running)
