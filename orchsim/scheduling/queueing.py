"""One scheduling pass over a queue of pending tasks: the part of scheduling around ``select``.

``select`` decides where one task goes. What happens around it decides just as much: in
which order queued tasks are tried, whether a task that does not fit blocks the ones
behind it, what becomes of a task that can never fit, and what a waiting task is told.
Written twice, the simulator and the live master drift apart (they did: FIFO with
head-of-line blocking in one, every pending task tried in the other), so both call this.

Queue disciplines (``QUEUE_DISCIPLINES``):

* ``fifo``: tasks are tried in queue order and the first that does not fit stops the
  pass (head-of-line blocking).
* ``backfill``: every task among the first ``window`` is tried in queue order; a later
  task that fits may start before an earlier one that does not (greedy backfill, as
  Kubernetes and Nomad schedulers behave; EASY backfilling adds a reservation).

Under both, a task that does not fit now and never could (the owner's ``never_fits``) is
set aside and reported in ``never``: an impossible task must not block a queue forever.

The pass decides and the owner applies: for each placement it calls ``place(task,
node)``, which must allocate the task on ``nodes`` before returning so that the next
decision sees it (the simulator starts the task; the live master also queues the
placement for its etcd transaction). The pass never changes ``nodes`` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

import numpy as np

from orchsim.scheduling.filters import ActiveFilters, fits_node
from orchsim.scheduling.matrix import NodeMatrix
from orchsim.scheduling.select import select

__all__ = ["DEFAULTS", "QUEUE_DISCIPLINES", "PassResult", "SchedulingDefaults", "random_streams", "schedule_pass"]

T = TypeVar("T", bound=Hashable)
_NO_PARAMS: Mapping[str, Any] = {}

QUEUE_DISCIPLINES = ("fifo", "backfill")


@dataclass(frozen=True)
class SchedulingDefaults:
    """The defaults the simulator and the live master share (one place, one set of values).

    Attributes:
        queue: Queue discipline, ``fifo`` or ``backfill``.
        backfill_window: Tasks a backfill pass looks at.
        max_attempts: Placements per task before a task lost with its node is failed.
    """

    queue: str = "fifo"
    backfill_window: int = 100
    max_attempts: int = 5


DEFAULTS = SchedulingDefaults()


def random_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The policy's random stream and the cluster events' one, for a seed, on both sides.

    Two independent children of ``SeedSequence([seed, 7])``: a seeded ``random`` policy
    then draws the same numbers in the simulator and on the live master, and node
    failures drawn in the simulator do not shift the policy's draws.
    """
    policy, events = np.random.SeedSequence([seed, 7]).spawn(2)
    return np.random.default_rng(policy), np.random.default_rng(events)


class PassResult:
    """What one pass decided.

    Attributes:
        placed: Tasks placed, in the order they were placed.
        never: Tasks that cannot fit now and never could (``never_fits``), set aside.
        waiting: For tasks tried and left waiting, why (only with ``explain=True``).
        blocked: ``fifo``: the pass stopped at a task that does not fit now.
        decisions: ``select`` calls made.
    """

    # A plain slotted class, not a dataclass with factories: the simulator runs a pass per
    # arrival, and its construction cost is paid a million times in a large run.
    __slots__ = ("blocked", "decisions", "never", "placed", "waiting")

    def __init__(self) -> None:
        self.placed: list[Any] = []
        self.never: list[Any] = []
        self.waiting: dict[Any, str] = {}
        self.blocked = False
        self.decisions = 0

    def __repr__(self) -> str:
        return (
            f"PassResult(placed={self.placed!r}, never={self.never!r}, blocked={self.blocked}, "
            f"decisions={self.decisions})"
        )


def schedule_pass(
    nodes: NodeMatrix,
    queue: Iterable[T],
    policy: str | Callable[..., np.ndarray],
    *,
    request_of: Callable[[T], np.ndarray],
    place: Callable[[T, int], None],
    discipline: str = DEFAULTS.queue,
    window: int = DEFAULTS.backfill_window,
    selector_of: Callable[[T], Mapping[str, str] | None] | None = None,
    never_fits: Callable[[T], bool] | None = None,
    changed_node: int | None = None,
    head_blocked: bool = False,
    explain: bool = False,
    rng: np.random.Generator | None = None,
    filters: ActiveFilters = (),
    params: Mapping[str, Any] | None = None,
) -> PassResult:
    """Try the queued tasks in order under ``discipline``; place those that fit.

    Args:
        nodes: The cluster. Read here; changed only by ``place``.
        queue: Task keys in queue order (any hashable: an index, an id). Read lazily:
            the owner changes its queue only after the pass returns.
        policy: A registered policy name or a scorer.
        request_of: A task's float64 ``(R,)`` request vector.
        place: Applies a placement; must allocate the task on ``nodes`` before returning.
        discipline: ``fifo`` or ``backfill``.
        window: ``backfill``: how many queued tasks a pass looks at.
        selector_of: A task's node selector (labels), or None.
        never_fits: True for a task that no node could ever hold; such a task is set
            aside (``never``) instead of waiting or blocking. The owner decides what "ever"
            means (the simulator knows its future scale-outs; a live cluster can grow),
            and may remember its answer per task: it is asked after every failed try.
        changed_node: Only this node gained capacity since the last pass. A task that did
            not fit then and does not fit this node now cannot fit anywhere, so it is
            skipped without a ``select`` (``fifo``: only the head, when ``head_blocked``).
        head_blocked: ``fifo``: the head failed in the last pass.
        explain: Record why each tried task waits (a second pass over the nodes each).
        rng: Random generator for policies that draw (``random``, ``hybrid``).
        filters: Filters beyond the built-ins (``FILTERS.active(...)``, resolved once).
        params: Policy parameters.

    Returns:
        The placements in order, the tasks set aside as never fitting, the reasons of the
        rest (with ``explain``), whether ``fifo`` stopped at a blocked head, and the
        number of ``select`` calls.

    Raises:
        ValueError: an unknown discipline or a window below 1.
    """
    fifo = discipline == "fifo"
    if not fifo and discipline != "backfill":
        raise ValueError(f"queue discipline {discipline!r}: use one of {', '.join(QUEUE_DISCIPLINES)}")
    if window < 1:
        raise ValueError(f"backfill window must be at least 1, got {window}")
    result = PassResult()
    params = params or _NO_PARAMS
    # Iterated lazily, not copied (a fifo pass over a long queue usually stops at its head):
    # the owner must not change its queue during the pass, only after it.
    tasks: Iterable[T] = queue if fifo else islice(queue, window)
    position = -1
    for task in tasks:
        position += 1
        selector = selector_of(task) if selector_of is not None else None
        request = request_of(task)
        if (
            changed_node is not None
            and (not fifo or (position == 0 and head_blocked))
            and not fits_node(nodes, request.tolist(), changed_node, selector, extra=filters)
        ):
            if fifo:
                result.blocked = True
                return result
            continue
        result.decisions += 1
        decision = select(
            nodes, request, policy, rng=rng, node_selector=selector, explain=explain, filters=filters, **params
        )
        if decision.node is not None:
            place(task, decision.node)
            result.placed.append(task)
            continue
        if never_fits is not None and never_fits(task):
            result.never.append(task)
            continue
        if explain:
            result.waiting[task] = decision.reason
        if fifo:
            result.blocked = True
            return result
    return result
