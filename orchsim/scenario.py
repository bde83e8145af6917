"""Scenario files: one pydantic schema, defaults in one place, errors that name the field.

The order is Ciw's: defaults -> validate -> build. ``load_scenario`` reads YAML, and
every problem (unknown field, negative rate, unknown policy or distribution, missing
trace file) surfaces as one ``ScenarioError`` whose message names the file and the
field path, e.g. ``burst.yaml: workload.0.rate: Input should be greater than 0``.

The schema lives in three modules: ``scenario_workload`` (distributions, nodes, workload
sources), ``scenario_events`` (cluster events, an open set of kinds) and this one (the
knobs and the scenario itself); every class is importable from here.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from orchsim.scenario_events import (
    ClusterEvent,
    CountedEvent,
    EventEntry,
    NodeDrain,
    NodeFailure,
    NodeJoin,
    NodeLost,
    NodeRecovery,
    ScaleIn,
    ScaleOut,
)
from orchsim.scenario_workload import (
    MAX_PRIORITY,
    Burst,
    Choice,
    Cluster,
    Constant,
    CsvTrace,
    Distribution,
    Diurnal,
    Exponential,
    LogNormal,
    NodeGroup,
    NodeSpec,
    NodeTrace,
    OpenbTrace,
    Poisson,
    SwfTrace,
    Uniform,
    WorkloadSource,
    _TraceSource,
    check_dependencies,
)
from orchsim.scheduling import POLICIES, PolicySpec, UnknownPolicyError
from orchsim.scheduling.queueing import DEFAULTS
from orchsim.schema_base import STRICT, Capacity, NonNegativeFloat, PositiveFloat, ScenarioError
from orchsim.yaml_text import load_yaml

__all__ = [
    "Autoscaler",
    "Burst",
    "Choice",
    "Cluster",
    "ClusterEvent",
    "DecisionLatency",
    "Constant",
    "CountedEvent",
    "CsvTrace",
    "Distribution",
    "Diurnal",
    "Exponential",
    "LogNormal",
    "MAX_PRIORITY",
    "Metrics",
    "NodeDrain",
    "NodeFailure",
    "NodeGroup",
    "NodeJoin",
    "NodeLost",
    "NodeRecovery",
    "NodeSpec",
    "NodeTrace",
    "OpenbTrace",
    "Poisson",
    "ScaleIn",
    "ScaleOut",
    "Scenario",
    "ScenarioError",
    "Scheduler",
    "SwfTrace",
    "Uniform",
    "WorkloadSource",
    "load_scenario",
    "parse_scenario",
]


class _Strict(BaseModel):
    model_config = STRICT


class DecisionLatency(_Strict):
    """The scheduler's decision latency as an empirical distribution (``Scheduler.decision_latency``).

    Exactly one of ``samples`` (seconds, each >= 0) and ``recording`` (a recording's folder,
    relative to the scenario file; the latencies its master showed when it could place at once).
    ``use``: ``distribution`` (default), each pass draws one of them; ``mean``, every pass
    waits their mean (the mean wait's share of latency, without reordering near-simultaneous
    events at random: what ``orchsim replay`` uses by default).
    """

    samples: list[NonNegativeFloat] | None = Field(default=None, min_length=1)
    recording: str | None = None
    use: Literal["distribution", "mean"] = "distribution"

    @model_validator(mode="after")
    def _one_source(self) -> DecisionLatency:
        if (self.samples is None) == (self.recording is None):
            raise ValueError("give exactly one of samples (seconds) and recording (a folder)")
        return self


class Scheduler(_Strict):
    """Queueing: ``fifo`` (head of line waits), ``backfill`` (a later task that fits may pass), ``easy``.

    ``easy`` is EASY backfilling: a later task may pass only if it does not delay the first
    waiting one.

    Attributes:
        backfill_window: How many queued tasks a backfill pass looks at.
        max_attempts: Placements per task before it is marked failed (node failures).
        preemption: A task that fits nowhere may evict tasks of lower priority from one
            node (kube-scheduler's DefaultPreemption rules; ``orchsim.scheduling.preemption``).
        sampling: Node sampling on large clusters: ``all`` (default), ``log2`` or
            ``{candidates: k}`` (Nomad), ``{percentage: p}`` or ``{percentage: adaptive}``
            (kube-scheduler's ``percentageOfNodesToScore``); ``orchsim.scheduling.sampling``.
        passes: ``per_event`` (default): a pass after each arrival and each end;
            ``per_instant``: one pass once every arrival and end at the same time is in, as
            AccaSim, Batsim and the textbook FCFS/EASY do (whole-second traces have many ties).
        filters: Filters beyond the built-in ones (schedulable, node selector, resources),
            by name with their parameters: ``{max_tasks_per_node: {limit: 8}}``; a
            plugin may register more (``orchsim.scheduling.filter``).
        decision_latency: Seconds the scheduler takes to act on a change (an arrival, an
            end): each pass runs that long after the change that woke it, and takes in
            whatever else arrived meanwhile, as the live master's watch-then-pass loop does.
            ``0`` (default): passes take no time. A number: every pass waits that long;
            ``{samples: [...]}``: each pass draws its wait from these (with the scenario's
            seed, the same draws under every policy); ``{recording: DIR}``: the samples are
            measured from a live cluster's recording (``orchsim.traces.decision_latencies``);
            ``use: mean`` waits their mean instead of drawing.
    """

    queue: Literal["fifo", "backfill", "easy"] = DEFAULTS.queue  # type: ignore[assignment]
    backfill_window: int = Field(default=DEFAULTS.backfill_window, ge=1)
    max_attempts: int = Field(default=DEFAULTS.max_attempts, ge=1)
    preemption: bool = False
    passes: Literal["per_event", "per_instant"] = "per_event"
    sampling: str | dict[str, Any] | None = None
    filters: dict[str, dict[str, Any]] = {}
    decision_latency: NonNegativeFloat | DecisionLatency = 0.0

    @field_validator("sampling")
    @classmethod
    def _valid_sampling(cls, value: Any) -> Any:
        from orchsim.scheduling import parse_sampling

        parse_sampling(value)  # raises ValueError with what is accepted
        return None if value == "all" else value

    @model_validator(mode="after")
    def _preemption_not_with_easy(self) -> Scheduler:
        if self.preemption and self.queue == "easy":
            raise ValueError("preemption: not combined with queue 'easy' (its reservation assumes nothing is evicted)")
        return self

    @field_validator("filters", mode="before")
    @classmethod
    def _known_filters(cls, value: Any) -> Any:
        from orchsim.scheduling import FILTERS, UnknownFilterError

        if not isinstance(value, dict):
            return value
        for name, params in value.items():
            try:
                spec = FILTERS.spec(name)
            except UnknownFilterError as err:
                raise ValueError(str(err)) from None
            if isinstance(params, dict) and (problem := spec.unknown_params(params)):
                raise ValueError(f"filter {name!r} has {problem}")
        return {name: (params if params is not None else {}) for name, params in value.items()}


class Autoscaler(_Strict):
    """A threshold autoscaler, scanning every ``interval`` seconds like cluster-autoscaler.

    Adds ``step`` nodes of ``capacity`` while the oldest queued task has waited longer
    than ``scale_out_wait``; drains a node that has been idle for ``scale_in_idle``.
    """

    capacity: Capacity
    labels: dict[str, str] = {}
    interval: PositiveFloat = 10.0
    scale_out_wait: NonNegativeFloat = 30.0
    scale_in_idle: PositiveFloat = 300.0
    step: int = Field(default=1, ge=1)
    min_nodes: int = Field(default=0, ge=0)
    max_nodes: int = Field(default=1000, ge=1)
    provision_delay: NonNegativeFloat = 0.0


class Metrics(_Strict):
    """What is measured, and over which window of simulated time.

    Attributes:
        sample_interval: Seconds between time-series samples; default: ``samples`` over the
            run's expected length (last arrival plus a mean duration).
        samples: Time-series samples kept at most, however long the run really lasts: past
            it, every other one is dropped and the interval doubles (default 1000).
        warmup: Seconds of simulated time discarded at the start (the empty system filling
            up): tasks submitted before it are left out of the wait statistics, and the
            time integrals (utilisation, queue, running tasks, nodes up) start there.
        until: End of the measurement window (seconds; default: the end of the run). Tasks
            submitted at or after it are left out of the wait statistics and the integrals
            stop there, so the drain after the last arrival does not bias the means. The
            run itself goes on to the end, so every task's fate is still recorded.
    """

    sample_interval: PositiveFloat | None = None
    samples: int = Field(default=1000, ge=2)
    warmup: NonNegativeFloat = 0.0
    until: PositiveFloat | None = None

    @model_validator(mode="after")
    def _window_ordered(self) -> Metrics:
        if self.until is not None and self.until <= self.warmup:
            raise ValueError(f"until ({self.until}) must be after warmup ({self.warmup})")
        return self


def _policy_spec(name: str) -> PolicySpec:
    try:
        return POLICIES.spec(name)
    except UnknownPolicyError as err:  # a KeyError; pydantic reports only ValueErrors
        raise ValueError(str(err)) from None


class Scenario(_Strict):
    """A whole experiment: cluster, workload, events and the policies to compare on it."""

    version: Literal[1]
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    # Modules or .py files (relative to this file) that register policies, loaded before
    # the policy names are checked; see orchsim.plugins.
    plugins: list[str] = []
    seed: int = Field(default=0, ge=0)
    policies: list[str] = Field(default_factory=lambda: ["bin_packing", "spread", "round_robin"], min_length=1)
    policy_params: dict[str, dict[str, Any]] = {}
    cluster: Cluster
    workload: list[WorkloadSource] = Field(min_length=1)
    events: list[EventEntry] = []
    scheduler: Scheduler = Scheduler()
    autoscaler: Autoscaler | None = None
    metrics: Metrics = Metrics()
    base_dir: Path = Field(default=Path("."), exclude=True)
    source: str = Field(default="<scenario>", exclude=True)  # the file, for error messages

    @model_validator(mode="before")
    @classmethod
    def _load_plugins(cls, data: Any) -> Any:
        """Import the plugins (and installed entry points) first: they define policy names."""
        from orchsim.plugins import PluginError, load_entry_points, load_plugin

        if not isinstance(data, dict):
            return data
        try:
            load_entry_points()
        except PluginError as err:
            raise ValueError(str(err)) from None
        plugins = data.get("plugins") or []
        if not isinstance(plugins, list):
            return data  # the field's own validation reports it
        base = Path(data.get("base_dir") or ".")
        for i, spec in enumerate(plugins):
            if not isinstance(spec, str):
                continue
            try:
                load_plugin(spec, base_dir=base)
            except PluginError as err:
                raise ValueError(f"plugins.{i}: {err}") from None
        return data

    @field_validator("policies")
    @classmethod
    def _known_policies(cls, names: list[str]) -> list[str]:
        for name in names:
            _policy_spec(name)
        if len(set(names)) != len(names):
            raise ValueError("a policy is listed twice")
        return names

    @field_validator("policy_params")
    @classmethod
    def _known_params(cls, params: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, values in params.items():
            problem = _policy_spec(name).unknown_params(values)
            if problem:
                raise ValueError(f"policy {name!r} has {problem}")
        return params

    def resolve(self, path: str) -> Path:
        """A path from the file, relative to the scenario's own folder."""
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p

    @model_validator(mode="after")
    def _acyclic(self) -> Scenario:
        check_dependencies(self.workload)  # names resolve, counts match, no cycle
        return self

    @model_validator(mode="after")
    def _paths_exist(self) -> Scenario:
        for i, node in enumerate(self.cluster.nodes):
            if isinstance(node, NodeTrace) and not self.resolve(node.path).is_file():
                raise ValueError(f"cluster.nodes.{i}.path: file not found: {self.resolve(node.path)}")
        for i, source in enumerate(self.workload):
            if isinstance(source, _TraceSource) and not self.resolve(source.path).is_file():
                raise ValueError(f"workload.{i}.path: file not found: {self.resolve(source.path)}")
        latency = self.scheduler.decision_latency
        folder = latency.recording if isinstance(latency, DecisionLatency) else None
        if folder is not None and not self.resolve(folder).is_dir():
            raise ValueError(f"scheduler.decision_latency.recording: folder not found: {self.resolve(folder)}")
        return self


def _describe(error: ValidationError) -> str:
    """Every problem as ``path: message``; a misspelt field or kind names what was meant.

    ``rat: 1`` for ``rate`` is one problem, not two ("rate: Field required; rat: unknown
    field"): an unknown field close to a missing one at the same place is reported as
    ``workload.0.rat: unknown field (did you mean 'rate'?)``.
    """
    items = [(_yaml_path(item["loc"]), item) for item in error.errors()]
    missing = {loc for loc, item in items if item["type"] == "missing"}
    meant: set[tuple[Any, ...]] = set()
    lines = []
    for loc, item in items:
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            siblings = [str(m[-1]) for m in missing if m[:-1] == loc[:-1]]
            close = difflib.get_close_matches(str(loc[-1]), siblings, n=1)
            msg = f"unknown field (did you mean {close[0]!r}?)" if close else "unknown field"
            meant |= {(*loc[:-1], close[0])} if close else set()
        elif item["type"] == "union_tag_invalid":
            tags = re.findall(r"'([^']*)'", str(item.get("ctx", {}).get("expected_tags", "")))
            close = difflib.get_close_matches(str(item.get("ctx", {}).get("tag", "")), tags, n=1)
            msg += f" (did you mean {close[0]!r}?)" if close else ""
        lines.append((loc, f"{'.'.join(map(str, loc))}: {msg}" if loc else msg))
    return "; ".join(dict.fromkeys(line for loc, line in lines if loc not in meant))


def _yaml_path(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """A pydantic error location as the YAML reads: without its union-member tags."""
    return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in _UNION_TAGS)))


_UNION_TAGS = {
    "constant",
    "uniform",
    "exponential",
    "lognormal",
    "choice",
    "poisson",
    "burst",
    "diurnal",
    "trace",
    "openb",
    "swf",
    "group",
    "function-after",
}


def parse_scenario(data: Any, *, source: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    """Validate a scenario given as Python data (what YAML parsing produced).

    Raises:
        ScenarioError: naming ``source`` and the field path of every problem.
    """
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario is a mapping of fields, got {type(data).__name__}")
    try:
        return Scenario.model_validate({**data, "base_dir": base_dir or Path("."), "source": source})
    except ValidationError as err:
        raise ScenarioError(f"{source}: {_describe(err)}") from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a YAML scenario file; trace paths resolve relative to it."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ScenarioError(f"{path}: cannot read: {err.strerror}") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"{path}{where}: not valid YAML: {getattr(err, 'problem', err)}") from None
    return parse_scenario(data, source=str(path), base_dir=path.parent)
