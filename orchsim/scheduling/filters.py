"""Feasibility: which nodes can take a request at all, as one list of named filters.

A filter is a pure function ``(nodes, request, task, **params) -> bool (N,)``, True
where the node passes. Three are built in and always on, in this order:

* ``schedulable``: the node is up and not cordoned or draining (rejects as
  ``unschedulable``);
* ``node_selector``: the node carries every label the task selects (``node_selector
  mismatch``);
* ``resources``: free capacity covers the request in every dimension (``insufficient
  <resource>``, one count per resource).

More register with ``@filter("name")``, like policies (``max_tasks_per_node`` ships as
an example). A registered filter is off until a scenario (``scheduler.filters``), a
``select(filters=...)`` call or the live master (``--filters``) names it with its
parameters, unless it was registered with ``default=True`` (always on, e.g. a taint
every node must respect).

Everything else is derived from that one list, so there is one "does it fit" check:

* ``infeasible``: the rejected mask, the fast path of every decision;
* ``rejections``: the explanation of a task that fits nowhere, each node counted under
  the first filter it fails (the counts add up to N, as in "0/40 nodes fit: 31
  insufficient cpu, 9 insufficient memory");
* ``fits_node``: one node only, for an engine that knows which node just freed capacity;
* ``could_ever_fit``: on empty nodes, with only the filters that do not depend on load
  (``static=True``), to tell "not now" from "never".
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orchsim.scheduling import node_devices
from orchsim.scheduling.errors import FilterError
from orchsim.scheduling.matrix import NodeMatrix

__all__ = [
    "FILTERS",
    "ActiveFilters",
    "FilterRegistry",
    "FilterSpec",
    "TaskInfo",
    "UnknownFilterError",
    "could_ever_fit",
    "explain_never",
    "feasible",
    "filter",
    "fits_node",
    "fits_resources",
    "infeasible",
    "rejections",
    "schedulable",
]


@dataclass(frozen=True)
class TaskInfo:
    """What a filter may know about a task besides its request vector.

    Attributes:
        node_selector: Labels a node must carry.
        labels: The task's own labels (for filters such as anti-affinity).
    """

    node_selector: Mapping[str, str] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


NO_TASK = TaskInfo()

FilterFn = Callable[..., np.ndarray]


class UnknownFilterError(KeyError):
    """A filter name that is not registered; the message lists the registered ones."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class FilterSpec:
    """What the registry knows about a filter.

    Attributes:
        name: Registered name.
        check: ``(nodes, request, task, **params) -> bool (N,)``, True where a node passes.
        reason: How a rejected node is counted in explanations ("too many tasks").
        static: The verdict depends only on what a node is (labels, capacity), not on
            what runs on it now, so an empty cluster failing it means "never fits".
        default: Always on, without being named.
        params: Names of its keyword parameters.
    """

    name: str
    check: FilterFn
    reason: str
    static: bool
    default: bool
    params: tuple[str, ...]

    def run(self, nodes: NodeMatrix, request: np.ndarray, task: TaskInfo, params: Mapping[str, Any]) -> np.ndarray:
        """``check``'s answer, checked: a bool array with one value per node (``FilterError`` names the filter).

        An int array turned ``~`` into -1 and -2 (both true), a list raised deep in numpy, and a
        shorter array was broadcast to every node or raised there, none of them naming the filter;
        an exception it raises is a ``FilterError`` too (the live master blamed the policy).
        """
        try:
            ok = self.check(nodes, request, task, **params)
        except Exception as err:
            raise FilterError(f"filter {self.name!r} raised {type(err).__name__}: {err}") from err
        if type(ok) is not np.ndarray or ok.dtype != np.bool_ or ok.shape != (nodes.n_nodes,):
            got = f"{ok.dtype} array of shape {ok.shape}" if isinstance(ok, np.ndarray) else type(ok).__name__
            raise FilterError(f"filter {self.name!r} returned {got}, expected a bool array of shape ({nodes.n_nodes},)")
        return ok

    def unknown_params(self, names: Iterable[str]) -> str | None:
        """None if the filter takes every one of ``names``; else what is wrong, for a message."""
        unknown = sorted(set(names) - set(self.params))
        if not unknown:
            return None
        return f"no parameter {', '.join(unknown)}; it takes: {', '.join(self.params) or 'none'}"


# A filter configured for use: its spec and the parameters it is called with.
ActiveFilters = tuple[tuple[FilterSpec, Mapping[str, Any]], ...]


class FilterRegistry(Mapping[str, FilterSpec]):
    """Filters beyond the three built-ins, by name, in registration order."""

    def __init__(self) -> None:
        self._specs: dict[str, FilterSpec] = {}
        self._defaults: ActiveFilters = ()

    def __getitem__(self, name: str) -> FilterSpec:
        return self.spec(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def spec(self, name: str) -> FilterSpec:
        """The spec of ``name``; UnknownFilterError lists the valid names."""
        try:
            return self._specs[name]
        except KeyError:
            valid = ", ".join(sorted(self._specs)) or "none registered"
            raise UnknownFilterError(f"unknown filter {name!r}; valid filters: {valid}") from None

    def register(
        self,
        name: str,
        check: FilterFn,
        *,
        reason: str | None = None,
        static: bool = False,
        default: bool = False,
        replace: bool = False,
    ) -> FilterSpec:
        """Register ``check`` under ``name``; re-registering a name needs ``replace=True``."""
        if name in _BUILT_IN or (name in self._specs and not replace):
            raise ValueError(f"filter {name!r} is already registered (pass replace=True to override it)")
        params = list(inspect.signature(check).parameters.values())
        if len(params) < 3:
            raise TypeError(
                f"filter {name!r}: a filter takes (nodes, request, task, ...), got {inspect.signature(check)}"
            )
        keyword = tuple(p.name for p in params[3:] if p.kind is not inspect.Parameter.VAR_KEYWORD)
        spec = FilterSpec(name, check, reason or name.replace("_", " "), static, default, keyword)
        self._specs[name] = spec
        self._reset_defaults()
        return spec

    def unregister(self, name: str) -> None:
        """Remove a filter (mainly for tests that register throwaway ones)."""
        self.spec(name)
        del self._specs[name]
        self._reset_defaults()

    def withdraw(self, names: Iterable[str]) -> list[FilterSpec]:
        """Unregister ``names`` (those registered); the removed specs, for ``reinstate``."""
        gone = [self._specs.pop(name) for name in names if name in self._specs]
        self._reset_defaults()
        return gone

    def reinstate(self, specs: Iterable[FilterSpec]) -> None:
        """Put back specs that ``withdraw`` removed."""
        self._specs.update((spec.name, spec) for spec in specs)
        self._reset_defaults()

    def _reset_defaults(self) -> None:
        """The filters always on, with no parameters: kept, since every decision asks for them."""
        self._defaults = tuple((s, {}) for s in self._specs.values() if s.default)

    def active(self, chosen: Mapping[str, Mapping[str, Any]] | Iterable[str] | None = None) -> ActiveFilters:
        """The filters to run besides the built-ins: those always on, then ``chosen``.

        Args:
            chosen: Names, or names mapped to their parameters (``{"max_tasks_per_node":
                {"limit": 8}}``).

        Raises:
            UnknownFilterError: a name that is not registered.
            TypeError: a parameter the filter does not take.
        """
        if not chosen:
            return self._defaults
        items = chosen.items() if isinstance(chosen, Mapping) else ((name, {}) for name in chosen)
        active = list(self._defaults)
        for name, params in items:
            spec = self.spec(name)
            if problem := spec.unknown_params(params or {}):
                raise TypeError(f"filter {name!r} has {problem}")
            if not spec.default:
                active.append((spec, dict(params or {})))
        return tuple(active)


_BUILT_IN = ("schedulable", "node_selector", "resources")
FILTERS = FilterRegistry()


def filter(  # the decorator reads as the concept it registers, like @policy
    name: str, *, reason: str | None = None, static: bool = False, default: bool = False, replace: bool = False
) -> Callable[[FilterFn], FilterFn]:
    """Decorator: register a filter under ``name`` and return it unchanged."""

    def register(check: FilterFn) -> FilterFn:
        FILTERS.register(name, check, reason=reason, static=static, default=default, replace=replace)
        return check

    return register


# --------------------------------------------------------------------- the derived checks
def schedulable(nodes: NodeMatrix) -> np.ndarray:
    """Bool ``(N,)``: node is up and not cordoned or draining (a copy)."""
    return nodes.schedulable.copy()


def fits_resources(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
    """Bool ``(N,)``: free capacity covers ``request`` in every dimension.

    Dimensions requested at zero are skipped: free capacity is never negative, so they
    always fit, and skipping them keeps a 2-resource request on a 4-resource cluster at
    two comparisons.
    """
    free = nodes.free
    mask = np.ones(nodes.n_nodes, dtype=bool)
    for r in np.flatnonzero(request):
        mask &= free[r] >= request[r]
    return mask


def _task(node_selector: Mapping[str, str] | None, task: TaskInfo | None) -> TaskInfo:
    if task is not None:
        return task
    return TaskInfo(node_selector=node_selector) if node_selector else NO_TASK


def infeasible(
    nodes: NodeMatrix,
    request: np.ndarray,
    node_selector: Mapping[str, str] | None = None,
    *,
    extra: ActiveFilters = (),
    task: TaskInfo | None = None,
) -> np.ndarray:
    """Bool ``(N,)``: True where the node is rejected by any filter (the complement of ``feasible``).

    ``select`` works with the rejected set because it is usually small: its indices are
    cheap to list, and the feasible count is N minus their number. The built-ins are
    fused here (one pass per requested resource) because this runs on every decision.
    """
    free = nodes.free
    bad = ~nodes.schedulable
    for r, amount in enumerate(request.tolist()):
        if amount > 0:
            bad |= free[r] < amount
    if nodes.devices and (devices_fit := node_devices.fits_mask(nodes, request)) is not None:
        bad |= ~devices_fit
    selector = task.node_selector if task is not None else node_selector
    if selector:
        bad |= ~nodes.label_mask(selector)
    if extra:
        info = _task(node_selector, task)
        for spec, params in extra:
            bad |= ~spec.run(nodes, request, info, params)
    return bad


def feasible(
    nodes: NodeMatrix,
    request: np.ndarray,
    node_selector: Mapping[str, str] | None = None,
    *,
    extra: ActiveFilters = (),
    task: TaskInfo | None = None,
) -> np.ndarray:
    """Bool ``(N,)``: passes every filter (schedulable, labels, resources, and ``extra``)."""
    return ~infeasible(nodes, request, node_selector, extra=extra, task=task)


def rejections(
    nodes: NodeMatrix,
    request: np.ndarray,
    node_selector: Mapping[str, str] | None = None,
    *,
    available: np.ndarray | None = None,
    candidates: tuple[str, np.ndarray] | None = None,
    extra: ActiveFilters = (),
    task: TaskInfo | None = None,
) -> dict[str, int]:
    """Count nodes rejected by each filter, each node under the first filter it fails.

    Order: ``unschedulable``, ``node_selector mismatch``, ``insufficient <resource>`` in
    resource order, then the ``extra`` filters' reasons. Filters that reject nobody are
    left out.

    Args:
        nodes: The cluster; read only.
        request: Float64 ``(R,)`` request vector.
        node_selector: Labels the node must carry.
        available: ``(R, N)`` amounts to compare the request with; default the free
            capacity. Pass ``nodes.capacity`` to ask whether the task could ever fit
            (on an empty node).
        candidates: ``(label, mask)`` replacing the first check: nodes outside ``mask``
            are counted under ``label`` (default ``("unschedulable", nodes.schedulable)``).
        extra: Filters beyond the built-ins (``FILTERS.active(...)``).
        task: The task's ``TaskInfo`` (its node selector wins over ``node_selector``).
    """
    info = _task(node_selector, task)
    counts: dict[str, int] = {}
    remaining = np.ones(nodes.n_nodes, dtype=bool)
    checks: list[tuple[str, np.ndarray]] = [candidates or ("unschedulable", nodes.schedulable)]
    if info.node_selector:
        checks.append(("node_selector mismatch", nodes.label_mask(info.node_selector)))
    free = nodes.free if available is None else available
    for r, name in enumerate(nodes.resources):
        if request[r] > 0:
            checks.append((f"insufficient {name}", free[r] >= request[r]))
    if nodes.devices:  # a node whose total would fit but whose devices cannot
        checks.extend(node_devices.device_checks(nodes, request, ever=available is not None))
    for spec, params in extra:
        checks.append((spec.reason, spec.run(nodes, request, info, params)))
    for label, passes in checks:
        failed = remaining & ~passes
        n_failed = int(failed.sum())
        if n_failed:
            counts[label] = counts.get(label, 0) + n_failed
        remaining &= passes
    return counts


def fits_node(
    nodes: NodeMatrix,
    request: Iterable[float],
    node: int,
    node_selector: Mapping[str, str] | None = None,
    *,
    extra: ActiveFilters = (),
    task: TaskInfo | None = None,
) -> bool:
    """Could ``node`` take the request now? The same filters, on one node.

    The built-ins cost an R-vector comparison; an ``extra`` filter is evaluated over all
    nodes and read at ``node`` (correct for any filter, and rare on this path).
    """
    if not nodes.schedulable[node]:
        return False
    if not (node_selector or task or extra or nodes.devices):  # the built-ins only: the engine's every completion
        return all(need <= have for need, have in zip(request, nodes.free[:, node].tolist(), strict=True))
    info = _task(node_selector, task)
    if info.node_selector and not nodes.label_mask(info.node_selector)[node]:
        return False
    free = nodes.free[:, node].tolist()
    if not all(need <= have for need, have in zip(request, free, strict=True)):
        return False
    if nodes.devices and not node_devices.fits_at(nodes, np.asarray(request, dtype=np.float64), node):
        return False
    if extra:
        vector = np.asarray(request, dtype=np.float64)
        return all(bool(spec.run(nodes, vector, info, params)[node]) for spec, params in extra)
    return True


def could_ever_fit(
    nodes: NodeMatrix,
    request: np.ndarray,
    candidates: np.ndarray,
    node_selector: Mapping[str, str] | None = None,
    *,
    extra: ActiveFilters = (),
    task: TaskInfo | None = None,
) -> bool:
    """Could any of the ``candidates`` nodes hold the request if it were empty?

    Only filters that do not depend on load count (``static``): a node that is down may
    come back, and a task count or free capacity may fall, but labels and capacity stay.
    """
    info = _task(node_selector, task)
    ok = candidates & np.all(nodes.capacity >= request[:, None], axis=0)
    if nodes.devices and (devices_fit := node_devices.could_ever_fit_mask(nodes, request)) is not None:
        ok &= devices_fit
    if info.node_selector:
        ok &= nodes.label_mask(info.node_selector)
    for spec, params in extra:
        if spec.static and ok.any():
            ok &= spec.run(nodes, request, info, params)
    return bool(ok.any())


def explain_never(
    nodes: NodeMatrix,
    request: np.ndarray,
    node_selector: Mapping[str, str] | None = None,
    *,
    candidates: tuple[str, np.ndarray] | None = None,
    extra: ActiveFilters = (),
    task: TaskInfo | None = None,
) -> str:
    """Why no node could hold the request even when empty, in the words both sides print.

    Args:
        nodes: The cluster; read only.
        request: Float64 ``(R,)`` request vector.
        node_selector: Labels the node must carry.
        candidates: ``(label, mask)``: nodes outside ``mask`` are counted under ``label``
            (the simulator's removed nodes); default every node is a candidate.
        extra: Filters beyond the built-ins; only the static ones are consulted.
        task: The task's ``TaskInfo`` (its node selector wins over ``node_selector``).
    """
    static = tuple(f for f in extra if f[0].static)
    everyone = ("", np.ones(nodes.n_nodes, dtype=bool))
    counts = rejections(
        nodes,
        request,
        node_selector,
        available=nodes.capacity,
        candidates=candidates or everyone,
        extra=static,
        task=task,
    )
    detail = ", ".join(f"{count} {label}" for label, count in counts.items())
    return f"never fits: 0/{nodes.n_nodes} nodes could hold it even when empty" + (f": {detail}" if detail else "")


# --------------------------------------------------------------------- shipped extra filters
@filter("max_tasks_per_node", reason="too many tasks")
def max_tasks_per_node(nodes: NodeMatrix, request: np.ndarray, task: TaskInfo, *, limit: int = 110) -> np.ndarray:
    """At most ``limit`` tasks on a node (the kubelet's ``maxPods``, 110 by default).

    Bounds the blast radius of one node failure whatever the scoring policy packs.
    """
    return nodes.tasks < limit
