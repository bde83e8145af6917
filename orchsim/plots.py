"""Figures: one per metric, every policy on it, labelled axes with units."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed or assumed
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from orchsim.api import Results

__all__ = ["plot_queue", "plot_utilisation", "plot_wait_cdf", "write_all"]


def plot_utilisation(timeseries: pd.DataFrame, resource: str = "cpu", ax: plt.Axes | None = None) -> plt.Axes:
    """Allocated share of live capacity over time, per policy."""
    ax = ax or plt.subplots(figsize=(8, 4))[1]
    for policy, rows in timeseries.groupby("policy", sort=False):
        ax.step(rows["time"], 100 * rows[f"util_{resource}"], where="post", label=str(policy))
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel(f"{resource} allocated (% of live capacity)")
    ax.set_title(f"{resource} utilisation over time")
    ax.legend()
    return ax


def plot_wait_cdf(tasks: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Empirical CDF of queue wait, per policy, over tasks that started."""
    ax = ax or plt.subplots(figsize=(8, 4))[1]
    for policy, rows in tasks.groupby("policy", sort=False):
        waits = np.sort(rows.loc[rows["start_time"].notna(), "wait"].to_numpy())
        if len(waits):
            ax.step(waits, np.arange(1, len(waits) + 1) / len(waits), where="post", label=str(policy))
    ax.set_xlabel("wait before start (s)")
    ax.set_ylabel("share of tasks")
    ax.set_title("wait-time CDF")
    ax.legend()
    return ax


def plot_queue(timeseries: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Tasks waiting in the queue over time, per policy."""
    ax = ax or plt.subplots(figsize=(8, 4))[1]
    for policy, rows in timeseries.groupby("policy", sort=False):
        ax.step(rows["time"], rows["queue"], where="post", label=str(policy))
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("queued tasks")
    ax.set_title("queue length over time")
    ax.legend()
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
        fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
        draw(ax)
        path = out / name
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths
