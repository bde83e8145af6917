"""EASY backfilling (Lifka 1995; Mu'alem & Feitelson 2001): the Parallel Workloads Archive's standard.

Tasks are tried in queue order (by priority first when the owner gives priorities). The
first task that does not fit, the head, gets a reservation: the earliest time at which
it would fit if the running tasks ended when the owner expects them to (the "shadow
time"), on the cluster as it would be then (the "shadow"). Every later task that fits
now may start ("backfill") if it does not delay the head: it is expected to end by the
shadow time, or the head still fits on the shadow with it running there too. Unlike the
greedy ``backfill`` discipline, a stream of small tasks can then never starve a large one.

Only the first blocked task is protected (that is EASY; conservative backfilling would
reserve for every waiting task). Fits on the shadow are checked by the filters, without
the policy (a first-fit trial for a gang): the reservation says whether the head can go
by then, not where the policy will put it. Expected durations come from the owner: the
simulator uses the tasks' true durations (exact estimates); a trace's requested run time
would give the classic inexact ones. The pass's memory of blocked tasks is not used:
every pass recomputes the reservation from the running tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from orchsim.scheduling.filters import infeasible
from orchsim.scheduling.gangs import Gang, gang_could_ever_fit, gang_fits, place_gang
from orchsim.scheduling.matrix import NodeMatrix
from orchsim.scheduling.node_devices import Assignment
from orchsim.scheduling.select import decide

if TYPE_CHECKING:
    from orchsim.scheduling.queueing import PassResult, SchedulingPass

__all__ = ["EasyHooks", "easy_run"]

Replicas = list[tuple[int, Assignment]]


@dataclass(frozen=True)
class EasyHooks:
    """What EASY needs from its owner besides the queue.

    Attributes:
        now: The current time (seconds).
        duration_of: A queued task's expected run time (seconds; ``inf``: runs forever).
        running: Every running task as ``(expected end, request (R,), [(node, devices), ...])``
            (several entries for a gang's replicas).
    """

    now: Callable[[], float]
    duration_of: Callable[[Any], float]
    running: Callable[[], list[tuple[float, np.ndarray, Replicas]]]


@dataclass
class _Reservation:
    time: float  # the shadow time
    shadow: NodeMatrix  # the cluster at that time, the head not placed
    fits: Callable[[NodeMatrix], bool]  # does the head fit on a matrix?


def easy_run(owner: SchedulingPass, nodes: NodeMatrix, tasks: Iterable[Any], hooks: EasyHooks) -> PassResult:
    """One EASY pass over ``tasks`` (already in order), placing through ``owner``'s callbacks."""
    from orchsim.scheduling.queueing import PassResult

    result = PassResult()
    reservation: _Reservation | None = None
    now = hooks.now()
    for task in tasks:
        result.decisions += 1
        request, selector = owner.request_of(task), owner.selector_of_task(task)
        gang = owner.gang_of(task)
        replicas = _propose(owner, nodes, request, selector, gang)
        if reservation is None:
            if replicas:
                owner.commit(task, replicas)
                result.placed.append(task)
            elif owner.never_fits_task(task):
                result.never.append(task)
            else:
                reservation = _reserve(owner, nodes, request, selector, gang, hooks)
                result.blocked = True
                if reservation is None:
                    return result  # the head cannot fit even when everything ends: nothing may pass it
            continue
        if replicas and _harmless(reservation, request, replicas, now + hooks.duration_of(task)):
            owner.commit(task, replicas)
            result.placed.append(task)
    return result


def _propose(
    owner: SchedulingPass,
    nodes: NodeMatrix,
    request: np.ndarray,
    selector: Mapping[str, str] | None,
    gang: Gang | None,
) -> Replicas:
    """Where the policy would put the task now (every replica of a gang), or [] if it does not fit.

    A gang that cannot fit by count (whole replicas per node on the free room, summed, below
    ``min_replicas``) is not tried: with a long queue on a full cluster nearly every candidate
    is such a gang, and a trial costs one decision per replica. Its policy state (round
    robin's cursor, random draws) then does not move, as no decision was made.
    """
    if gang is not None:
        free = nodes.free  # every node counts here: labels and filters are left to the trial
        if not gang_could_ever_fit(free, request, gang[1], np.ones(free.shape[1], dtype=bool)):
            return []
        return place_gang(nodes, request, gang, owner.policy, selector)
    decision = decide(nodes, request, owner.policy, selector, explain=False)
    return [] if decision.node is None else [(decision.node, decision.devices)]


def _reserve(
    owner: SchedulingPass,
    nodes: NodeMatrix,
    request: np.ndarray,
    selector: Mapping[str, str] | None,
    gang: Gang | None,
    hooks: EasyHooks,
) -> _Reservation | None:
    """The head's shadow time and shadow: release running tasks by expected end until it fits."""
    filters = owner.policy.filters

    def fits(matrix: NodeMatrix) -> bool:
        if gang is not None:
            return gang_fits(matrix, request, gang[1], selector, filters)
        return not infeasible(matrix, request, selector, extra=filters).all()

    shadow = nodes.copy()
    running = sorted(hooks.running(), key=lambda run: run[0])
    for i, (end, demand, replicas) in enumerate(running):
        if end == np.inf:
            break
        vector = demand.tolist()
        for node, devices in replicas:
            shadow.release_unchecked(node, vector, devices)
        if i + 1 < len(running) and running[i + 1][0] == end:
            continue  # the shadow is the cluster once EVERY task ending then has ended (all its extra room)
        if fits(shadow):
            return _Reservation(end, shadow, fits)
    return None


def _harmless(reservation: _Reservation, request: np.ndarray, replicas: Replicas, end: float) -> bool:
    """May a task that fits now start without delaying the head? Keeps the shadow up to date."""
    if end <= reservation.time:
        return True  # gone by the shadow time
    trial = reservation.shadow.copy()
    vector = request.tolist()
    for node, devices in replicas:
        if not np.all(trial.free[:, node] >= request):
            return False  # that node will not have room for it at the shadow time
        trial.allocate_unchecked(node, vector, devices)
    if not reservation.fits(trial):
        return False
    reservation.shadow = trial  # still running at the shadow time: later candidates see it there
    return True
