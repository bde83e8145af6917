"""What the scheduling pass does beyond one task at a time: priorities, preemption, gangs.

An owner that uses none of these passes no ``PassExtensions`` and the pass runs its
plain loop: nothing here costs anything on the common path. With extensions:

* ``priority_of``: the queue is tried highest priority first, then in queue (arrival)
  order among equals (a stable sort), under both disciplines.
* ``running_of`` + ``evict``: preemption. A task that fits nowhere asks
  ``preemption.choose_victims`` for one node and its lower-priority victims; the pass
  calls ``evict(victims, node)``, which must release them on the matrix before returning
  (the owner stops them and re-queues them after the pass, from ``PassResult.preempted``),
  and decides again. The pass's memory of tasks without room is not used: an eviction
  or a new low-priority task may make room anywhere.
* ``gang_of`` + ``place_gang``: a task with ``(replicas, min_replicas)`` is placed by
  ``gangs.place_gang`` all at once (``place_gang(task, placements)``) or not at all. With
  preemption too, a gang that does not fit plans evictions replica by replica
  (``gang_preemption``): all of them are made, then the gang placed, or none. A gang is
  never a victim.

The same object serves the live master: it builds ``RunningTasks`` from its ledgers in
``running_of`` and turns ``evict`` into the etcd transitions that stop the victims.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from orchsim.scheduling.filters import TaskInfo
from orchsim.scheduling.gang_preemption import plan_gang_preemption
from orchsim.scheduling.gangs import Gang, place_gang
from orchsim.scheduling.matrix import NodeMatrix
from orchsim.scheduling.node_devices import Assignment, needs
from orchsim.scheduling.preemption import RunningTasks, choose_victims
from orchsim.scheduling.select import Decision, PreparedPolicy, decide

__all__ = ["GangDecision", "PassExtensions"]


class GangDecision(Decision):
    """A gang's outcome: placed on its first replica's node, or why it waits."""

    __slots__ = ("why",)

    def __init__(self, node: int | None, nodes: NodeMatrix, policy: str, why: str) -> None:
        super().__init__(node, None if node is None else nodes.ids[node], None, policy, nodes.n_nodes, 0, {})
        self.why = why

    @property
    def reason(self) -> str:
        return self.why


@dataclass(frozen=True)
class PassExtensions:
    """Callbacks the owner gives the pass for priorities, preemption and gangs (each optional).

    Attributes:
        priority_of: A task's integer priority (higher goes first); None: all equal.
        running_of: The running tasks preemption may evict (``RunningTasks``); None: no preemption.
        evict: ``(victims, node)``: stop the victims on ``node`` and release them on the
            matrix before returning.
        gang_of: A task's ``(replicas, min_replicas)``, or None for a single task.
        place_gang: ``(task, [(node, devices), ...])``: allocate every replica.
    """

    priority_of: Callable[[Any], int] | None = None
    running_of: Callable[[], RunningTasks] | None = None
    evict: Callable[[list[Any], int], None] | None = None
    gang_of: Callable[[Any], Gang | None] | None = None
    place_gang: Callable[[Any, list[tuple[int, Assignment]]], None] | None = None

    def __post_init__(self) -> None:
        if (self.running_of is None) != (self.evict is None):
            raise ValueError("preemption needs both running_of and evict")
        if self.running_of is not None and self.priority_of is None:
            raise ValueError("preemption needs priority_of")
        if (self.gang_of is None) != (self.place_gang is None):
            raise ValueError("gangs need both gang_of and place_gang")

    def order(self, tasks: Iterable[Any]) -> list[Any]:
        """``tasks`` highest priority first, in their given order among equals."""
        priority_of = self.priority_of
        if priority_of is None:
            return list(tasks)
        return sorted(tasks, key=lambda task: -priority_of(task))

    def memory(self, blocked: set[Any]) -> set[Any]:
        """The tasks the pass may skip as still without room (none while preemption is on)."""
        return set() if self.running_of is not None else blocked

    def decide(
        self,
        nodes: NodeMatrix,
        task: Any,
        request: np.ndarray,
        selector: Mapping[str, str] | None,
        prepared: PreparedPolicy,
        explain: bool,
        place: Callable[[Any, int, Assignment], None],
        preempted: list[tuple[Any, Any, int]],
    ) -> Decision:
        """Decide ``task`` (a gang, or one task that may preempt) and place it if it can go."""
        attempt = _Attempt(nodes, task, request, selector, prepared, preempted)
        gang = self.gang_of(task) if self.gang_of is not None else None
        if gang is not None:
            return self._gang(attempt, gang)
        decision = decide(nodes, request, prepared, selector, explain=explain)
        if decision.node is None and self.running_of is not None:
            decision = self._preempt(attempt, explain) or decision
        if decision.node is not None:
            place(task, decision.node, decision.devices)
        return decision

    def _gang(self, attempt: _Attempt, gang: Gang) -> Decision:
        nodes, prepared = attempt.nodes, attempt.prepared
        placements = place_gang(nodes, attempt.request, gang, prepared, attempt.selector)
        name = prepared.spec.name
        if not placements and self.running_of is not None:
            placements = self._preempt_gang(attempt, gang)
        if not placements:
            replicas, least = gang
            return GangDecision(None, nodes, name, f"gang of {replicas}: fewer than {least} replicas fit at once")
        self.place_gang(attempt.task, placements)  # type: ignore[misc]
        return GangDecision(placements[0][0], nodes, name, f"gang of {len(placements)} placed by {name}")

    def _preempt_gang(self, attempt: _Attempt, gang: Gang) -> list[tuple[int, Assignment]]:
        """Evict what ``plan_gang_preemption`` plans and return its placements; [] (nothing evicted) without a plan."""
        running = self.running_of()  # type: ignore[misc]
        priority = self.priority_of(attempt.task)  # type: ignore[misc]
        nodes, request, candidates = attempt.nodes, attempt.request, attempt.candidates()
        prepared, selector = attempt.prepared, attempt.selector
        plan = plan_gang_preemption(nodes, request, gang, priority, running, candidates, prepared, selector)
        if plan is None:
            return []
        placements, evictions = plan
        steps = [([running.task[i] for i in rows.tolist()], node) for rows, node in evictions]  # keys before evicting
        for victims, node in steps:
            self._evict(attempt, victims, node)
        return placements

    def _preempt(self, attempt: _Attempt, explain: bool) -> Decision | None:
        """Evict the victims ``choose_victims`` names and decide again; None when nothing is evicted.

        Victims go only if the task is then placed, as tried first on a copy of the matrix
        (the victims' requests and devices given back): ``choose_victims`` sees amounts only
        (a node's total of free GPU is not a free GPU), and a veto, a filter that depends on
        load or the policy's own choice could also leave the task unplaced after the
        evictions, which then came again at every pass. A request for tracked devices does
        not preempt when the owner does not say which devices its tasks hold.
        """
        nodes, request, prepared = attempt.nodes, attempt.request, attempt.prepared
        running = self.running_of()  # type: ignore[misc]
        if running.devices is None and needs(nodes, request):
            return None
        priority = self.priority_of(attempt.task)  # type: ignore[misc]
        choice = choose_victims(nodes.free, request, priority, running, attempt.candidates())
        if choice is None:
            return None
        trial, state = nodes.copy(), prepared.snapshot()
        for row in choice.victims.tolist():
            held = None if running.devices is None else running.devices[row]
            trial.release_unchecked(int(running.node[row]), running.demand[row].tolist(), held or None)
        placed = decide(trial, request, prepared, attempt.selector, explain=False).node is not None
        prepared.restore(state)
        if not placed:
            return None
        self._evict(attempt, [running.task[i] for i in choice.victims.tolist()], choice.node)
        return decide(nodes, request, prepared, attempt.selector, explain=explain)

    def _evict(self, attempt: _Attempt, victims: list[Any], node: int) -> None:
        """Have the owner stop ``victims`` on ``node`` and note them as preempted by the attempt's task."""
        self.evict(victims, node)  # type: ignore[misc]
        attempt.preempted.extend((victim, attempt.task, node) for victim in victims)


@dataclass(frozen=True)
class _Attempt:
    """One task's placement attempt: what every step of deciding it (gang, preemption) reads."""

    nodes: NodeMatrix
    task: Any
    request: np.ndarray
    selector: Mapping[str, str] | None
    prepared: PreparedPolicy
    preempted: list[tuple[Any, Any, int]]

    def candidates(self) -> np.ndarray:
        """Nodes a preemptor may use apart from their load: schedulable, labels, the static filters."""
        candidates = self.nodes.schedulable.copy()
        if self.selector:
            candidates &= self.nodes.label_mask(self.selector)
        info = TaskInfo(node_selector=self.selector)
        for spec, params in self.prepared.filters:
            if spec.static:  # filters that depend on load are checked by the decision after eviction
                candidates &= spec.run(self.nodes, self.request, info, params)
        return candidates
