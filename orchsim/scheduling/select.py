"""The one placement pipeline: filter -> score -> select.

The simulator and the live master both call ``select``; neither re-implements any part
of it. It reads the matrix and returns a ``Decision``; applying it (``allocate``) is the
owner's job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from orchsim.scheduling import node_devices
from orchsim.scheduling.errors import PolicyError
from orchsim.scheduling.filters import FILTERS, ActiveFilters, TaskInfo, infeasible, rejections
from orchsim.scheduling.matrix import NodeMatrix
from orchsim.scheduling.memo import DecisionMemo
from orchsim.scheduling.node_devices import NO_DEVICES, Assignment
from orchsim.scheduling.registry import POLICIES, PolicyRegistry, PolicySpec
from orchsim.scheduling.sampling import RememberedWindow, Sampling, fits_range, parse_sampling, scan
from orchsim.scheduling.state_classes import ClassTable, StateClasses
from orchsim.scheduling.subset import NodeSubset

__all__ = ["Decision", "PolicyError", "PreparedPolicy", "choose_devices", "decide", "select"]

Request = Mapping[str, float] | np.ndarray
_FLOAT64 = np.dtype(np.float64)  # what a native float64 vector's dtype is (a singleton): checked by identity


class Decision:
    """The outcome of one placement decision.

    Attributes:
        node: Chosen node index, or None if the task fits nowhere.
        node_id: Chosen node id, or None.
        score: The winning score, or None (nothing placed, or the scorer was skipped
            because exactly one node fits; see ``select``).
        policy: Name of the policy that decided.
        n_nodes: Nodes considered.
        feasible: Nodes that passed every filter.
        rejected: For an unplaced task, nodes rejected per check (each node counted
            under the first check it fails); empty for a placed one.
        devices: The devices the task takes on the node, ``{kind: indices}``, when the
            matrix tracks devices (``track_devices``) and the task needs some; else empty.
    """

    __slots__ = ("devices", "feasible", "n_nodes", "node", "node_id", "policy", "rejected", "score", "vetoed")

    def __init__(
        self,
        node: int | None,
        node_id: str | None,
        score: float | None,
        policy: str,
        n_nodes: int,
        feasible: int,
        rejected: dict[str, int],
        vetoed: bool = False,
        devices: Assignment = NO_DEVICES,
    ) -> None:
        self.node = node
        self.node_id = node_id
        self.score = score
        self.policy = policy
        self.n_nodes = n_nodes
        self.feasible = feasible
        self.rejected = rejected
        self.vetoed = vetoed
        self.devices = devices

    @property
    def placed(self) -> bool:
        return self.node is not None

    @property
    def reason(self) -> str:
        """One line for people: where it went and why, or why it went nowhere."""
        if self.node is not None:
            if self.score is None:
                return f"placed on {self.node_id} by {self.policy} (the only one of {self.n_nodes} nodes that fits)"
            return (
                f"placed on {self.node_id} by {self.policy} (score {self.score:.6g}; "
                f"{self.feasible}/{self.n_nodes} nodes fit)"
            )
        if self.vetoed:
            return f"{self.feasible}/{self.n_nodes} nodes fit, but policy {self.policy} scored every one -inf"
        if self.n_nodes == 0:
            return "0/0 nodes fit: the cluster has no nodes"
        if not self.rejected:
            return f"0/{self.n_nodes} nodes fit"
        detail = ", ".join(f"{count} {label}" for label, count in self.rejected.items())
        return f"0/{self.n_nodes} nodes fit: {detail}"

    def __repr__(self) -> str:
        return f"Decision(node={self.node!r}, node_id={self.node_id!r}, reason={self.reason!r})"


def _resolve(policy: str | Callable[..., np.ndarray], registry: PolicyRegistry) -> PolicySpec:
    return registry.spec(policy) if isinstance(policy, str) else registry.spec_of(policy)


def _active(filters: ActiveFilters | Mapping[str, Mapping[str, Any]] | None) -> ActiveFilters:
    """Resolved filters: as given when already resolved, else through the registry."""
    if filters is None:
        return FILTERS.active()
    if type(filters) is tuple and (not filters or type(filters[0]) is tuple):
        return filters  # already resolved (the hot path: engines resolve once)
    return FILTERS.active(filters)  # type: ignore[arg-type]


class PreparedPolicy:
    """A policy with its parameters checked and its filters resolved, for many decisions.

    ``select`` prepares on every call; an owner that decides thousands of times (the
    simulator, the live master's pass) prepares once and calls ``decide``. Same
    decisions, without the per-call lookups.

    Attributes:
        spec: The policy's registry entry.
        params: Its parameters (checked against what the scorer takes).
        filters: Filters beyond the built-ins, resolved.
        rng: The generator of policies that draw random numbers, owned by whoever owns
            this object (the simulator's policy stream, the master's). None: one of its
            own, seeded with 0, so an owner that passes none is still reproducible.
        last: Id of the node this policy placed on last (round robin's cursor), moved by
            every decision that finds a node; None before the first.
        sampling: Node sampling (``orchsim.scheduling.sampling``), None: every node.
        sample_start: Where the next rotating sampling scan starts (kube's
            ``nextStartNodeIndex``).
        sample_reach: Nodes the last sampling scan examined: the next scan's first window is
            sized from it (cost only: which nodes a scan finds does not depend on its windows).
        memo: The decision memo (``memo.py``) when asked for (``memo=True``) and the
            policy is pure and samples no nodes; else None. Same decisions, looked up
            when the state repeats (small clusters).
    """

    __slots__ = ("_rng", "filters", "last", "memo", "params", "sample_reach", "sample_start", "sampling", "spec")

    def __init__(
        self,
        policy: str | Callable[..., np.ndarray],
        *,
        registry: PolicyRegistry = POLICIES,
        filters: ActiveFilters | Mapping[str, Mapping[str, Any]] | None = None,
        rng: np.random.Generator | None = None,
        params: Mapping[str, Any] | None = None,
        sample: str | Mapping[str, Any] | Sampling | None = None,
        memo: bool = False,
    ) -> None:
        self.spec = _resolve(policy, registry)
        self.sampling = parse_sampling(sample)
        self.sample_start = self.sample_reach = 0
        self.params = dict(params or {})
        if self.params and (problem := self.spec.unknown_params(self.params)):
            raise TypeError(f"policy {self.spec.name!r} has {problem}")
        self.filters = _active(filters)
        self._rng = rng
        self.last: str | None = None
        self.memo = DecisionMemo() if memo and self.spec.pure and self.sampling is None else None

    @property
    def rng(self) -> np.random.Generator:
        """The policy's generator; its own (seeded with 0) made on first use when none was given.

        Lazily: a seeded generator costs tens of microseconds, more than a whole decision,
        and a bare ``select`` with a policy that never draws should not pay for one.
        """
        if self._rng is None:
            self._rng = np.random.default_rng(0)
        return self._rng

    def snapshot(self) -> tuple[Any, ...]:
        """What its decisions advance (the cursor, sampling's start, the random stream), for ``restore``.

        A decision tried and not taken (preemption's trial on a copy of the matrix) must not
        move a round robin's cursor or draw from the stream the real decision draws from.
        """
        stream = None if self._rng is None else self._rng.bit_generator.state
        return (self.last, self.sample_start, self.sample_reach, stream)

    def restore(self, state: tuple[Any, ...]) -> None:
        """Put back what ``snapshot`` saw."""
        self.last, self.sample_start, self.sample_reach, stream = state
        if stream is None:
            self._rng = None  # drawn afresh from seed 0 when needed, as if nothing had drawn
        else:
            assert self._rng is not None
            self._rng.bit_generator.state = stream

    def last_index(self, nodes: NodeMatrix) -> int:
        """Column of the node placed on last in ``nodes``, -1 if none or if it has left.

        Kept as an id, so the cursor survives the owner rebuilding its matrix (the live
        master does when nodes join) and nodes leaving.
        """
        if self.last is None:
            return -1
        try:
            return nodes.index_of(self.last)
        except KeyError:
            return -1


def select(
    nodes: NodeMatrix,
    request: Request,
    policy: str | Callable[..., np.ndarray] = "bin_packing",
    *,
    rng: np.random.Generator | None = None,
    node_selector: Mapping[str, str] | None = None,
    registry: PolicyRegistry = POLICIES,
    explain: bool = True,
    filters: ActiveFilters | Mapping[str, Mapping[str, Any]] | None = None,
    task: TaskInfo | None = None,
    sample: str | Mapping[str, Any] | None = None,
    **params: Any,
) -> Decision:
    """Choose a node for ``request``: feasibility mask, then the policy's scores, then argmax.

    Args:
        nodes: The cluster; read, never changed.
        request: ``{"cpu": 500, "memory": 256}`` or a float64 ``(R,)`` vector from
            ``nodes.request_vector``; missing resources mean 0.
        policy: A registered name or a scorer function.
        rng: Generator for policies that draw random numbers (``random``, ``hybrid``).
            The caller owns it; None: a fresh one seeded with 0, so the call is
            reproducible, and a loop of calls without one draws the same numbers each
            time (keep a generator, or a ``PreparedPolicy``, across decisions).
        node_selector: Labels the node must carry (``{"zone": "a"}``).
        registry: Where names are looked up (default: the global ``POLICIES``).
        explain: Count rejections per filter when nothing fits (a second pass over
            the nodes), and always run the scorer so the decision reports a score.
            Engines that only need the node turn it off.
        filters: Filters beyond the built-ins: names mapped to their parameters
            (``{"max_tasks_per_node": {"limit": 8}}``), or ``FILTERS.active(...)``
            resolved once by a caller that decides many times. Filters registered
            with ``default=True`` always run.
        task: What filters may know of the task (its labels; its node selector,
            which then replaces ``node_selector``).
        sample: Node sampling: ``"all"`` (default), ``{"percentage": p}`` (kube-scheduler),
            ``{"candidates": k}`` or ``"log2"`` (Nomad); see ``orchsim.scheduling.sampling``.
            A bare call starts its scan at node 0 (rotating) or at a node drawn from ``rng``.
        **params: Policy parameters, e.g. ``weights={"cpu": 0.5, "memory": 0.5}``.

    Returns:
        A Decision. Ties go to the lowest node index. A node scored ``-inf`` is vetoed.
        When exactly one node passes the filters, ``explain`` is off and the policy
        declares it neither vetoes nor draws random numbers (every built-in but
        ``random`` and ``hybrid``), that node is the answer whatever the scores, so
        the scorer is skipped and the decision's score is None.

    Raises:
        UnknownPolicyError: the name is not registered (the message lists valid names).
        TypeError: a parameter the policy does not take.
        PolicyError: the scorer returned a wrong shape or NaN for a feasible node.
    """
    prepared = PreparedPolicy(policy, registry=registry, filters=filters, rng=rng, params=params, sample=sample)
    return decide(nodes, request, prepared, node_selector, task=task, explain=explain)


def _scores(nodes: NodeMatrix, req: np.ndarray, prepared: PreparedPolicy, bad: np.ndarray) -> np.ndarray:
    """The policy's float64 ``(N,)`` scores, its contract checked (shape; dtype coerced)."""
    spec, params = prepared.spec, prepared.params
    if spec.uses_rng or spec.uses_feasible or spec.uses_last:
        params = dict(params)
        if spec.uses_rng:
            params["rng"] = prepared.rng
        if spec.uses_feasible:
            params["feasible"] = ~bad
        if spec.uses_last:
            params["last"] = prepared.last_index(nodes)
    scores = spec.scorer(nodes, req, **params)
    if not isinstance(scores, np.ndarray) or scores.dtype != np.float64:
        # A bool or int array would turn the -inf mask below into True or overflow.
        scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (nodes.n_nodes,):
        raise PolicyError(f"policy {spec.name!r} returned shape {scores.shape}, expected ({nodes.n_nodes},)")
    return scores


def decide(
    nodes: NodeMatrix,
    request: Request,
    prepared: PreparedPolicy,
    node_selector: Mapping[str, str] | None = None,
    *,
    task: TaskInfo | None = None,
    explain: bool = True,
) -> Decision:
    """``select`` with a policy prepared once (see ``PreparedPolicy``); the same decision."""
    if (
        type(request) is np.ndarray
        and request.dtype is _FLOAT64
        and request.ndim == 1
        and len(request) == len(nodes.resources)
    ):
        req = request  # the hot path: a vector from request_vector or a workload row, trusted as given
    else:
        req = nodes.request_vector(request)
    memo = prepared.memo
    if memo is not None and not explain and node_selector is None and task is None and not prepared.filters:
        return _decide_memo(nodes, req, prepared, memo)
    if prepared.sampling is not None:
        sampled = _decide_sampled(nodes, req, prepared, node_selector, task, explain)
        if sampled is not None:
            return sampled
    return _decide_all(nodes, req, prepared, node_selector, task, explain)


def _decide_memo(nodes: NodeMatrix, req: np.ndarray, prepared: PreparedPolicy, memo: DecisionMemo) -> Decision:
    """``_decide_all``'s decision, looked up when the same state and request were decided before.

    A stored decision is reused only if its node still has the id it had (nodes removed
    and others added may repeat the numbers under other ids).
    """
    key = memo.key(nodes, req)
    if key is None:
        return _decide_all(nodes, req, prepared, None, None, False)
    decision = memo.get(key)
    if decision is not None and (decision.node is None or nodes.ids[decision.node] == decision.node_id):
        if decision.node_id is not None:
            prepared.last = decision.node_id  # as the decision itself would have moved it
        return decision
    decision = _decide_all(nodes, req, prepared, None, None, False)
    memo.put(key, decision)
    return decision


def _decide_sampled(
    nodes: NodeMatrix,
    req: np.ndarray,
    prepared: PreparedPolicy,
    node_selector: Mapping[str, str] | None,
    task: TaskInfo | None,
    explain: bool,
) -> Decision | None:
    """The decision among the feasible nodes a sampling scan finds; None: decide among all.

    None when the sample would be every node, or when the scan found no feasible node
    (it examined them all): the full decision then counts the rejections.
    """
    n = nodes.n_nodes
    sampling = prepared.sampling
    wanted = sampling.wanted(n)  # type: ignore[union-attr]
    if wanted >= n:
        return None
    start = int(prepared.rng.integers(n)) if sampling.start == "random" else prepared.sample_start % n  # type: ignore[union-attr]
    extra = prepared.filters
    if extra or task is not None or node_selector or nodes.devices:

        def check(lo: int, hi: int) -> np.ndarray:
            return ~infeasible(NodeSubset(nodes, slice(lo, hi)), req, node_selector, extra=extra, task=task)

    else:
        check = fits_range(nodes, req)  # the built-ins on the matrix's own rows, no subset per window
    feasible_in = RememberedWindow(check)
    found, examined = scan(nodes, start, wanted, feasible_in, prepared.sample_reach)
    prepared.sample_start = (start + examined) % n
    prepared.sample_reach = examined
    if not len(found):
        return None
    first, last = int(found[0]), int(found[-1])
    if last >= first and last - first < 4 * len(found) + 64:
        # Found close together (the usual case): decide on that window (views), the rest masked. The scan
        # took every feasible node of one unwrapped stretch, so the window's mask is exactly ``found``.
        sub, bad = NodeSubset(nodes, slice(first, last + 1)), feasible_in.rejected(first, last + 1)
    elif last < first and (n - first) + last < 4 * len(found) + 64 and not nodes.devices:
        # The scan wrapped past the last node: the same window in two pieces, in scan order
        # (joined slices, not fancy indexing: about ten times cheaper on kube's thousands of nodes).
        sub = NodeSubset(nodes, (slice(first, n), slice(0, last + 1)))
        bad = np.concatenate((feasible_in.rejected(first, n), feasible_in.rejected(0, last + 1)))
    else:
        sub, bad = NodeSubset(nodes, found), np.zeros(len(found), dtype=bool)
    d = _decide_all(sub, req, prepared, node_selector, task, explain, bad)
    node = sub.parent_index(d.node) if d.node is not None else None
    return Decision(node, d.node_id, d.score, d.policy, n, d.feasible, d.rejected, d.vetoed, d.devices)


def _decide_all(
    nodes: NodeMatrix,
    req: np.ndarray,
    prepared: PreparedPolicy,
    node_selector: Mapping[str, str] | None,
    task: TaskInfo | None,
    explain: bool,
    bad: np.ndarray | None = None,
) -> Decision:
    """Filters over every node of ``nodes`` (unless ``bad`` says which fail), scores, argmax."""
    spec = prepared.spec
    n = nodes.n_nodes
    extra = prepared.filters
    n_bad = -1
    if bad is not None:
        pass  # the sampling scan has filtered already
    elif extra or task is not None:
        bad = infeasible(nodes, req, node_selector, extra=extra, task=task)
    elif (classes := _classes_for(nodes, spec, node_selector, explain)) is not None:
        return _decide_classes(nodes, req, prepared, classes)  # one score per state, not per node
    elif nodes.fit_masks is not None and not node_selector and (kept := nodes.fit_masks.get(req)) is not None:
        bad, n_bad = kept[0], kept[1]  # kept current by the matrix: no pass over the nodes
    else:  # the common case, without the keyword plumbing (this runs on every decision)
        bad = infeasible(nodes, req, node_selector)
    if n_bad < 0:
        n_bad = int(np.count_nonzero(bad))
    n_fit = n - n_bad
    if n_fit == 0:
        counts = rejections(nodes, req, node_selector, extra=extra, task=task) if explain else {}
        return Decision(None, None, None, spec.name, n, 0, counts)
    if n_fit == 1 and not explain and spec.skippable:
        best = int(bad.argmin())  # the one node left: scores cannot change the answer
        devices = choose_devices(nodes, req, prepared, best) if nodes.devices else NO_DEVICES
        prepared.last = node_id = nodes.id_of(best)
        return Decision(best, node_id, None, spec.name, n, 1, {}, devices=devices)
    scores = _scores(nodes, req, prepared, bad)
    if n_bad:
        # A new array, never a write into the scorer's: it may be a view of its own state.
        scores = np.where(bad, -np.inf, scores)
    best = int(scores.argmax())
    score = float(scores[best])
    if score != score:  # NaN: argmax returns the first NaN, so one check covers every node
        raise PolicyError(f"policy {spec.name!r} scored node {nodes.id_of(best)!r} NaN")
    if score == -np.inf:
        return Decision(None, None, None, spec.name, n, n_fit, {}, vetoed=True)
    devices = choose_devices(nodes, req, prepared, best) if nodes.devices else NO_DEVICES
    prepared.last = node_id = nodes.id_of(best)
    return Decision(best, node_id, score, spec.name, n, n_fit, {}, devices=devices)


def _classes_for(
    nodes: NodeMatrix, spec: PolicySpec, node_selector: Mapping[str, str] | None, explain: bool
) -> StateClasses | None:
    """The matrix's state classes if this decision can be made from them (``_decide_classes``), else None."""
    classes = nodes.state_classes
    if classes is None or not spec.per_node or explain or node_selector or nodes.devices:
        return None
    return classes


def _decide_classes(nodes: NodeMatrix, req: np.ndarray, prepared: PreparedPolicy, classes: StateClasses) -> Decision:
    """``_decide_all``'s decision (no explanation, selector or extra filter) from the nodes' state classes.

    A ``per_node`` policy scores every node of a class alike and the built-in filters
    treat them alike, so the best class (ties to the lowest node index, as argmax) holds
    the node and the feasible count is the feasible classes' sum (``state_classes.py``).
    """
    spec, n = prepared.spec, nodes.n_nodes
    live = classes.live()
    table = classes.table(prepared, req)
    fits, scores = table.fits, table.scores
    if len(fits) < len(classes.counts) or (not table.complete and any(fits[cls] is None for cls, _, _ in live)):
        _fill_table(nodes, req, prepared, table, live, len(classes.counts))
    feasible = [(scores[cls], -low, count) for cls, count, low in live if fits[cls]]
    n_fit = sum(count for _, _, count in feasible)
    if n_fit == 0:
        return Decision(None, None, None, spec.name, n, 0, {})
    if n_fit == 1 and spec.skippable:
        best = -feasible[0][1]
        prepared.last = node_id = nodes.id_of(best)
        return Decision(best, node_id, None, spec.name, n, 1, {})
    if table.nan and (nans := [-low for score, low, _ in feasible if score != score]):  # argmax stops at a NaN
        raise PolicyError(f"policy {spec.name!r} scored node {nodes.id_of(min(nans))!r} NaN")
    score, low, _ = max(feasible)  # the highest score, then the lowest node index
    if score == -np.inf:
        return Decision(None, None, None, spec.name, n, n_fit, {}, vetoed=True)
    prepared.last = node_id = nodes.id_of(-low)
    return Decision(-low, node_id, score, spec.name, n, n_fit, {})


def _fill_table(
    nodes: NodeMatrix, req: np.ndarray, prepared: PreparedPolicy, table: ClassTable, live: list, n_classes: int
) -> None:
    """Fit and score the live classes ``table`` lacks, on one node of each (the same bits as on all)."""
    grow = n_classes - len(table.fits)
    table.fits.extend([None] * grow)
    table.scores.extend([None] * grow)
    todo = [(cls, low) for cls, _, low in live if table.fits[cls] is None]
    sub = NodeSubset(nodes, np.array([low for _, low in todo], dtype=np.int64))
    bad = infeasible(sub, req)
    for (cls, _), rejected, score in zip(todo, bad.tolist(), _scores(sub, req, prepared, bad).tolist(), strict=True):
        table.fits[cls] = not rejected
        table.scores[cls] = score
        table.nan = table.nan or score != score
    table.complete = None not in table.fits


def choose_devices(nodes: NodeMatrix, req: np.ndarray, prepared: PreparedPolicy, node: int) -> Assignment:
    """The devices the task takes on ``node``: the policy's own rule, else the tightest fit.

    Drawn after the scores (a random rule uses the same generator), so the simulator and
    the live master choose the same devices.
    """
    spec = prepared.spec
    if spec.choose_devices is None:
        return node_devices.choose(nodes, req, node)
    params = dict(prepared.params)
    params["rng"] = prepared.rng
    return node_devices.choose(nodes, req, node, spec.choose_devices, **params)
