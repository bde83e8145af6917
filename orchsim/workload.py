"""Workloads: the tasks of a scenario, generated once and shared by every policy.

Every policy of a run sees the very same tasks (common random numbers), so differences
in the results come from the policies, not from the draw. Each workload source draws
from its own child of the scenario's seed (``numpy.random.SeedSequence.spawn``), so
adding a source does not change the tasks of the others.

Tasks are columnar: one array per attribute, sorted by submit time. Demand is stored
task-major ``(T, R)`` because the engine reads one task's whole request at a time.
Resource amounts are rounded to whole units (millicores, MiB, milli-GPU).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from orchsim import scenario as sc
from orchsim import traces
from orchsim.scenario_workload import OrchliveRecording

__all__ = ["Dependencies", "Workload", "build_workload", "draw", "evenly_spaced"]


@dataclass(frozen=True)
class Dependencies:
    """The DAGs of a workload (``after`` in its entries), indexed by task like ``Workload``.

    Attributes:
        parents: Per task, the tasks it waits for (indices, sorted).
        on_success: bool ``(T,)``: waits for its parents to complete (else: to end at all).
        skip: bool ``(T,)``: a failed parent skips it (else: fails it).
        dag: int64 ``(T,)``: the DAG (job) a task belongs to, -1 for tasks in none.
    """

    parents: list[tuple[int, ...]]
    on_success: np.ndarray
    skip: np.ndarray
    dag: np.ndarray


@dataclass(frozen=True)
class Workload:
    """The tasks of one scenario.

    Attributes:
        resources: Resource names, in column order of ``demand``.
        submit_time: float64 ``(T,)``, seconds, non-decreasing.
        duration: float64 ``(T,)``, seconds (``inf``: runs forever).
        demand: float64 ``(T, R)``, whole units.
        selector: int32 ``(T,)``, index into ``selectors``, -1 for none.
        selectors: The distinct node selectors used.
        source: int16 ``(T,)``, index of the workload entry that made the task.
        skipped: Trace records dropped while loading (see ``orchsim.traces``).
        priority: int64 ``(T,)``, or None when every task has priority 0.
        gang: int32 ``(T, 2)``: replicas and min_replicas per task, or None (no gangs);
            ``demand`` is per replica.
        dependencies: The DAGs, or None when no entry has ``after``.
        fails: bool ``(T,)``: the task fails at the end of its run (a recording's failed
            process, replayed), or None when none does.
    """

    resources: tuple[str, ...]
    submit_time: np.ndarray
    duration: np.ndarray
    demand: np.ndarray
    selector: np.ndarray
    selectors: list[dict[str, str]] = field(default_factory=list)
    source: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    skipped: int = 0
    priority: np.ndarray | None = None
    gang: np.ndarray | None = None
    dependencies: Dependencies | None = None
    fails: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.submit_time)

    def column(self, resource: str) -> np.ndarray:
        """Demand of every task for one resource, float64 ``(T,)``."""
        return self.demand[:, self.resources.index(resource)]


def draw(dist: sc.DistributionSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of a scenario distribution as float64.

    A log-normal is parametrised by the mean of the variable: E[X] = exp(mu + sigma^2 / 2).
    """
    if isinstance(dist, sc.Constant):
        return np.full(n, dist.value)
    if isinstance(dist, sc.Uniform):
        return rng.uniform(dist.low, dist.high, n)
    if isinstance(dist, sc.Exponential):
        return rng.exponential(dist.mean, n)
    if isinstance(dist, sc.LogNormal):
        mu = np.log(dist.mean) - dist.sigma**2 / 2
        return rng.lognormal(mu, dist.sigma, n)
    if isinstance(dist, sc.Choice):
        p = None if dist.weights is None else np.asarray(dist.weights) / sum(dist.weights)
        return rng.choice(np.asarray(dist.values, dtype=np.float64), size=n, p=p)
    raise TypeError(f"unknown distribution {dist!r}")  # pragma: no cover - the schema forbids it


def _arrivals(source: sc.Poisson | sc.Burst | sc.Diurnal, rng: np.random.Generator) -> np.ndarray:
    """Submit times; a diurnal source by thinning (Lewis & Shedler 1979) a Poisson process at the peak rate."""
    n = source.count
    if isinstance(source, sc.Poisson):
        return source.start + np.cumsum(rng.exponential(1.0 / source.rate, n))
    if isinstance(source, sc.Burst):
        if source.over == 0:
            return np.full(n, source.at)
        return source.at + np.arange(n) * (source.over / n)
    peak = source.rate * (1 + source.amplitude)
    times: list[np.ndarray] = []
    t, got = source.start, 0
    while got < n:
        batch = t + np.cumsum(rng.exponential(1.0 / peak, 2 * (n - got) + 16))
        rate = source.rate * (1 + source.amplitude * np.sin(2 * np.pi * (batch - source.start) / source.period))
        kept = batch[rng.random(len(batch)) * peak < rate][: n - got]
        times.append(kept)
        got += len(kept)
        t = batch[-1]
    return np.concatenate(times)


@dataclass
class _Part:
    submit: np.ndarray
    duration: np.ndarray
    demand: dict[str, np.ndarray]
    selector: dict[str, str]
    skipped: int = 0
    task_selectors: np.ndarray | None = None  # per task (dicts), merged over ``selector``
    priority: np.ndarray | None = None  # int64 per task; drawn last, so no other draw moves
    gang: np.ndarray | None = None  # int32 (n, 2): replicas and min_replicas per task; None: single tasks
    dependencies: tuple[list[tuple[int, ...]], np.ndarray, np.ndarray] | None = None  # a recording's DAG
    fails: np.ndarray | None = None  # a recording's failed processes


def evenly_spaced(n: int, fraction: float) -> np.ndarray:
    """Indices of ``max(1, round(n * fraction))`` of ``range(n)``, evenly spaced (empty for n = 0).

    Thinning a trace this way keeps its time window and shape and lowers its rate by
    ``fraction``; no random numbers are drawn, so the other sources' streams are unchanged.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    k = max(1, round(n * fraction))
    return np.floor((np.arange(k) + 0.5) * n / k).astype(np.int64)


def _synthetic(source: sc.Poisson | sc.Burst | sc.Diurnal, rng: np.random.Generator) -> _Part:
    submit = _arrivals(source, rng)
    demand = {name: np.rint(draw(dist, source.count, rng)) for name, dist in source.resources.items()}
    duration = draw(source.duration, source.count, rng)
    return _Part(submit, duration, demand, dict(source.node_selector))


def _openb_arrivals(
    source: sc.OpenbTrace, tasks: traces.TraceTasks, rng: np.random.Generator, gpu_capacity: float
) -> _Part:
    """FGD-style arrivals: seeded order, one pod per ``interval``, never leaving."""
    n = len(tasks)
    if source.load is None:
        order = rng.permutation(n)
    else:
        gpu = tasks.resources.get("gpu", np.zeros(n))
        if gpu_capacity <= 0 or gpu.sum() <= 0:
            raise sc.ScenarioError(f"{source.path}: load needs GPU pods and GPU nodes")
        target = source.load * gpu_capacity
        if source.fill == "trace_then_clones":
            order = _trace_then_clones(gpu, target, rng)
        else:
            # Draw in rounds until the GPU total passes the target, then cut at the crossing pod.
            picks: list[np.ndarray] = []
            total = 0.0
            while total < target:
                batch = rng.integers(0, n, size=n)
                picks.append(batch)
                total += float(gpu[batch].sum())
            order = np.concatenate(picks)
            order = order[: int(np.searchsorted(np.cumsum(gpu[order]), target)) + 1]
    if source.limit is not None:
        order = order[: source.limit]
    if source.sample is not None:
        order = order[evenly_spaced(len(order), source.sample)]
    submit = np.arange(len(order), dtype=np.float64) * source.interval
    demand = {name: np.rint(values[order]) for name, values in tasks.resources.items()}
    selectors = None if tasks.node_selectors is None else tasks.node_selectors[order]
    return _Part(submit, np.full(len(order), np.inf), demand, dict(source.node_selector), task_selectors=selectors)


def _trace_then_clones(gpu: np.ndarray, target: float, rng: np.random.Generator) -> np.ndarray:
    """The FGD artifact's workload: every pod once, shuffled, then clones up to ``target`` milli-GPU.

    ``simulator.go``: ``SortClusterPods`` shuffles the pods; ``TunePodsByNodeTotalResource``
    then appends uniformly drawn clones while the total plus the next clone's per-GPU
    share (``MilliGpu``: at most one GPU's 1000, whatever its GPU count) stays within the
    target, or, when the trace alone passes it, drops random pods until it does not.
    """
    order = list(rng.permutation(len(gpu)))
    total = float(gpu.sum())
    while total > target and order:
        total -= float(gpu[order.pop(int(rng.integers(len(order))))])
    per_gpu = np.minimum(gpu, 1000.0)
    while True:
        j = int(rng.integers(len(gpu)))
        if total + per_gpu[j] > target:
            return np.asarray(order, dtype=np.int64)
        order.append(j)
        total += float(gpu[j])


def _trace(
    source: sc.CsvTrace | sc.OpenbTrace | sc.SwfTrace | OrchliveRecording,
    scenario: sc.Scenario,
    rng: np.random.Generator,
    capacity_totals: dict[str, float],
) -> _Part:
    path = scenario.resolve(source.path)
    if isinstance(source, sc.CsvTrace):
        tasks = traces.load_csv_trace(path, rebase=source.rebase)
    elif isinstance(source, OrchliveRecording):
        tasks = traces.load_orchlive_tasks(path)[0]
        structure = traces.load_orchlive_structure(path)
    elif isinstance(source, sc.OpenbTrace):
        tasks = traces.load_openb_pods(path)
        if source.mode == "arrivals":
            return _openb_arrivals(source, tasks, rng, capacity_totals.get("gpu", 0.0))
    else:
        tasks = traces.load_swf(
            path,
            cpu_per_processor=source.cpu_per_processor,
            memory_per_processor=source.memory_per_processor,
        )
    n = len(tasks) if source.limit is None else min(source.limit, len(tasks))
    keep = slice(n) if source.sample is None else evenly_spaced(n, source.sample)
    demand = {name: np.rint(values[keep]) for name, values in tasks.resources.items()}
    part = _Part(
        tasks.submit_time[keep] * source.time_scale,
        tasks.duration[keep] * source.time_scale,
        demand,
        dict(source.node_selector),
        skipped=int(getattr(tasks, "skipped", 0)),
        task_selectors=None if tasks.node_selectors is None else tasks.node_selectors[keep],
    )
    if isinstance(source, OrchliveRecording):
        _recorded_structure(part, structure, np.arange(len(tasks))[keep])
    return part


def _recorded_structure(part: _Part, structure: traces.RecordedStructure, kept: np.ndarray) -> None:
    """A recording's gangs, DAG and failed processes on ``part``, for the tasks ``kept`` (indices, sorted).

    A parent left out (by ``limit`` or ``sample``) drops its edge: its child waits for the others.
    """
    part.gang = None if structure.gang is None else structure.gang[kept]
    part.fails = structure.fails[kept] if structure.fails[kept].any() else None
    if structure.parents is not None:
        local = {int(old): new for new, old in enumerate(kept)}
        parents = [tuple(local[p] for p in structure.parents[old] if p in local) for old in kept]
        part.dependencies = (parents, structure.on_success[kept], structure.skip[kept])


def build_workload(
    scenario: sc.Scenario, resources: tuple[str, ...], capacity_totals: dict[str, float] | None = None
) -> Workload:
    """Generate (or load) every task of ``scenario``, merged and sorted by submit time.

    Args:
        scenario: A validated scenario.
        resources: The cluster's resource names; a source asking for a resource the
            cluster lacks (with a positive amount) is a scenario error.
        capacity_totals: Total initial capacity per resource (for load-targeted traces).

    Raises:
        ScenarioError: naming the workload entry and resource at fault.
        TraceError: a trace file that cannot be read (names the file and line).
    """
    children = np.random.SeedSequence(scenario.seed).spawn(len(scenario.workload))
    parts: list[_Part] = []
    for i, (source, seq) in enumerate(zip(scenario.workload, children, strict=True)):
        rng = np.random.default_rng(seq)
        if isinstance(source, sc.Poisson | sc.Burst | sc.Diurnal):
            part = _synthetic(source, rng)
        else:
            part = _trace(source, scenario, rng, capacity_totals or {})
        _check_demand(part, resources, scenario, i)
        part.priority = _priorities(source.priority, len(part.submit), rng, f"{scenario.source}: workload.{i}")
        part.gang = _gangs(source, part)
        parts.append(part)

    selectors = _SelectorCodes()
    columns = {name: [] for name in resources}
    submit, duration, selector, source_ix = [], [], [], []
    for i, part in enumerate(parts):
        n = len(part.submit)
        submit.append(part.submit)
        duration.append(part.duration)
        for name in resources:
            columns[name].append(part.demand.get(name, np.zeros(n)))
        selector.append(selectors.codes(part, n))
        source_ix.append(np.full(n, i, dtype=np.int16))

    submit_all = np.concatenate(submit).astype(np.float64)
    order = np.argsort(submit_all, kind="stable")
    demand = np.column_stack([np.concatenate(columns[name]) for name in resources]).astype(np.float64)
    return Workload(
        resources=resources,
        submit_time=submit_all[order],
        duration=np.concatenate(duration).astype(np.float64)[order],
        demand=np.ascontiguousarray(demand[order]),
        selector=np.concatenate(selector)[order],
        selectors=selectors.selectors,
        source=np.concatenate(source_ix)[order],
        skipped=sum(p.skipped for p in parts),
        **task_structure(scenario.workload, parts, order),  # type: ignore[arg-type]
    )


def _priorities(spec: int | sc.DistributionSpec, n: int, rng: np.random.Generator, where: str) -> np.ndarray | None:
    """Each task's priority (whole numbers); None for the default 0, drawing nothing.

    Raises:
        ScenarioError: a drawn priority beyond the live cluster's bound (``sc.MAX_PRIORITY``),
            which int64 would also have wrapped to the least important.
    """
    if isinstance(spec, int):
        return None if spec == 0 else np.full(n, spec, dtype=np.int64)
    drawn = np.rint(draw(spec, n, rng))
    if n and (far := float(np.max(np.abs(drawn)))) > sc.MAX_PRIORITY:  # NaN passes: draw() never gives one
        raise sc.ScenarioError(f"{where}.priority: drew {far:g}, beyond the live cluster's +-{sc.MAX_PRIORITY:,}")
    return drawn.astype(np.int64)


def _check_demand(part: _Part, resources: tuple[str, ...], scenario: sc.Scenario, i: int) -> None:
    """Every requested resource exists, and a device resource is asked as devices can give it."""
    for name, values in part.demand.items():
        if name not in resources and np.any(values > 0):
            raise sc.ScenarioError(
                f"{scenario.source}: workload.{i}.resources.{name}: no node of the cluster has resource {name!r} "
                f"(cluster resources: {', '.join(resources)})"
            )
        if name in scenario.cluster.devices:
            odd = values[(values > 1000) & (values % 1000 != 0)]
            if len(odd):
                raise sc.ScenarioError(
                    f"{scenario.source}: workload.{i}.resources.{name}: {odd[0]:g} is neither a share of one "
                    f"device (< 1000) nor whole devices (a multiple of 1000); {name} is a device resource "
                    "(cluster.devices)"
                )


class _SelectorCodes:
    """Node selectors as small integer codes per task (-1: none), one dict per distinct selector."""

    def __init__(self) -> None:
        self.selectors: list[dict[str, str]] = []
        self._code: dict[tuple[tuple[str, str], ...], int] = {}

    def code(self, selector: dict[str, str]) -> int:
        if not selector:
            return -1
        key = tuple(sorted(selector.items()))
        if key not in self._code:
            self._code[key] = len(self.selectors)
            self.selectors.append(dict(selector))
        return self._code[key]

    def codes(self, part: _Part, n: int) -> np.ndarray:
        if part.task_selectors is None:
            return np.full(n, self.code(part.selector), dtype=np.int32)
        return np.array([self.code({**part.selector, **own}) for own in part.task_selectors], dtype=np.int32)


def _gangs(source: sc.WorkloadSource, part: _Part) -> np.ndarray | None:
    """Replicas and min_replicas per task: an entry's ``replicas``, or an SWF job's processors (``gangs``).

    The SWF loader gave each job processors x cpu_per_processor: one replica per processor.
    """
    n = len(part.submit)
    if part.gang is not None:  # a recording's own
        return part.gang
    if isinstance(source, sc.SwfTrace):
        if not source.gangs:
            return None
        replicas = np.rint(part.demand["cpu"] / source.cpu_per_processor).astype(np.int32)
        part.demand = {
            "cpu": np.full(n, np.rint(source.cpu_per_processor)),
            "memory": np.full(n, np.rint(source.memory_per_processor)),
        }
        return np.column_stack([replicas, replicas]).astype(np.int32)
    replicas = getattr(source, "replicas", 1)
    if replicas == 1:
        return None
    least = getattr(source, "min_replicas", None) or replicas
    return np.tile(np.array([replicas, least], dtype=np.int32), (n, 1))


def task_structure(entries: list[sc.WorkloadSource], parts: list[_Part], order: np.ndarray) -> dict[str, object]:
    """Priority, gangs and DAGs of the merged tasks (``Workload`` fields), in sorted order.

    ``order`` sorts the concatenated parts' tasks; the i-th task of an entry with
    ``after`` waits for the i-th task of each parent entry.
    """
    counts = [len(p.submit) for p in parts]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    out: dict[str, object] = {}
    if any(p.priority is not None for p in parts):
        out["priority"] = np.concatenate(
            [np.zeros(len(p.submit), np.int64) if p.priority is None else p.priority for p in parts]
        )[order]
    if any(p.gang is not None for p in parts):
        gang = np.concatenate([np.ones((len(p.submit), 2), np.int32) if p.gang is None else p.gang for p in parts])
        out["gang"] = np.ascontiguousarray(gang[order])
    if any(getattr(e, "after", None) for e in entries) or any(p.dependencies is not None for p in parts):
        out["dependencies"] = _dependencies(entries, counts, offsets, order)
        _add_recorded(out["dependencies"], parts, offsets, order)  # type: ignore[arg-type]
    if any(p.fails is not None for p in parts):
        fails = np.concatenate([np.zeros(len(p.submit), bool) if p.fails is None else p.fails for p in parts])
        out["fails"] = fails[order]
    return out


def _add_recorded(deps: Dependencies, parts: list[_Part], offsets: np.ndarray, order: np.ndarray) -> None:
    """Each recording's own DAG into ``deps`` (sorted order): parents, rules, and one DAG id per linked group."""
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))  # unsorted index -> sorted index
    next_dag = int(deps.dag.max(initial=-1)) + 1
    for part, offset in zip(parts, offsets[:-1].tolist(), strict=True):
        if part.dependencies is None:
            continue
        parents, on_success, skip = part.dependencies
        mine = position[offset + np.arange(len(parents))]
        deps.on_success[mine], deps.skip[mine] = on_success, skip
        group = list(range(len(parents)))  # tasks linked by an edge share a DAG id

        def root(i: int, group: list[int] = group) -> int:
            while group[i] != i:
                i = group[i]
            return i

        for k, mine_parents in enumerate(parents):
            deps.parents[mine[k]] = tuple(sorted(int(position[offset + p]) for p in mine_parents))
            for p in mine_parents:
                a, b = root(k), root(p)
                group[max(a, b)] = min(a, b)
        linked = sorted({root(k) for k, ps in enumerate(parents) if ps} | {root(p) for ps in parents for p in ps})
        for k in range(len(parents)):
            if root(k) in linked:
                deps.dag[mine[k]] = next_dag + linked.index(root(k))
        next_dag += len(linked)


def _dependencies(
    entries: list[sc.WorkloadSource], counts: list[int], offsets: np.ndarray, order: np.ndarray
) -> Dependencies:
    """Parents per task (sorted indices), the waiting rules, and one DAG id per job of linked entries."""
    names = {e.name: i for i, e in enumerate(entries) if getattr(e, "name", None)}
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))  # unsorted index -> sorted index
    total = int(offsets[-1])
    parents: list[tuple[int, ...]] = [()] * total
    on_success, skip = np.ones(total, bool), np.zeros(total, bool)
    component = list(range(len(entries)))  # linked entries share the smallest index among them

    def root(i: int) -> int:
        while component[i] != i:
            i = component[i]
        return i

    for i, entry in enumerate(entries):
        after = [names[name] for name in getattr(entry, "after", [])]
        for j in after:
            a, b = root(i), root(j)
            component[max(a, b)] = min(a, b)
        on_success[offsets[i] : offsets[i + 1]] = getattr(entry, "on", "success") == "success"
        skip[offsets[i] : offsets[i + 1]] = getattr(entry, "if_parent_fails", "fail") == "skip"
        for k in range(counts[i]):
            parents[offsets[i] + k] = tuple(sorted(int(position[offsets[j] + k]) for j in after))
    linked = {root(i) for i, e in enumerate(entries) if getattr(e, "after", None)}
    roots = sorted(linked)
    dag = np.full(total, -1, dtype=np.int64)
    for i in range(len(entries)):
        if root(i) in linked:
            dag[offsets[i] : offsets[i + 1]] = roots.index(root(i)) * max(counts) + np.arange(counts[i])
    sorted_parents = [parents[o] for o in order.tolist()]
    return Dependencies(sorted_parents, on_success[order], skip[order], dag[order])
