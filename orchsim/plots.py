"""Figures: one per metric, every policy on it, labelled axes with units.

Each ``plot_*`` draws on the ``ax`` it is given (or a new pyplot figure, for notebooks);
``write_all`` renders onto bare ``Figure`` objects, so it needs no display and does not
change the matplotlib backend of whoever imported it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from orchsim.run import Results
    from orchsim.workload import Workload

__all__ = [
    "mark_failures",
    "requested_resources",
    "plot_failure_cost",
    "plot_load_curve",
    "plot_nodes_used",
    "plot_queue",
    "plot_sampling_tradeoff",
    "plot_stranded",
    "plot_stranded_over_time",
    "plot_utilisation",
    "plot_wait_cdf",
    "keep_overlaps_visible",
    "standard_figures",
    "write_all",
]

FIGSIZE = (8.0, 4.0)  # inches
_FAILURE = "node failure"  # the gid of the lines that mark failures
_FAILURE_STYLE = {"color": "0.35", "linestyle": "--", "linewidth": 0.9, "zorder": 0, "gid": _FAILURE}


def keep_overlaps_visible(ax: plt.Axes) -> None:
    """Policies often coincide: draw earlier policies wider so every line stays visible."""
    lines = [line for line in ax.get_lines() if not line.get_label().startswith("_") and line.get_gid() != _FAILURE]
    if len(lines) < 2:
        return
    for i, line in enumerate(lines):
        line.set_linewidth(1.2 + 2.0 * (len(lines) - 1 - i) / (len(lines) - 1))
    if ax.get_legend() is not None:
        ax.legend()


def requested_resources(workload: Workload) -> list[str]:
    """The resources some task asks for, in order (all of them if there are no tasks).

    A resource nobody requests has utilisation 0 under every policy: a figure of it would
    be a flat line at 0, so none is drawn.
    """
    demand = workload.demand
    if demand.size == 0:
        return list(workload.resources)
    return [name for i, name in enumerate(workload.resources) if np.any(demand[:, i] > 0)]


def mark_failures(ax: plt.Axes, failures: pd.DataFrame | None) -> None:
    """A dashed vertical line at each moment a node failed (``failed_at`` of ``Results.failures``)."""
    if failures is None or failures.empty or "failed_at" not in failures:
        return
    for i, at in enumerate(np.unique(failures["failed_at"].to_numpy(dtype=float))):
        ax.axvline(at, label=_FAILURE if i == 0 else "_failure", **_FAILURE_STYLE)


def _over_time(
    ax: plt.Axes, timeseries: pd.DataFrame, column: str, scale: float, failures: pd.DataFrame | None
) -> None:
    """One step line per policy of ``column`` (times ``scale``) against simulated time; failures marked."""
    for policy, rows in timeseries.groupby("policy", sort=False):
        ax.step(rows["time"], scale * rows[column], where="post", label=str(policy))
    mark_failures(ax, failures)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylim(bottom=0)
    ax.margins(x=0)


def _legend(ax: plt.Axes) -> None:
    """Widen overlapping lines, and put the legend beside the axes, out of the curves' way."""
    keep_overlaps_visible(ax)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize="small")


def plot_utilisation(
    timeseries: pd.DataFrame, resource: str = "cpu", ax: plt.Axes | None = None, *, failures: pd.DataFrame | None = None
) -> plt.Axes:
    """Allocated share of live capacity over time, per policy; dashed: node failures."""
    ax = ax or plt.subplots(figsize=FIGSIZE)[1]
    _over_time(ax, timeseries, f"util_{resource}", 100, failures)
    ax.set_ylabel(f"{resource} allocated (% of live)")
    ax.set_title(f"{resource} utilisation over time")
    _legend(ax)
    return ax


def plot_stranded_over_time(
    timeseries: pd.DataFrame, resource: str = "cpu", ax: plt.Axes | None = None, *, failures: pd.DataFrame | None = None
) -> plt.Axes:
    """Free ``resource`` on nodes that run something, as a share of live capacity, over time, per policy.

    Capacity left over on busy nodes is what packing saves: a node with nothing on it can
    be handed back or given whole to a large task, a half-used one cannot.
    """
    ax = ax or plt.subplots(figsize=FIGSIZE)[1]
    _over_time(ax, timeseries, f"stranded_{resource}", 100, failures)
    ax.set_ylabel(f"free {resource} on busy nodes (% of live)")
    ax.set_title(f"stranded {resource}: free on nodes that run tasks")
    _legend(ax)
    return ax


def plot_wait_cdf(tasks: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Share of tasks that waited at most x seconds, per policy, on a symlog axis; never-started tasks at the right.

    The share is of every task, started or not: a task that never started has an unknown
    wait, longer than the run, so it is drawn as censored mass in a band at the right edge
    (the curve climbs there to 1, the band is labelled with the share). Waits of 0 stay on
    the axis: it is linear below 1 s and logarithmic above, so seconds and hours both show.
    """
    ax = ax or plt.subplots(figsize=FIGSIZE)[1]
    started = tasks["start_time"].notna()
    longest = float(tasks.loc[started, "wait"].max()) if started.any() else 0.0
    edge = max(2.0 * longest, 10.0)  # where the never-started band starts: clear of every wait
    groups = list(tasks.groupby("policy", sort=False))
    censored = any(rows["start_time"].isna().any() for _, rows in groups)
    right = edge * 2.2 if censored else edge
    for i, (policy, rows) in enumerate(groups):
        waits = np.sort(rows.loc[rows["start_time"].notna(), "wait"].to_numpy())
        share = np.arange(0, len(waits) + 1) / max(len(rows), 1)
        never = 1 - share[-1]
        # Each policy's censored mass is a bar of its own in the band, side by side.
        at = edge * 1.1 * (right / edge / 1.2) ** ((i + 0.5) / len(groups)) if censored else edge
        label = f"{policy} ({100 * never:.0f}% never started)" if censored else str(policy)
        (line,) = ax.step(np.r_[0.0, waits, at], np.r_[share, share[-1]], where="post", label=label)
        if never > 0:
            ax.plot([at, at], [share[-1], 1.0], color=line.get_color(), linewidth=5, solid_capstyle="butt")
    ax.set_xscale("symlog", linthresh=1.0, linscale=0.5)
    if censored:
        ax.axvspan(edge, right, color="0.92", zorder=0)
        ax.text(np.sqrt(edge * right), 0.02, "never\nstarted", ha="center", va="bottom", fontsize="small")
    ax.set_title("wait-time CDF" + (" (grey band: tasks that never started)" if censored else ""))
    ax.set_xlim(-0.3, right)  # from below 0: the jump at 0 stays clear of the spine
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("wait before start (s, symlog: linear below 1 s)")
    ax.set_ylabel("share of all tasks")
    _legend(ax)
    return ax


def plot_queue(
    timeseries: pd.DataFrame, ax: plt.Axes | None = None, *, failures: pd.DataFrame | None = None
) -> plt.Axes:
    """Tasks waiting in the queue over time, per policy; dashed: node failures."""
    ax = ax or plt.subplots(figsize=FIGSIZE)[1]
    _over_time(ax, timeseries, "queue", 1, failures)
    ax.set_ylabel("queued tasks")
    ax.set_title("queue length over time")
    _legend(ax)
    return ax


def plot_nodes_used(
    timeseries: pd.DataFrame, ax: plt.Axes | None = None, *, failures: pd.DataFrame | None = None
) -> plt.Axes:
    """Nodes running at least one task over time, per policy (dotted: nodes up, when it changes)."""
    ax = ax or plt.subplots(figsize=FIGSIZE)[1]
    _over_time(ax, timeseries, "nodes_used", 1, failures)
    lines = [line for line in ax.get_lines() if not line.get_label().startswith("_") and line.get_gid() != _FAILURE]
    for line, (_, rows) in zip(lines, timeseries.groupby("policy", sort=False), strict=False):
        if "nodes_up" in rows and rows["nodes_up"].nunique() > 1:
            ax.step(rows["time"], rows["nodes_up"], where="post", linestyle=":", linewidth=1, color=line.get_color())
    ax.set_ylabel("nodes in use (count)")
    ax.set_title("nodes in use over time")
    _legend(ax)
    return ax


def plot_stranded(table: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Grouped bars: mean stranded share of each resource, per policy.

    ``table`` has a ``policy`` column and one ``mean_stranded_<resource>`` column per
    resource (``orchsim.compare.stranded`` returns it).
    """
    ax = ax or plt.subplots(figsize=FIGSIZE)[1]
    columns = [c for c in table.columns if c.startswith("mean_stranded_")]
    x = np.arange(len(table))
    width = 0.8 / max(len(columns), 1)
    for i, column in enumerate(columns):
        ax.bar(
            x + (i - (len(columns) - 1) / 2) * width,
            100 * table[column],
            width,
            label=column.removeprefix("mean_stranded_"),
        )
    ax.set_xticks(x, table["policy"], rotation=20)
    ax.set_xlabel("policy")
    ax.set_ylabel("free on busy nodes (% of capacity)")
    ax.set_title("stranded capacity: free resources left on nodes that run tasks")
    ax.legend(title="resource")
    return ax


_LOAD_CURVE_METRICS = {
    "unplaced_share": ("tasks never placed (% of submitted)", "tasks never placed as load grows"),
    "final_util_gpu": ("GPUs allocated at the end (% of GPUs)", "GPU capacity put to use as load grows"),
}


def plot_load_curve(
    curve: pd.DataFrame, ax: plt.Axes | None = None, *, of: str = "capacity", metric: str = "unplaced_share"
) -> plt.Axes:
    """A ``load_curve`` metric (a share, drawn in %) against offered load (a share ``of`` something), per policy."""
    if metric not in _LOAD_CURVE_METRICS:
        raise ValueError(f"metric must be one of {', '.join(_LOAD_CURVE_METRICS)}, got {metric!r}")
    ylabel, title = _LOAD_CURVE_METRICS[metric]
    ax = ax or plt.subplots(figsize=FIGSIZE)[1]
    for policy, rows in curve.groupby("policy", sort=False):
        ax.plot(100 * rows["load"], 100 * rows[metric], marker="o", label=str(policy))
    ax.set_xlabel(f"offered load (% of {of})")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.legend()
    keep_overlaps_visible(ax)
    return ax


def plot_failure_cost(failures: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Box plot of tasks lost per node failure, per policy (one point per failed node)."""
    ax = ax or plt.subplots(figsize=FIGSIZE)[1]
    groups = [(str(p), rows["tasks_lost"].to_numpy()) for p, rows in failures.groupby("policy", sort=False)]
    ax.boxplot([v for _, v in groups], showmeans=True)
    ax.set_xticks(np.arange(1, len(groups) + 1), [p for p, _ in groups], rotation=20)
    ax.set_xlabel("policy")
    ax.set_ylabel("tasks lost per failed node (count)")
    ax.set_title("what one node failure costs (triangle: mean)")
    ax.set_ylim(bottom=0)
    return ax


_TRADEOFF_PANELS = (
    ("decision_us", "one decision (µs)", "decision time"),
    ("nodes_used", "nodes running a task (count)", "nodes used"),
    ("stranded_share", "free on busy nodes (% of capacity)", "stranded capacity"),
    ("unplaced", "tasks never placed (count)", "unplaced tasks"),
)


def plot_sampling_tradeoff(table: pd.DataFrame, fig: Figure | None = None) -> Figure:
    """Decision time and placement quality against the share of nodes sampled, in a 2 x 2 grid.

    ``table`` is ``orchsim.sampling_tradeoff.sampling_tradeoff``'s (one row per rule);
    the share axis is logarithmic, from Nomad's log2 candidates to every node.
    """
    fig = fig or plt.figure(figsize=(10.0, 6.5), layout="constrained")
    rows = table.sort_values("share", kind="stable")
    share = 100 * rows["share"]
    for i, (column, ylabel, title) in enumerate(_TRADEOFF_PANELS):
        ax = fig.add_subplot(2, 2, i + 1)
        values = 100 * rows[column] if column == "stranded_share" else rows[column]
        ax.plot(share, values, marker="o")
        for x, y, text in zip(share, values, rows["sample"], strict=True):
            ax.annotate(text, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        if column == "decision_us":
            ax.set_yscale("log")
        else:
            ax.ticklabel_format(axis="y", useOffset=False)  # counts and shares as they are
        if column == "unplaced":
            ax.set_ylim(bottom=0, top=max(1, float(values.max()) * 1.2))
        ax.set_xlabel("nodes sampled (% of the cluster)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
    fig.suptitle("node sampling: decision time against placement quality (same tasks, same start state)")
    return fig


def standard_figures(results: Results) -> list[tuple[str, Callable[[plt.Axes], object]]]:
    """The figures of a run, as (file stem, draw on an ``Axes``), in the order a reader wants them.

    Per resource some task requests: utilisation and stranded capacity over time; then
    nodes in use (where packing and spreading part), the wait CDF and the queue. Node
    failures are marked on every time axis.
    """
    timeseries, tasks, failures = results.timeseries, results.tasks, results.failures
    resources = requested_resources(results.workload)
    figures: list[tuple[str, Callable[[plt.Axes], object]]] = [
        ("nodes_used", lambda ax: plot_nodes_used(timeseries, ax, failures=failures))
    ]
    for r in resources:
        figures.append((f"stranded_{r}", lambda ax, r=r: plot_stranded_over_time(timeseries, r, ax, failures=failures)))
    figures += [
        (f"utilisation_{r}", lambda ax, r=r: plot_utilisation(timeseries, r, ax, failures=failures)) for r in resources
    ]
    figures.append(("wait_cdf", lambda ax: plot_wait_cdf(tasks, ax)))
    figures.append(("queue", lambda ax: plot_queue(timeseries, ax, failures=failures)))
    return figures


def write_all(results: Results, out: Path) -> list[Path]:
    """Write the standard figures (``standard_figures``) as PNG files; returns their paths."""
    paths = []
    for stem, draw in standard_figures(results):
        # A bare Figure, not pyplot: no backend, no display, nothing left open, and the
        # caller's (a notebook's) backend is left alone.
        fig = Figure(figsize=FIGSIZE, layout="constrained")
        draw(fig.add_subplot())
        path = out / f"{stem}.png"
        fig.savefig(path, dpi=100)
        paths.append(path)
    return paths
