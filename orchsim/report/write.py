"""``write_report``: check every input, run each scenario over its seeds, write ``report.html``.

The runs go through the sweep's executor seam (``orchsim.sweep_executor``): in this process
by default, or a process pool or a Dask cluster, with the same progress bar. A run is plain
data (``ReportJob``), re-validated where it runs; the first seed of each scenario comes back
whole (its figures are drawn), the others as their summary rows only.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from orchsim.intervals import ReplicationError
from orchsim.report.page import build_report, default_command, replications_frame
from orchsim.scenario import Scenario, load_scenario
from orchsim.sweep_executor import ExecutorSpec, run_jobs
from orchsim.sweep_jobs import Job, absolute_inputs, run_job_scenario
from orchsim.sweep_progress import Progress

if TYPE_CHECKING:
    from orchsim.run import Results

__all__ = ["REPORT_NAME", "ReportJob", "run_report_job", "write_report"]

REPORT_NAME = "report.html"
Window = tuple[float | None, float | None]  # (warmup, until) overrides


def _seeds_flag(seeds: Sequence[int] | int) -> str:
    if isinstance(seeds, int):
        return str(seeds)
    return ",".join(map(str, seeds)) + ("," if len(seeds) == 1 else "")


def _plans(
    scenarios: Sequence[str | Path | Scenario],
    policies: Sequence[str] | None,
    seed: int | None,
    seeds: Sequence[int] | int | None,
    baseline: str | None,
    window: tuple[float | None, float | None],
) -> list[tuple[Scenario, list[int]]]:
    """Each scenario with the seeds it runs, every file and override checked before anything runs."""
    from orchsim.scenario_edit import with_overrides
    from orchsim.sweep import check_baseline, check_seeds, seed_list

    warmup, until = window
    plans = []
    for scenario in [s if isinstance(s, Scenario) else load_scenario(s) for s in scenarios]:
        checked = with_overrides(scenario, policies=policies, warmup=warmup, until=until)
        single = checked.seed if seed is None else seed
        chosen = seed_list(seeds, checked.seed) if seeds is not None else [single]
        check_seeds(checked, chosen)
        if baseline is not None:
            check_baseline(baseline, checked.policies)
        plans.append((scenario, chosen))
    return plans


@dataclass(frozen=True)
class ReportJob(Job):
    """One report run: a sweep job plus the window, the policies as given, and whether to keep it whole."""

    given_policies: tuple[str, ...] | None = None
    warmup: float | None = None
    until: float | None = None
    whole: bool = False


def run_report_job(job: ReportJob, shipped: Mapping[str, bytes] | None = None) -> Any:
    """Run one report run; the whole ``Results`` for the figures' seed, else its replications rows."""
    from orchsim.run import run  # at call time: tests replace it to see the calls

    policies = list(job.given_policies) if job.given_policies is not None else None
    results = run(run_job_scenario(job, shipped), policies=policies, seed=job.seed, warmup=job.warmup, until=job.until)
    return results if job.whole else replications_frame([results])


def _jobs(
    plans: list[tuple[Scenario, list[int]]], policies: Sequence[str] | None, window: Window, plugins: Sequence[str]
) -> list[ReportJob]:
    jobs = []
    for scenario, chosen in plans:
        data, inputs = absolute_inputs(scenario.model_dump(mode="json"), scenario.base_dir)
        # Workers re-read the scenario: they load the command line's plugins first, as the schema does.
        data["plugins"] = [*plugins, *data.get("plugins", [])]
        given = tuple(policies) if policies else None
        for k, seed in enumerate(chosen):
            about = (scenario.source, str(scenario.base_dir.resolve()), tuple(scenario.policies), seed)
            jobs.append(
                ReportJob(
                    data, *about, inputs=inputs, given_policies=given, warmup=window[0], until=window[1], whole=k == 0
                )
            )
    return jobs


def _run_all(
    plans: list[tuple[Scenario, list[int]]],
    policies: Sequence[str] | None,
    window: Window,
    spec: ExecutorSpec,
    progress: bool,
    plugins: Sequence[str],
) -> tuple[list[Results], list[pd.DataFrame]]:
    """Every scenario's runs through the executor: the figures' runs, and one replications frame per scenario."""
    jobs = _jobs(plans, policies, window, plugins)
    outputs = iter(
        run_jobs(jobs, spec, fn=run_report_job, progress=Progress(len(jobs), desc="report", enabled=progress))
    )
    firsts, replications = [], []
    for _, chosen in plans:
        first = next(outputs)
        firsts.append(first)
        frames = [replications_frame([first]), *(next(outputs) for _ in chosen[1:])]
        replications.append(pd.concat(frames, ignore_index=True))
    return firsts, replications


def _command(
    firsts: Sequence[Results],
    out_dir: str | Path,
    *,
    policies: Sequence[str] | None,
    seed: int | None,
    seeds: Sequence[int] | int | None,
    baseline: str | None,
    warmup: float | None,
    until: float | None,
) -> str:
    """The ``python -m orchsim report`` line equivalent to a ``write_report`` call, for the header."""
    command = default_command(firsts)
    if policies:
        command += "".join(f" --policy {shlex.quote(p)}" for p in policies)
    if seed is not None:
        command += f" --seed {seed}"
    if seeds is not None:
        command += f" --seeds {_seeds_flag(seeds)}"
    if baseline is not None:
        command += f" --baseline {shlex.quote(baseline)}"
    if warmup is not None:
        command += f" --warmup {warmup:g}"
    if until is not None:
        command += f" --until {until:g}"
    return command + f" --out {shlex.quote(str(out_dir))}"


def write_report(
    scenarios: Sequence[str | Path | Scenario],
    out_dir: str | Path,
    *,
    policies: Sequence[str] | None = None,
    seed: int | None = None,
    seeds: Sequence[int] | int | None = None,
    baseline: str | None = None,
    warmup: float | None = None,
    until: float | None = None,
    confidence: float = 0.95,
    command: str | None = None,
    plugins: Sequence[str] = (),
    executor: str | ExecutorSpec = "processes",
    processes: int | None = 1,
    scheduler: str | None = None,
    progress: bool = False,
) -> Path:
    """Run each scenario (every policy, every seed) and write ``out_dir/report.html``; returns its path.

    Args:
        scenarios: Scenario objects or YAML paths, in page order.
        out_dir: Folder for ``report.html`` (created).
        policies: Override every scenario's policies.
        seed: Override every scenario's seed (one run each).
        seeds: Several runs per scenario instead: a count (the scenario's seed and the
            next ones) or the explicit seeds. The table then shows intervals over them;
            the figures come from the first.
        baseline: A policy of every scenario to subtract from the others, seed by seed.
        warmup: Override ``metrics.warmup`` (simulated seconds left out at the start).
        until: Override ``metrics.until`` (end of the measurement window, seconds).
        confidence: Level of the two-sided Student-t intervals.
        command: The command line shown in the header (default: the equivalent call).
        plugins: Modules or ``.py`` files registering policies, loaded before the scenarios.
        executor: Where the runs go, as for ``sweep``: ``processes``, ``dask``, or an
            ``ExecutorSpec`` (which then overrides ``processes`` and ``scheduler``).
        processes: Worker processes (1, the default, runs here; ``None`` one per CPU); with
            ``dask`` and no scheduler, the local cluster's workers.
        scheduler: ``dask``: the scheduler's address; default a local cluster.
        progress: Show a progress bar over the runs (on stderr).

    Raises:
        ScenarioError, TraceError, UnknownPolicyError: for a bad scenario, trace, seed,
            window or policy name; every file and override is checked before anything runs.
        ReplicationError: ``seed`` and ``seeds`` together, malformed seeds, a baseline that
            is unknown or not among a scenario's policies, a confidence outside (0, 1).
        OSError: ``out_dir`` cannot be created or written.
        PluginError: a plugin that cannot be loaded.
    """
    from orchsim.plugins import absolute_specs, load_plugins
    from orchsim.scheduling import POLICIES

    load_plugins(plugins)
    plugins = absolute_specs(plugins)  # for worker processes, which may run in other folders
    for name in policies or ():
        POLICIES.spec(name)  # fail before anything runs
    if seed is not None and seeds is not None:
        raise ReplicationError("seed and seeds: give one or the other")
    if not 0 < confidence < 1:
        raise ReplicationError(f"confidence: must be between 0 and 1, got {confidence}")
    plans = _plans(scenarios, policies, seed, seeds, baseline, (warmup, until))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)  # an unwritable folder fails before the runs
    spec = executor if isinstance(executor, ExecutorSpec) else ExecutorSpec(executor, processes, scheduler)
    firsts, replications = _run_all(plans, policies, (warmup, until), spec, progress, plugins)
    if command is None:
        command = _command(
            firsts, out_dir, policies=policies, seed=seed, seeds=seeds, baseline=baseline, warmup=warmup, until=until
        )
    page = build_report(firsts, command=command, replications=replications, baseline=baseline, confidence=confidence)
    path = out / REPORT_NAME
    path.write_text(page, encoding="utf-8")
    return path
