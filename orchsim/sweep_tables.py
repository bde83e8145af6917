"""The sweep's terminal tables: policies side by side, one metric per table, fitting the terminal.

One wide row per (value, policy) with a dozen metric columns needs about 190 columns; at 80
rich squeezed it into ``│ bin_p… │ 837.9… │``. Here the policies are the columns and each
table holds one metric over the parameter's values (or, without a parameter, one table with
a row per metric), cells to 3 significant digits. When even that is wider than the terminal
(many or long policy names), the table is printed long: one row per (value, policy). The
CSV files keep every digit; this is for reading.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Sequence

import pandas as pd

from orchsim.cli import print_table
from orchsim.intervals import display_bounds

__all__ = ["SHORT", "cell", "diff_cell", "fmt", "print_intervals", "print_paired", "terminal_width"]

# metric -> terminal header; the CSV keeps the full column names
SHORT = {
    "mean_wait": "wait_mean_s",
    "mean_wait_censored": "wait_cens_s",
    "tasks_never_started": "never_started",
    "p95_wait": "wait_p95_s",
    "makespan": "makespan_s",
    "throughput": "tput_per_s",
    "peak_nodes_used": "peak_nodes",
    "fragmentation": "frag",
    "unschedulable": "unsched",
    "tasks_pending": "pending",
    "mean_util_cpu": "util_cpu",
    "wall_seconds": "wall_s",
}
DIGITS = 3


def fmt(x: float, digits: int = DIGITS) -> str:
    """``x`` to ``digits`` significant digits, without exponents for large numbers (1810, not 1.81e+03)."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    magnitude = math.floor(math.log10(abs(x)))
    if magnitude >= digits - 1:
        return f"{round(x, digits - 1 - magnitude):.0f}"
    return f"{x:.{digits}g}"


def cell(metric: str, mean: float, low: float, high: float) -> tuple[str, bool]:
    """``mean ± half-width``, or ``mean [low, high]`` when clipped at a natural bound; and whether."""
    if math.isnan(mean):
        return "n/a", False
    if math.isnan(low):
        return fmt(mean), False
    shown_low, shown_high, clipped = display_bounds(metric, low, high)
    if clipped:
        return f"{fmt(mean)} [{fmt(shown_low)}, {fmt(shown_high)}]", True
    return f"{fmt(mean)} ± {fmt((high - low) / 2)}", False


def diff_cell(diff: float, low: float, high: float, excludes_0: bool) -> str:
    """``difference ± half-width``, ``*`` when the interval excludes 0."""
    if math.isnan(diff):
        return "n/a"
    if math.isnan(low):
        return fmt(diff)
    return f"{fmt(diff)} ± {fmt((high - low) / 2)}" + (" *" if excludes_0 else "")


def terminal_width() -> int:
    """The terminal's columns (``COLUMNS`` if set; 80 when there is no terminal)."""
    return shutil.get_terminal_size((80, 24)).columns


def _width(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    # rich's default box: one border per column plus one, and a space either side of each cell
    widths = [max(len(text) for text in column) for column in zip(headers, *rows, strict=True)]
    return sum(widths) + 3 * len(widths) + 1


def _print_policies_as_columns(
    first: str, row_keys: list[str], policies: list[str], cells: dict[tuple[str, str], str], width: int
) -> None:
    """Rows ``row_keys`` x columns ``policies``; one row per (key, policy) if that is too wide."""
    headers = [first, *policies]
    rows = [[key, *(cells.get((key, p), "") for p in policies)] for key in row_keys]
    if _width(headers, rows) > width:
        headers = [first, "policy", "value"]
        rows = [[key, p, cells[(key, p)]] for key in row_keys for p in policies if (key, p) in cells]
    print_table(headers, rows)


def _print_by_metric(
    frame: pd.DataFrame,
    metrics: list[str],
    render: Callable[[pd.Series, str], str],
    label: Callable[[str], str],
    width: int,
) -> None:
    """One table per metric (rows: parameter values), or one table of metrics when there is no parameter."""
    keys = list(frame.columns[: frame.columns.get_loc("policy")])
    policies = list(dict.fromkeys(frame.policy))
    if not keys:
        by_row = {(label(m), row["policy"]): render(row, m) for _, row in frame.iterrows() for m in metrics}
        _print_policies_as_columns("metric", [label(m) for m in metrics], policies, by_row, width)
        return
    values = [str(v) for v in dict.fromkeys(frame[keys[0]])]
    for i, metric in enumerate(metrics):
        title = label(metric)  # the CSVs keep the metric's own name: say it where the header shortens it
        print(("\n" if i else "") + title + ("" if metric in title else f"  ({metric} in the CSVs)"))
        cells = {(str(row[keys[0]]), row["policy"]): render(row, metric) for _, row in frame.iterrows()}
        _print_policies_as_columns(keys[0], values, policies, cells, width)


def print_intervals(table: pd.DataFrame, metrics: list[str], width: int | None = None) -> bool:
    """Print the interval tables; returns whether any interval was clipped for display."""
    clipped_any = False

    def render(row: pd.Series, metric: str) -> str:
        nonlocal clipped_any
        text, clipped = cell(metric, row[f"{metric}_mean"], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"])
        clipped_any |= clipped
        return text

    _print_by_metric(table, metrics, render, lambda m: SHORT.get(m, m), width or terminal_width())
    return clipped_any


def print_paired(paired: pd.DataFrame, metrics: list[str], width: int | None = None) -> None:
    """Print each other policy minus the baseline, per metric, in the same layout as the intervals."""

    def render(row: pd.Series, m: str) -> str:
        return diff_cell(row[f"{m}_diff"], row[f"{m}_diff_ci_low"], row[f"{m}_diff_ci_high"], row[f"{m}_excludes_0"])

    _print_by_metric(paired, metrics, render, lambda m: "Δ " + SHORT.get(m, m), width or terminal_width())
