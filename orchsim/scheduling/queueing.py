"""One scheduling pass over a queue of pending tasks: the part of scheduling around ``select``.

``select`` decides where one task goes. What happens around it decides just as much: in
which order queued tasks are tried, whether a task that does not fit blocks the ones
behind it, what becomes of a task that can never fit, and what a waiting task is told.
Written twice, the simulator and the live master drift apart (they did: FIFO with
head-of-line blocking in one, every pending task tried in the other), so both call this.

Queue disciplines (``QUEUE_DISCIPLINES``):

* ``fifo``: tasks are tried in queue order and the first that does not fit stops the
  pass (head-of-line blocking).
* ``backfill``: every task among the first ``window`` is tried in queue order, then
  every task the owner names as ``new`` (never tried yet) beyond them; a later task
  that fits may start before an earlier one that does not (greedy backfill, as
  Kubernetes and Nomad schedulers behave: a new task is tried when it arrives, and the
  window bounds how many waiting ones each pass retries).
* ``easy``: EASY backfilling (``easy.py``): the first task that does not fit gets a
  reservation at the earliest time the owner's expected ends make room for it, and a
  later task may start only if it does not delay that reservation. Needs ``EasyHooks``.

With ``PassExtensions`` (``pass_extensions.py``), the queue is tried by priority, a task
that fits nowhere may preempt lower-priority ones, and gangs are placed all at once or
not at all; without them the pass is the plain loop below, at no extra cost.

Under both, a task that does not fit now and never could (the owner's ``never_fits``) is
set aside and reported in ``never``: an impossible task must not block a queue forever.

The pass decides and the owner applies: for each placement it calls ``place(task,
node, devices)``, which must allocate the task on ``nodes`` (with those devices) before
returning so that the next decision sees it (the simulator starts the task; the live master also queues the
placement for its etcd transaction). The pass never changes ``nodes`` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

import numpy as np

from orchsim.scheduling.easy import EasyHooks, easy_run
from orchsim.scheduling.filters import ActiveFilters, fits_node
from orchsim.scheduling.gangs import Gang
from orchsim.scheduling.matrix import NodeMatrix
from orchsim.scheduling.node_devices import NO_DEVICES, Assignment
from orchsim.scheduling.pass_extensions import PassExtensions
from orchsim.scheduling.select import Decision, PreparedPolicy, choose_devices, decide

__all__ = [
    "DEFAULTS",
    "QUEUE_DISCIPLINES",
    "EasyHooks",
    "PassExtensions",
    "PassResult",
    "SchedulingDefaults",
    "SchedulingPass",
    "random_streams",
    "schedule_pass",
]

T = TypeVar("T", bound=Hashable)

QUEUE_DISCIPLINES = ("fifo", "backfill", "easy")


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
        decisions: Tasks decided on: ``select`` calls, and remembered tasks placed on the
            one node that gained room (``SchedulingPass``).
        preempted: ``(victim, preemptor, node)`` for every task evicted (``PassExtensions``),
            in order; the owner re-queues the victims after the pass.
    """

    # A plain slotted class, not a dataclass with factories: the simulator runs a pass per
    # arrival, and its construction cost is paid a million times in a large run.
    __slots__ = ("blocked", "decisions", "never", "placed", "preempted", "waiting")

    def __init__(self) -> None:
        self.placed: list[Any] = []
        self.never: list[Any] = []
        self.waiting: dict[Any, str] = {}
        self.blocked = False
        self.decisions = 0
        self.preempted: list[tuple[Any, Any, int]] = []

    def __repr__(self) -> str:
        return (
            f"PassResult(placed={self.placed!r}, never={self.never!r}, blocked={self.blocked}, "
            f"decisions={self.decisions})"
        )


class SchedulingPass:
    """The pass for an owner that runs it again and again: bound once, with a memory.

    Everything that stays fixed (policy, queue rule, callbacks) is bound here, and the
    pass remembers which tasks it last found no room for. The owner then tells each
    ``run`` where room appeared since the previous one, and tasks that cannot have
    gained anything are not scored again:

    * ``run(nodes, queue)``: no node gained room (a task arrived; a node failed). A task
      that found no room last time is skipped; new ones are tried.
    * ``run(nodes, queue, gained=node)``: only ``node`` gained room (a task on it ended).
      A task that found no room last time and does not fit ``node`` is skipped; one that
      fits it fits nowhere else, so when the policy cannot change the answer (it neither
      vetoes nor draws) it goes there without scoring.
    * ``forget()`` first when room may have appeared anywhere (nodes joined or came
      back): every task is tried again.

    The owner must run the pass (or ``forget``) after every change that frees room, or
    the memory is stale. ``schedule_pass`` builds a fresh one per call and so tries every
    task. The decisions are the ones a memoryless pass would make; only the cost differs.
    """

    __slots__ = (
        "_blocked",
        "_easy",
        "_explain",
        "_extensions",
        "_fifo",
        "_never_fits",
        "_place",
        "_policy",
        "_request_of",
        "_selector_of",
        "_shortcut",
        "_window",
    )

    def __init__(
        self,
        policy: str | Callable[..., np.ndarray] | PreparedPolicy,
        *,
        request_of: Callable[[Any], np.ndarray],
        place: Callable[[Any, int, Assignment], None],
        discipline: str = DEFAULTS.queue,
        window: int = DEFAULTS.backfill_window,
        selector_of: Callable[[Any], Mapping[str, str] | None] | None = None,
        never_fits: Callable[[Any], bool] | None = None,
        explain: bool = False,
        rng: np.random.Generator | None = None,
        filters: ActiveFilters = (),
        params: Mapping[str, Any] | None = None,
        extensions: PassExtensions | None = None,
        easy: EasyHooks | None = None,
    ) -> None:
        if discipline not in QUEUE_DISCIPLINES:
            raise ValueError(f"queue discipline {discipline!r}: use one of {', '.join(QUEUE_DISCIPLINES)}")
        if (discipline == "easy") != (easy is not None):
            raise ValueError("the easy discipline needs EasyHooks (expected ends), and only it takes them")
        if easy is not None and extensions is not None and extensions.running_of is not None:
            raise ValueError("preemption is not combined with the easy discipline")
        if window < 1:
            raise ValueError(f"backfill window must be at least 1, got {window}")
        if isinstance(policy, PreparedPolicy):
            self._policy = policy
        else:
            self._policy = PreparedPolicy(policy, filters=filters, rng=rng, params=params)
        self._fifo = discipline == "fifo"
        self._window = window
        self._request_of = request_of
        self._place = place
        self._selector_of = selector_of
        self._never_fits = never_fits
        self._explain = explain
        self._shortcut = not explain and self._policy.spec.skippable
        self._extensions = extensions
        self._easy = easy
        # Tasks the last run found no room for, and the runs since then only ever gained
        # room where ``gained`` said. With ``explain`` every task is tried (and explained).
        self._blocked: set[Any] = set()

    def forget(self) -> None:
        """Room may have appeared anywhere: the next run tries every task again."""
        self._blocked = set()

    def run(
        self, nodes: NodeMatrix, queue: Iterable[Any], *, gained: int | None = None, new: Iterable[Any] = ()
    ) -> PassResult:
        """One pass over ``queue``; ``gained``: the one node that gained room since the last run.

        ``new``: tasks in the queue never tried before (``backfill`` tries them even
        beyond the window; ``fifo`` ignores it).
        """
        if self._easy is not None:
            return self._run_easy(nodes, queue)
        fifo, prepared, explain, filters = self._fifo, self._policy, self._explain, self._policy.filters
        request_of, selector_of, place, extensions = self._request_of, self._selector_of, self._place, self._extensions
        was_blocked, blocked = self._blocked, set()
        self._blocked = blocked  # only tasks this run looks at stay remembered
        result = PassResult()
        # Iterated lazily (a fifo pass usually stops at its head): the owner changes its queue only after.
        tasks: Iterable[Any] = queue if fifo else backfill_order(queue, self._window, new)
        if extensions is not None:
            tasks = extensions.order(queue)
            tasks = tasks if fifo else backfill_order(tasks, self._window, extensions.order(new))
            was_blocked = extensions.memory(was_blocked)
        for task in tasks:
            known = task in was_blocked
            if known and gained is None:
                still = True
            else:
                selector = selector_of(task) if selector_of is not None else None
                request = request_of(task)
                still = known and not fits_node(nodes, request.tolist(), gained, selector, extra=filters)  # type: ignore[arg-type]
            if still:
                blocked.add(task)
                if fifo:
                    result.blocked = True
                    return result
                continue
            result.decisions += 1
            if extensions is not None:
                decision = extensions.decide(nodes, task, request, selector, prepared, explain, place, result.preempted)
                if decision.node is not None:
                    result.placed.append(task)
                    continue
                node = None  # type: ignore[assignment]
            elif known and self._shortcut:
                node = gained
                devices = choose_devices(nodes, request, prepared, gained) if nodes.devices else NO_DEVICES  # type: ignore[arg-type]
                prepared.last = nodes.ids[gained]  # type: ignore[index]  # as decide would have
            else:
                decision = decide(nodes, request, prepared, selector, explain=explain)
                node, devices = decision.node, decision.devices
            if node is not None:
                place(task, node, devices)
                result.placed.append(task)
            elif self._left_waiting(task, decision, blocked, result):
                return result
        return result

    def run_alone(self, nodes: NodeMatrix, task: Any) -> int | None:
        """``run`` over a queue holding only ``task``, which has just arrived: a quiet cluster's case.

        The decision and the memory are the ones ``run(nodes, [task], new=(task,))``
        leaves, without building a ``PassResult``: returns the node ``task`` was placed on
        (``place`` was called), ``-1`` if it can never fit (what ``run`` reports as
        ``never``) or None if it waits. Not for the ``easy`` discipline, with
        ``PassExtensions`` or with ``explain``: their passes do more than decide one task.
        """
        if self._easy is not None or self._extensions is not None or self._explain:
            raise ValueError("run_alone is for passes without easy, extensions or explain")
        selector = self._selector_of(task) if self._selector_of is not None else None
        decision = decide(nodes, self._request_of(task), self._policy, selector, explain=False)
        node = decision.node
        if node is not None:
            self._blocked = set()
            self._place(task, node, decision.devices)
            return node
        if self._never_fits is not None and self._never_fits(task):
            self._blocked = set()
            return -1
        self._blocked = {task}
        return None

    def _run_easy(self, nodes: NodeMatrix, queue: Iterable[Any]) -> PassResult:
        """An ``easy`` pass over the first ``window`` tasks (by priority when there are priorities)."""
        ordered = queue if self._extensions is None else self._extensions.order(queue)
        return easy_run(self, nodes, islice(ordered, self._window), self._easy)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ for easy.py
    @property
    def policy(self) -> PreparedPolicy:
        """The policy this pass decides with (its state included)."""
        return self._policy

    def request_of(self, task: Any) -> np.ndarray:
        """``task``'s request vector (per replica for a gang)."""
        return self._request_of(task)

    def selector_of_task(self, task: Any) -> Mapping[str, str] | None:
        """``task``'s node selector, or None."""
        return self._selector_of(task) if self._selector_of is not None else None

    def gang_of(self, task: Any) -> Gang | None:
        """``task``'s ``(replicas, min_replicas)``, or None for a single task."""
        extensions = self._extensions
        return extensions.gang_of(task) if extensions is not None and extensions.gang_of is not None else None

    def commit(self, task: Any, replicas: list[tuple[int, Assignment]]) -> None:
        """Hand a placement to the owner: one node for a task, every replica for a gang."""
        if self.gang_of(task) is not None:
            self._extensions.place_gang(task, replicas)  # type: ignore[union-attr,misc]
        else:
            self._place(task, *replicas[0])

    def never_fits_task(self, task: Any) -> bool:
        """The owner's never-fits verdict for a task that does not fit now."""
        return self._never_fits is not None and self._never_fits(task)

    def _left_waiting(self, task: Any, decision: Decision, blocked: set[Any], result: PassResult) -> bool:
        """Record a task that found no room (set aside, explained or remembered); True: the pass stops."""
        if self._never_fits is not None and self._never_fits(task):
            result.never.append(task)
            return False
        if self._explain:
            result.waiting[task] = decision.reason
        else:
            blocked.add(task)
        if self._fifo:
            result.blocked = True
            return True
        return False


def backfill_order(queue: Iterable[T], window: int, new: Iterable[T]) -> list[T]:
    """The tasks a backfill pass tries, in order: the first ``window``, then ``new`` ones past it."""
    head = list(islice(queue, window))
    if not new:
        return head
    seen = set(head)
    return head + [task for task in new if task not in seen]


def schedule_pass(
    nodes: NodeMatrix,
    queue: Iterable[T],
    policy: str | Callable[..., np.ndarray] | PreparedPolicy,
    *,
    request_of: Callable[[T], np.ndarray],
    place: Callable[[T, int, Assignment], None],
    discipline: str = DEFAULTS.queue,
    window: int = DEFAULTS.backfill_window,
    selector_of: Callable[[T], Mapping[str, str] | None] | None = None,
    never_fits: Callable[[T], bool] | None = None,
    new: Iterable[T] = (),
    explain: bool = False,
    rng: np.random.Generator | None = None,
    filters: ActiveFilters = (),
    params: Mapping[str, Any] | None = None,
    extensions: PassExtensions | None = None,
    easy: EasyHooks | None = None,
) -> PassResult:
    """Try the queued tasks in order under ``discipline``; place those that fit.

    Every task the discipline reaches is tried; an owner that runs passes over and over
    keeps a ``SchedulingPass`` instead, which skips tasks that cannot have gained room.

    Args:
        nodes: The cluster. Read here; changed only by ``place``.
        queue: Task keys in queue order (any hashable: an index, an id). Read lazily:
            the owner changes its queue only after the pass returns.
        policy: A registered policy name or a scorer, or a ``PreparedPolicy`` an owner
            keeps across passes (with the policy's state: round robin's cursor).
        request_of: A task's float64 ``(R,)`` request vector.
        place: Applies a placement ``(task, node, devices)``; must allocate the task on
            ``nodes`` (with ``devices``, the decision's ``{kind: indices}``, empty when the
            task needs none) before returning.
        discipline: ``fifo`` or ``backfill``.
        window: ``backfill`` and ``easy``: how many queued tasks a pass looks at.
        selector_of: A task's node selector (labels), or None.
        never_fits: True for a task that no node could ever hold; such a task is set
            aside (``never``) instead of waiting or blocking. The owner decides what "ever"
            means (the simulator knows its future scale-outs; a live cluster can grow),
            and may remember its answer per task: it is asked after every failed try.
        new: Tasks of the queue that were never tried (arrived since the last pass):
            ``backfill`` tries them even past the window.
        explain: Record why each tried task waits (a second pass over the nodes each),
            and always run the scorer (so every placement reports its score).
        rng: Random generator for policies that draw (``random``, ``hybrid``).
        filters: Filters beyond the built-ins (``FILTERS.active(...)``, resolved once).
        params: Policy parameters.
        extensions: Priorities, preemption and gangs (``PassExtensions``); None: none of them.
        easy: Expected ends for the ``easy`` discipline (``EasyHooks``), which needs them.

    Returns:
        The placements in order, the tasks set aside as never fitting, the reasons of the
        rest (with ``explain``), whether ``fifo`` stopped at a blocked head, and the
        number of decisions made.

    Raises:
        ValueError: an unknown discipline or a window below 1.
    """
    scheduler = SchedulingPass(
        policy,
        request_of=request_of,
        place=place,
        discipline=discipline,
        window=window,
        selector_of=selector_of,
        never_fits=never_fits,
        explain=explain,
        rng=rng,
        filters=filters,
        params=params,
        extensions=extensions,
        easy=easy,
    )
    return scheduler.run(nodes, queue, new=new)
