"""The report's HTML tables: one run's summary, intervals over seeds, paired differences."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from orchsim.intervals import display_bounds, paired_differences, summarize

__all__ = ["NA", "full_table", "paired_table", "replicated_table", "summary_table"]

NA = "n/a"  # a statistic with no data, e.g. the wait of tasks that never started


# Summary column -> (header, formatter) for the main table; util_* columns are added per resource.
def _fixed(digits: int) -> Callable[[float], str]:
    return lambda value: NA if pd.isna(value) else f"{value:,.{digits}f}"


_INT = _fixed(0)


def _percent(value: float) -> str:
    return NA if pd.isna(value) else f"{100 * value:.1f}"


_COLUMNS: dict[str, tuple[str, Callable[[float], str]]] = {
    "tasks_completed": ("completed", _INT),
    "tasks_failed": ("failed", _INT),
    "tasks_pending": ("pending", _INT),
    "unschedulable": ("unschedulable", _INT),
    "rescheduled": ("rescheduled", _INT),
    "mean_wait": ("mean wait (s)", _fixed(1)),
    "mean_wait_censored": ("mean wait counting never-started tasks (s, a lower bound)", _fixed(1)),
    "tasks_never_started": ("never started", _INT),
    "prob_wait": ("waited (%)", _percent),
    "p95_wait": ("p95 wait (s)", _fixed(1)),
    "p99_wait": ("p99 wait (s)", _fixed(1)),
    "makespan": ("makespan (s)", _fixed(0)),
    "throughput": ("throughput (tasks/s)", _fixed(3)),
}
_TAIL_COLUMNS: dict[str, tuple[str, Callable[[float], str]]] = {
    "peak_nodes_used": ("peak nodes used", _INT),
    "fragmentation": ("fragmented free capacity (%)", _percent),
    "wall_seconds": ("engine wall time (s)", _fixed(3)),
}


def _columns(frame: pd.DataFrame, resources: Sequence[str]) -> dict[str, tuple[str, Callable[[float], str]]]:
    """The summary table's metric columns present in ``frame``, in order: column -> (header, formatter)."""
    columns = dict(_COLUMNS)
    for resource in resources:
        columns[f"mean_util_{resource}"] = (f"mean {resource} util (%)", _percent)
    for resource in resources:
        columns[f"mean_stranded_{resource}"] = (f"stranded {resource} (%)", _percent)
    columns |= _TAIL_COLUMNS
    return {c: spec for c, spec in columns.items() if c in frame.columns}


def summary_table(summary: pd.DataFrame, resources: Sequence[str]) -> str:
    """One seed's summary table: a row per policy, the metrics formatted for reading."""
    columns = {"policy": ("policy", str)} | _columns(summary, resources)
    table = summary[list(columns)].rename(columns={c: header for c, (header, _) in columns.items()})
    formatters = dict(columns.values())
    return table.to_html(index=False, border=0, na_rep=NA, formatters=formatters, classes="summary", escape=True)


def _over_seeds(formatter: Callable[[float], str]) -> Callable[[float], str]:
    # A mean of counts over seeds has a fraction worth showing.
    return _fixed(1) if formatter is _INT else formatter


def _interval_cell(metric: str, fmt: Callable[[float], str], mean: float, low: float, high: float) -> tuple[str, bool]:
    """``mean ± half-width``, or ``mean [low, high]`` when clipped at a natural bound; and whether."""
    if pd.isna(mean):
        return NA, False
    if pd.isna(low):
        return fmt(mean), False
    shown_low, shown_high, clipped = display_bounds(metric, low, high)
    if clipped:
        return f"{fmt(mean)} [{fmt(shown_low)}, {fmt(shown_high)}]", True
    return f"{fmt(mean)} ± {fmt((high - low) / 2)}", False


def replicated_table(raw: pd.DataFrame, resources: Sequence[str], confidence: float) -> tuple[str, bool]:
    """The summary table over seeds (mean ± half-width per cell); and whether any interval was clipped."""
    columns = _columns(raw, resources)
    table = summarize(raw, metrics=list(columns), confidence=confidence)
    rows, any_clipped = [], False
    for _, row in table.iterrows():
        cells = {"policy": row["policy"]}
        for metric, (header, formatter) in columns.items():
            bounds = (row[f"{metric}_mean"], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"])
            cells[header], clipped = _interval_cell(metric, _over_seeds(formatter), *bounds)
            any_clipped |= clipped
        rows.append(cells)
    headers = ["policy"] + [header for header, _ in columns.values()]
    frame = pd.DataFrame(rows, columns=headers)
    return frame.to_html(index=False, border=0, classes="summary", escape=True), any_clipped


def paired_table(raw: pd.DataFrame, resources: Sequence[str], baseline: str, confidence: float) -> str:
    """Each other policy minus ``baseline``, seed by seed: mean difference ± half-width, * if it excludes 0."""
    columns = _columns(raw, resources)
    paired = paired_differences(raw, baseline, metrics=list(columns), confidence=confidence)
    rows = []
    for _, row in paired.iterrows():
        cells: dict[str, object] = {"policy": row["policy"], "seeds": row["pairs"]}
        for metric, (header, formatter) in columns.items():
            fmt = _over_seeds(formatter)
            diff, low, high = (row[f"{metric}_{s}"] for s in ("diff", "diff_ci_low", "diff_ci_high"))
            if pd.isna(diff):
                text = NA
            elif pd.isna(low):
                text = fmt(diff)
            else:
                text = f"{fmt(diff)} ± {fmt((high - low) / 2)}" + (" *" if row[f"{metric}_excludes_0"] else "")
            cells[f"Δ {header}"] = text
        rows.append(cells)
    frame = pd.DataFrame(rows)
    return frame.to_html(index=False, border=0, classes="paired", escape=True)


def full_table(summary: pd.DataFrame) -> str:
    """Every summary column, unformatted beyond six significant digits (the page's details table)."""
    return summary.to_html(
        index=False, border=0, na_rep=NA, float_format=lambda v: f"{v:.6g}", classes="full", escape=True
    )
