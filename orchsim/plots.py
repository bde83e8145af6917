"""Figures: one per metric, every policy on it, labelled axes with units.

Each ``plot_*`` draws on the ``ax`` it is given (or a new pyplot figure, for notebooks);
``write_all`` renders onto bare ``Figure`` objects, so it needs no display and does not
change the matplotlib backend of whoever imported it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from orchsim.run import Results

__all__ = [
    "plot_failure_cost",
    "plot_load_curve",
    "plot_nodes_used",
    "plot_queue",
    "plot_stranded",
    "plot_utilisation",
    "plot_wait_cdf",
    "keep_overlaps_visible",
    "write_all",
]

FIGSIZE = (8.0, 4.0)  # inches


def keep_overlaps_visible(ax: plt.Axes) -> None:
    """Policies often coincide: draw earlier policies wider so every line stays visible."""
    lines = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    if len(lines) < 2:
        return
    for i, line in enumerate(lines):
        line.set_linewidth(1.2 + 2.0 * (len(lines) - 1 - i) / (len(lines) - 1))
    if ax.get_legend() is not None:
        ax.legend()


def plot_utilisation(timeseries: pd.DataFrame, resource: str = "cpu", ax: plt.Axes | None = None) -> plt.Axes:
    """Allocated share of live capacity over time, per policy."""
    ax = ax or plt.subplots(figsize=FIGSIZE)[1]
    for policy, rows in timeseries.groupby("policy", sort=False):
        ax.step(rows["time"], 100 * rows[f"util_{resource}"], where="post", label=str(policy))
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel(f"{resource} allocated (% of live capacity)")
    ax.set_title(f"{resource} utilisation over time")
    ax.legend()
    keep_overlaps_visible(ax)
    return ax


def plot_wait_cdf(tasks: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Empirical CDF of queue wait, per policy, over tasks that started."""
    ax = ax or plt.subplots(figsize=FIGSIZE)[1]
    for policy, rows in tasks.groupby("policy", sort=False):
        waits = np.sort(rows.loc[rows["start_time"].notna(), "wait"].to_numpy())
        if len(waits):
            ax.step(waits, np.arange(1, len(waits) + 1) / len(waits), where="post", label=str(policy))
    ax.set_xlabel("wait before start (s)")
    ax.set_ylabel("share of tasks")
    ax.set_title("wait-time CDF")
    ax.legend()
    keep_overlaps_visible(ax)
    return ax


def plot_queue(timeseries: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Tasks waiting in the queue over time, per policy."""
    ax = ax or plt.subplots(figsize=FIGSIZE)[1]
    for policy, rows in timeseries.groupby("policy", sort=False):
        ax.step(rows["time"], rows["queue"], where="post", label=str(policy))
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("queued tasks")
    ax.set_title("queue length over time")
    ax.legend()
    keep_overlaps_visible(ax)
    return ax


def plot_nodes_used(timeseries: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Nodes running at least one task over time, per policy (dotted: nodes up, when it changes)."""
    ax = ax or plt.subplots(figsize=FIGSIZE)[1]
    for policy, rows in timeseries.groupby("policy", sort=False):
        (line,) = ax.step(rows["time"], rows["nodes_used"], where="post", label=str(policy))
        if "nodes_up" in rows and rows["nodes_up"].nunique() > 1:
            ax.step(rows["time"], rows["nodes_up"], where="post", linestyle=":", linewidth=1, color=line.get_color())
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("nodes in use (count)")
    ax.set_title("nodes in use over time")
    ax.set_ylim(bottom=0)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    keep_overlaps_visible(ax)
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


def write_all(results: Results, out: Path) -> list[Path]:
    """Write the standard figures as PNG files; returns their paths."""
    figures = [("wait_cdf.png", lambda ax: plot_wait_cdf(results.tasks, ax))]
    figures.append(("queue.png", lambda ax: plot_queue(results.timeseries, ax)))
    for resource in results.workload.resources:
        figures.append(
            (f"utilisation_{resource}.png", lambda ax, r=resource: plot_utilisation(results.timeseries, r, ax))
        )
    paths = []
    for name, draw in figures:
        # A bare Figure, not pyplot: no backend, no display, nothing left open, and the
        # caller's (a notebook's) backend is left alone.
        fig = Figure(figsize=FIGSIZE, layout="constrained")
        draw(fig.add_subplot())
        path = out / name
        fig.savefig(path, dpi=100)
        paths.append(path)
    return paths
