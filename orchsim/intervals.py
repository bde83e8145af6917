"""Statistics over replications: Student-t intervals per cell, paired differences, display bounds.

A replications frame has one row per (cell, policy, seed): the columns before ``policy``
(a swept parameter, if any) name the cell, then ``policy``, ``seed`` and the summary
columns of ``orchsim.run``. ``orchsim.sweep`` builds it over a parameter grid,
``orchsim.report`` over the seeds of each scenario; both aggregate it here.

Why two kinds of interval:

- ``summarize`` gives each policy's mean over the seeds and its Student-t interval: how
  precisely that policy's number is known.
- ``paired_differences`` answers "is policy A better than B?". Every policy of one run
  sees the same tasks (common random numbers), so most of the seed-to-seed noise (a busy
  draw, a quiet one) is shared, and it cancels in the per-seed difference. The t interval
  of those differences is then far narrower than what two overlapping per-policy
  intervals suggest; comparing the latter wastes the design.

Most metrics cannot be negative (waits, counts, utilisation) and shares cannot exceed 1,
yet a symmetric t interval over few seeds can cross those bounds. ``display_bounds`` clips
for display only; the frames returned here keep the raw t interval, so they re-aggregate
and compare exactly. Differences are never clipped: they may be negative.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_METRICS",
    "ReplicationError",
    "display_bounds",
    "metric_bounds",
    "paired_differences",
    "summarize",
    "t_interval",
]

#: Summary columns aggregated by default (those a run produced; ``mean_util_cpu`` needs a cpu resource).
DEFAULT_METRICS: tuple[str, ...] = (
    "mean_wait",
    "mean_wait_censored",
    "tasks_never_started",
    "p95_wait",
    "makespan",
    "throughput",
    "peak_nodes_used",
    "fragmentation",
    "unschedulable",
    "tasks_pending",
    "mean_util_cpu",
    "wall_seconds",
)

# Shares of capacity or of tasks: in [0, 1].
_SHARE_PREFIXES = ("mean_util_", "final_util_", "mean_stranded_")
_SHARES = frozenset({"fragmentation", "prob_wait"})
# Times, counts and rates: >= 0. Any ``*_wait`` column is a wait statistic.
_NONNEGATIVE_PREFIXES = ("tasks_",)
_NONNEGATIVE = frozenset(
    {
        "mean_wait_censored",
        "makespan",
        "throughput",
        "unschedulable",
        "rescheduled",
        "mean_queue",
        "mean_running",
        "peak_nodes_used",
        "decisions",
        "wall_seconds",
    }
)


class ReplicationError(ValueError):
    """Replications, or statistics over them, that cannot be computed as asked.

    Bad seeds, a malformed replications frame, an unknown metric or baseline, a confidence
    level outside (0, 1). ``orchsim.sweep.SweepError`` is this class.
    """


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ReplicationError(f"confidence: must be between 0 and 1, got {confidence}")


def t_interval(sample: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """Mean and two-sided Student-t interval (n - 1 degrees of freedom) of ``sample``.

    Args:
        sample: 1-D float array without NaN.
        confidence: Two-sided level, in (0, 1).

    Returns:
        ``(mean, low, high)``: all NaN for an empty sample, NaN bounds for one value.
    """
    from scipy import stats

    n = len(sample)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(sample.mean())
    if n < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * float(sample.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def metric_bounds(metric: str) -> tuple[float, float]:
    """The values ``metric`` can take: ``(0, 1)`` for shares, ``(0, inf)`` for times and counts.

    A column this module does not know (a user's own) is unbounded, so it is never clipped.
    """
    if metric in _SHARES or metric.startswith(_SHARE_PREFIXES):
        return 0.0, 1.0
    if metric in _NONNEGATIVE or metric.endswith("_wait") or metric.startswith(_NONNEGATIVE_PREFIXES):
        return 0.0, math.inf
    return -math.inf, math.inf


def display_bounds(metric: str, low: float, high: float) -> tuple[float, float, bool]:
    """``(low, high)`` clipped at ``metric``'s natural bounds, for display; and whether it was.

    A t interval over few seeds is symmetric even when the metric cannot go below 0 (or a
    share above 1); printing ``2 ± 3`` for a wait would claim a negative wait is plausible.
    Only the printed interval is cut: the CSV files keep the raw one. NaN stays NaN.
    """
    floor, ceiling = metric_bounds(metric)
    clipped_low, clipped_high = max(low, floor), min(high, ceiling)
    if math.isnan(low) or math.isnan(high):
        return low, high, False
    return clipped_low, clipped_high, (clipped_low, clipped_high) != (low, high)


def _numeric_after_seed(raw: pd.DataFrame) -> list[str]:
    start = raw.columns.get_loc("seed") + 1
    return [c for c in raw.columns[start:] if pd.api.types.is_numeric_dtype(raw[c].dtype)]


def _choose_metrics(raw: pd.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    numeric = _numeric_after_seed(raw)
    if metrics is None:
        return [m for m in DEFAULT_METRICS if m in numeric]
    chosen = list(dict.fromkeys(metrics))
    unknown = [m for m in chosen if m not in numeric]
    if unknown:
        raise ReplicationError(
            f"metric {', '.join(unknown)}: not a numeric summary column (have: {', '.join(numeric)})"
        )
    return chosen


def _check_frame(raw: pd.DataFrame) -> None:
    if "seed" not in raw.columns or "policy" not in raw.columns:
        raise ReplicationError("not a replications frame: it needs 'policy' and 'seed' columns")
    if raw.columns.get_loc("policy") > raw.columns.get_loc("seed"):
        raise ReplicationError("not a replications frame: 'policy' must come before 'seed'")


def summarize(raw: pd.DataFrame, *, metrics: Sequence[str] | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """Aggregate replications into one row per cell with Student-t confidence intervals.

    A cell is the combination of the columns before ``seed`` (the parameter, if any, and
    ``policy``), so a ``sweep_replications.csv`` read back with pandas aggregates the same
    way. The t interval assumes the per-seed results are independent and roughly normal
    (means of many tasks are); it is wide with few seeds, which is the honest answer.

    Args:
        raw: A replications frame (``orchsim.sweep.sweep_replications`` or its CSV).
        metrics: Summary columns to aggregate; default ``DEFAULT_METRICS`` that are present.
        confidence: Two-sided confidence level, in (0, 1).

    Returns:
        The cell columns, ``replications``, then ``<metric>_mean``, ``<metric>_ci_low`` and
        ``<metric>_ci_high`` per metric, cells in the order they first appear in ``raw``.
        The bounds are the raw t interval, not clipped at the metric's natural bounds (see
        ``display_bounds``). A NaN result (e.g. the wait when no task started) is left out
        of its metric's interval; with one value the bounds are NaN.

    Raises:
        ReplicationError: ``raw`` is not a replications frame, an unknown or non-numeric
            metric, or a confidence outside (0, 1).
    """
    _check_confidence(confidence)
    _check_frame(raw)
    keys = list(raw.columns[: raw.columns.get_loc("seed")])
    chosen = _choose_metrics(raw, metrics)
    columns = [*keys, "replications"] + [f"{m}_{s}" for m in chosen for s in ("mean", "ci_low", "ci_high")]
    rows = []
    for key, group in raw.groupby(keys, sort=False):
        row: dict[str, Any] = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        row["replications"] = len(group)
        for metric in chosen:
            sample = group[metric].to_numpy(dtype=float)
            mean, low, high = t_interval(sample[~np.isnan(sample)], confidence)
            row |= {f"{metric}_mean": mean, f"{metric}_ci_low": low, f"{metric}_ci_high": high}
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def paired_differences(
    raw: pd.DataFrame, baseline: str, *, metrics: Sequence[str] | None = None, confidence: float = 0.95
) -> pd.DataFrame:
    """Each policy minus ``baseline``, paired by seed, with the Student-t interval of the differences.

    Within a cell (the columns before ``policy``) and a seed, every policy ran on the same
    tasks, so ``policy - baseline`` for that seed is one draw of the policy's effect with
    the shared noise removed. The interval is the t interval of the per-seed differences
    (n - 1 degrees of freedom, n the seeds both policies ran); it excludes 0 when the
    sign of the effect is established at that confidence.

    Args:
        raw: A replications frame (``orchsim.sweep.sweep_replications`` or its CSV).
        baseline: The policy subtracted; it must be among ``raw``'s policies.
        metrics: Summary columns to compare; default ``DEFAULT_METRICS`` that are present.
        confidence: Two-sided confidence level, in (0, 1).

    Returns:
        One row per (cell, other policy), in the order of ``raw``: the cell columns,
        ``policy``, ``baseline``, ``pairs`` (seeds both ran), then per metric
        ``<metric>_diff`` (mean difference), ``<metric>_diff_ci_low``,
        ``<metric>_diff_ci_high`` (raw, never clipped) and ``<metric>_excludes_0``
        (False when there is no interval: fewer than two pairs). A seed where either value
        is NaN is left out of that metric.

    Raises:
        ReplicationError: ``raw`` is not a replications frame, ``baseline`` is not among
            its policies or is the only one, a (cell, policy, seed) appears twice, an
            unknown or non-numeric metric, or a confidence outside (0, 1).
    """
    _check_confidence(confidence)
    _check_frame(raw)
    policies = list(dict.fromkeys(raw["policy"]))
    if baseline not in policies:
        raise ReplicationError(f"baseline: {baseline!r} is not among the policies run ({', '.join(policies)})")
    if len(policies) < 2:
        raise ReplicationError(f"baseline: {baseline!r} is the only policy run; there is nothing to compare with it")
    keys = list(raw.columns[: raw.columns.get_loc("policy")])
    if raw.duplicated([*keys, "policy", "seed"]).any():
        raise ReplicationError("not a replications frame: a (cell, policy, seed) appears twice")
    chosen = _choose_metrics(raw, metrics)
    columns = [*keys, "policy", "baseline", "pairs"]
    columns += [f"{m}_{s}" for m in chosen for s in ("diff", "diff_ci_low", "diff_ci_high", "excludes_0")]
    groups = raw.groupby(keys, sort=False) if keys else [((), raw)]
    rows = []
    for key, cell in groups:
        reference = cell[cell["policy"] == baseline].set_index("seed")
        for policy in dict.fromkeys(cell["policy"]):
            if policy == baseline:
                continue
            other = cell[cell["policy"] == policy].set_index("seed")
            seeds = [s for s in other.index if s in reference.index]  # the policy's seed order
            row: dict[str, Any] = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
            row |= {"policy": policy, "baseline": baseline, "pairs": len(seeds)}
            for metric in chosen:
                diffs = other.loc[seeds, metric].to_numpy(dtype=float) - reference.loc[seeds, metric].to_numpy(
                    dtype=float
                )
                mean, low, high = t_interval(diffs[~np.isnan(diffs)], confidence)
                row |= {
                    f"{metric}_diff": mean,
                    f"{metric}_diff_ci_low": low,
                    f"{metric}_diff_ci_high": high,
                    f"{metric}_excludes_0": bool(low > 0 or high < 0),  # NaN compares False
                }
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)
