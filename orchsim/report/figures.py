"""The report's figures: which are drawn, with what captions, as inline PNG data URIs."""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchsim import plots

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

    from orchsim.run import Results

__all__ = ["DPI", "FIGSIZE", "Figure", "figure_slugs", "figures", "png_data_uri"]

DPI = 90
FIGSIZE = plots.FIGSIZE  # 8 x 4 inches: 720 x 360 px at DPI


@dataclass(frozen=True)
class Figure:
    """One figure of a scenario's section: its anchor slug, title, caption, alt text and how to draw it."""

    slug: str
    title: str
    caption: str
    alt: str
    draw: Callable[[plt.Axes], object]


def png_data_uri(draw: Callable[[plt.Axes], object]) -> tuple[str, int, int]:
    """Draw on a fresh Agg figure; returns the PNG as a data URI, and its pixel size."""
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    with warnings.catch_warnings():
        # An empty figure (e.g. no task ever started) is shown empty, not warned about.
        warnings.filterwarnings("ignore", message="No artists with labels found")
        draw(ax)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    width, height = (round(v) for v in fig.get_size_inches() * DPI)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), width, height


def figures(results: Results) -> list[Figure]:
    """The figures of one run, in page order: utilisation per resource, wait CDF, queue, nodes used."""
    name = results.scenario.name
    lines = f"one line per policy ({', '.join(results.scenario.policies)})"
    timeseries, tasks = results.timeseries, results.tasks
    figures = [
        Figure(
            f"utilisation_{resource}",
            f"{resource} utilisation",
            f"allocated {resource} as a share of the live nodes' capacity (%) against simulated time (s)",
            f"{name}: {resource} utilisation (% of live capacity) over simulated time (s), {lines}",
            lambda ax, r=resource: plots.plot_utilisation(timeseries, r, ax),
        )
        for resource in results.workload.resources
    ]
    figures += [
        Figure(
            "wait_cdf",
            "wait-time CDF",
            "share of the started tasks that waited at most x seconds in the queue",
            f"{name}: cumulative share of started tasks against wait before start (s), {lines}",
            lambda ax: plots.plot_wait_cdf(tasks, ax),
        ),
        Figure(
            "queue",
            "queue length",
            "tasks waiting in the queue against simulated time (s)",
            f"{name}: queued tasks over simulated time (s), {lines}",
            lambda ax: plots.plot_queue(timeseries, ax),
        ),
        Figure(
            "nodes_used",
            "nodes in use",
            "nodes running at least one task against simulated time (s); dotted: nodes up, where that changes",
            f"{name}: nodes running at least one task over simulated time (s), {lines}",
            lambda ax: plots.plot_nodes_used(timeseries, ax),
        ),
    ]
    return figures


def figure_slugs(results: Results) -> list[str]:
    """The figures the page shows for ``results``, in order (``utilisation_<resource>``, ...)."""
    return [figure.slug for figure in figures(results)]
