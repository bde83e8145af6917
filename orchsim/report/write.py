"""``write_report``: check every input, run each scenario over its seeds, write ``report.html``."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from orchsim.intervals import ReplicationError
from orchsim.report.page import build_report, default_command, replications_frame
from orchsim.scenario import Scenario, load_scenario

if TYPE_CHECKING:
    from orchsim.run import Results

__all__ = ["REPORT_NAME", "write_report"]

REPORT_NAME = "report.html"


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

    Raises:
        ScenarioError, TraceError, UnknownPolicyError: for a bad scenario, trace, seed,
            window or policy name; every file and override is checked before anything runs.
        ReplicationError: ``seed`` and ``seeds`` together, malformed seeds, a baseline that
            is unknown or not among a scenario's policies, a confidence outside (0, 1).
        OSError: ``out_dir`` cannot be created or written.
        PluginError: a plugin that cannot be loaded.
    """
    from orchsim.plugins import load_plugins
    from orchsim.run import run  # at call time: tests replace it to prove nothing ran
    from orchsim.scheduling import POLICIES

    load_plugins(plugins)
    for name in policies or ():
        POLICIES.spec(name)  # fail before anything runs
    if seed is not None and seeds is not None:
        raise ReplicationError("seed and seeds: give one or the other")
    if not 0 < confidence < 1:
        raise ReplicationError(f"confidence: must be between 0 and 1, got {confidence}")
    plans = _plans(scenarios, policies, seed, seeds, baseline, (warmup, until))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)  # an unwritable folder fails before the runs
    firsts, replications = [], []
    for scenario, chosen in plans:
        frames = []
        for k in chosen:
            results = run(scenario, policies=policies, seed=k, warmup=warmup, until=until)
            if not frames:
                firsts.append(results)  # the figures' run; the others keep only their summary
            frames.append(replications_frame([results]))
        replications.append(pd.concat(frames, ignore_index=True))
    if command is None:
        command = _command(
            firsts, out_dir, policies=policies, seed=seed, seeds=seeds, baseline=baseline, warmup=warmup, until=until
        )
    page = build_report(firsts, command=command, replications=replications, baseline=baseline, confidence=confidence)
    path = out / REPORT_NAME
    path.write_text(page, encoding="utf-8")
    return path
