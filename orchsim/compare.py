"""Side-by-side policy comparison: the tables behind the bin-packing vs spread notebook.

Each function runs scenarios through ``orchsim.run`` (every policy on identical tasks) and
reduces the results to one small DataFrame per question: how many nodes does a policy
keep busy, how much capacity does it strand, how much work is left unplaced as load
grows, and what does one node failure cost. The notebook only calls these and plots
their output, so every number it shows can be recomputed from a script or a test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from orchsim import scenario as sc
from orchsim.resize import scale_scenario
from orchsim.run import Results, run
from orchsim.scheduling import POLICIES

__all__ = [
    "POLICIES_COMPARED",
    "failure_cost",
    "load_curve",
    "nodes_in_use",
    "run_scaled",
    "stranded",
    "unplaced_by_request",
    "with_load",
]

# Go's two formulas, Kubernetes' two NodeResourcesFit strategies, balanced allocation,
# and random placement as the floor any policy should beat.
POLICIES_COMPARED: tuple[str, ...] = (
    "bin_packing",
    "spread",
    "least_allocated",
    "most_allocated",
    "balanced",
    "random",
)


ParamsByPolicy = Mapping[str, Mapping[str, Any]]


def _load(scenario: sc.Scenario | str | Path, policy_params: ParamsByPolicy | None = None) -> sc.Scenario:
    """The scenario, with ``policy_params`` (checked like the YAML field) merged over its own."""
    loaded = scenario if isinstance(scenario, sc.Scenario) else sc.load_scenario(scenario)
    if not policy_params:
        return loaded
    merged = {name: dict(values) for name, values in loaded.policy_params.items()}
    for name, values in policy_params.items():
        problem = POLICIES.spec(name).unknown_params(values)  # an unknown name lists the valid ones
        if problem:
            raise sc.ScenarioError(f"{loaded.source}: policy_params.{name}: {problem}")
        merged[name] = {**merged.get(name, {}), **values}
    return loaded.model_copy(update={"policy_params": merged})


def run_scaled(
    scenario: sc.Scenario | str | Path,
    policies: Sequence[str] = POLICIES_COMPARED,
    *,
    scale: float = 1.0,
    seed: int | None = None,
    policy_params: ParamsByPolicy | None = None,
) -> Results:
    """Run ``scenario`` at ``scale`` times its size (same offered load) under ``policies``.

    ``policy_params`` (``{"most_allocated": {"weights": {"gpu": 1}}}``) are merged over the
    scenario's own, as if written in its ``policy_params`` field.
    """
    return run(scale_scenario(_load(scenario, policy_params), scale), policies=policies, seed=seed)


def nodes_in_use(results: Results) -> pd.DataFrame:
    """Per policy: mean and peak number of nodes running at least one task.

    The mean is over the regular samples, so it is a time average; fewer nodes in use
    means more nodes that could be switched off, handed back, or kept for large tasks.
    """
    by_policy = results.timeseries.groupby("policy", sort=False)
    series = by_policy["nodes_used"]
    table = pd.DataFrame(
        {
            "mean_nodes_used": series.mean(),
            "peak_nodes_used": series.max(),
            "max_nodes_up": by_policy["nodes_up"].max(),  # the cluster's size, or its largest with scaling
        }
    )
    return table.reset_index()


def stranded(results: Results) -> pd.DataFrame:
    """Per policy: mean stranded share of each resource, and fragmentation.

    Stranded is free capacity on nodes that run something, as a share of live capacity
    (``mean_stranded_<r>``); fragmentation is the share of free capacity on nodes too
    full for the workload's median request.
    """
    columns = [c for c in results.summary.columns if c.startswith("mean_stranded_")]
    return results.summary[["policy", *columns, "fragmentation"]].reset_index(drop=True)


def with_load(scenario: sc.Scenario, load: float) -> sc.Scenario:
    """``scenario`` with every openb ``load`` set to ``load`` (a share of GPU capacity).

    Raises:
        ScenarioError: if no workload source has a ``load`` to set.
    """
    if not any(isinstance(s, sc.OpenbTrace) and s.load is not None for s in scenario.workload):
        raise sc.ScenarioError(
            f"{scenario.source}: no workload source has a 'load' to vary (an openb trace in arrivals mode)"
        )
    workload = [
        s.model_copy(update={"load": load}) if isinstance(s, sc.OpenbTrace) and s.load is not None else s
        for s in scenario.workload
    ]
    return scenario.model_copy(update={"workload": workload})


def load_curve(
    scenario: sc.Scenario | str | Path,
    loads: Sequence[float] = (0.5, 0.7, 0.9, 1.1, 1.3),
    policies: Sequence[str] = POLICIES_COMPARED,
    *,
    scale: float = 1.0,
    policy_params: ParamsByPolicy | None = None,
) -> pd.DataFrame:
    """Tasks left unplaced as offered load grows, per policy and load.

    ``scenario`` must have an openb workload in arrivals mode with a ``load``: pods
    arrive and never leave until their GPU requests reach ``load`` times the cluster's
    GPUs. A pod still waiting at the end could not be placed anywhere: the policy has
    stranded the capacity it needed (or, above 100%, the capacity does not exist).
    ``final_util_gpu`` is the share of the GPUs allocated at the end (NaN without GPUs).
    ``policy_params`` as in ``run_scaled``.
    """
    base = scale_scenario(_load(scenario, policy_params), scale)
    rows = []
    for load in loads:
        summary = run(with_load(base, load), policies=policies).summary
        for record in summary.itertuples(index=False):
            unplaced = int(record.tasks_pending) + int(record.unschedulable)
            rows.append(
                {
                    "policy": record.policy,
                    "load": float(load),
                    "submitted": int(record.tasks_submitted),
                    "unplaced": unplaced,
                    "unplaced_share": unplaced / max(int(record.tasks_submitted), 1),
                    "final_util_gpu": float(getattr(record, "final_util_gpu", float("nan"))),
                }
            )
    return pd.DataFrame(rows)


def failure_cost(
    scenario: sc.Scenario | str | Path,
    policies: Sequence[str] = POLICIES_COMPARED,
    *,
    scale: float = 1.0,
    seeds: Sequence[int] = (0,),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What node failures cost each policy, over ``seeds`` replications.

    Runs ``scenario`` (which should have ``node_failure`` events) and the same scenario
    without events, on the same tasks per seed.

    Returns:
        ``(per_policy, failures)``. ``failures`` has one row per failed node
        (``seed, policy, failed_at, detected_at, node, tasks_lost``). ``per_policy`` has,
        per policy: ``failures``; ``mean_lost`` and ``max_lost`` tasks per failed node;
        ``empty_failures`` (share of failures that hit an idle node); ``blast_radius``,
        the time-mean of the most tasks on any one node (what the worst single failure
        would take down at a random instant); and ``extra_mean_wait``, the mean wait
        with failures minus without (seconds), averaged over seeds.
    """
    base = scale_scenario(_load(scenario), scale)
    if not any(isinstance(e, sc.NodeFailure) for e in base.events):
        raise sc.ScenarioError(f"{base.source}: failure_cost needs a scenario with node_failure events")
    # The same run without failures (and so without recoveries); scale events stay.
    calm_events = [e for e in base.events if not isinstance(e, sc.NodeFailure | sc.NodeRecovery)]
    calm = base.model_copy(update={"events": calm_events})
    failure_rows, per_seed = [], []
    for seed in seeds:
        hit = run(base, policies=policies, seed=seed)
        quiet = run(calm, policies=policies, seed=seed).summary.set_index("policy")
        failure_rows.append(hit.failures.assign(seed=seed))
        radius = hit.timeseries.groupby("policy", sort=False)["max_tasks_per_node"].mean()
        summary = hit.summary.set_index("policy")
        per_seed.append(
            pd.DataFrame(
                {
                    "blast_radius": radius,
                    "extra_mean_wait": summary["mean_wait"] - quiet["mean_wait"],
                    "rescheduled": summary["rescheduled"],
                }
            ).assign(seed=seed)
        )
    failures = pd.concat(failure_rows, ignore_index=True)
    failures = failures[["seed", *[c for c in failures.columns if c != "seed"]]]
    lost = failures.groupby("policy", sort=False)["tasks_lost"]
    table = pd.DataFrame(
        {
            "failures": lost.size(),
            "mean_lost": lost.mean(),
            "max_lost": lost.max(),
            "empty_failures": lost.apply(lambda v: float((v == 0).mean())),
        }
    )
    averaged = pd.concat(per_seed).groupby(level=0)[["blast_radius", "extra_mean_wait", "rescheduled"]].mean()
    table = table.join(averaged).reindex(list(policies))
    table.index.name = "policy"
    return table.reset_index(), failures


# openb GPU requests are in milli-GPU: shared fractions, whole GPUs, multi-GPU pods.
GPU_CLASSES: tuple[tuple[float, str], ...] = (
    (0.0, "no GPU"),
    (999.0, "GPU share (< 1)"),
    (1000.0, "1 GPU"),
    (4000.0, "2-4 GPUs"),
    (float("inf"), "> 4 GPUs"),
)


def unplaced_by_request(
    results: Results, resource: str = "gpu", classes: Sequence[tuple[float, str]] = GPU_CLASSES
) -> pd.DataFrame:
    """Tasks never placed, counted per policy and per request-size class of ``resource``.

    ``classes`` are ``(upper bound inclusive, label)`` in increasing order. Which tasks a
    policy fails to place says why: a policy that keeps whole nodes free places large
    tasks and strands small ones, and the other way round.
    """
    tasks = results.tasks
    if resource not in tasks.columns:
        raise KeyError(f"the tasks have no {resource!r} column; they have: {', '.join(tasks.columns)}")
    bounds = [-float("inf"), *(upper for upper, _ in classes)]
    labels = [label for _, label in classes]
    left = tasks[tasks["status"].isin(["pending", "unschedulable"])]
    size = pd.cut(left[resource], bins=bounds, labels=labels)
    table = pd.crosstab(size, left["policy"]).reindex(index=labels, fill_value=0)
    order = [p for p in tasks["policy"].unique() if p in table.columns]
    table = table.reindex(columns=order, fill_value=0)
    table.index.name = f"{resource} request"
    table.columns.name = "policy"
    return table
