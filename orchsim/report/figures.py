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


def _texts(slug: str, name: str, lines: str, censored: bool) -> tuple[str, str, str]:
    """A figure's title, caption and alt text, from its slug (``stranded_gpu``, ``wait_cdf``, ...).

    ``censored``: some task never started, and the wait CDF shows them at its right edge.
    """
    kind, _, resource = slug.partition("_")
    failures = "; dashed: node failures"
    if kind == "utilisation":
        return (
            f"{resource} utilisation",
            f"allocated {resource} as a share of the live nodes' capacity (%) against simulated time (s){failures}",
            f"{name}: {resource} utilisation (% of live capacity) over simulated time (s), {lines}",
        )
    if kind == "stranded":
        return (
            f"stranded {resource}",
            f"free {resource} on nodes that run at least one task, as a share of live capacity (%), against "
            f"simulated time (s): what packing leaves whole{failures}",
            f"{name}: free {resource} on busy nodes (% of live capacity) over simulated time (s), {lines}",
        )
    texts = {
        "nodes_used": (
            "nodes in use",
            "nodes running at least one task against simulated time (s); dotted: nodes up, where that changes"
            + failures,
            f"{name}: nodes running at least one task over simulated time (s), {lines}",
        ),
        "wait_cdf": (
            "wait-time CDF",
            "share of all tasks that waited at most x seconds (symlog axis: linear below 1 s)"
            + (
                "; tasks that never started stand as bars in the grey band at the right, their share in the legend"
                if censored
                else ""
            ),
            f"{name}: cumulative share of tasks against wait before start (s)"
            + (", never-started tasks at the right, " if censored else ", ")
            + lines,
        ),
        "queue": (
            "queue length",
            f"tasks waiting in the queue against simulated time (s){failures}",
            f"{name}: queued tasks over simulated time (s), {lines}",
        ),
    }
    return texts[slug]


def figures(results: Results) -> list[Figure]:
    """The figures of one run, in page order: ``plots.standard_figures``, with captions and alt texts.

    The same figures as the command line's PNG files: nodes in use, then stranded capacity
    and utilisation of each resource some task requests, the wait CDF and the queue.
    """
    name = results.scenario.name
    lines = f"one line per policy ({', '.join(results.scenario.policies)})"
    censored = bool(results.tasks["start_time"].isna().any())
    drawn = plots.standard_figures(results)
    return [Figure(slug, *_texts(slug, name, lines, censored), draw) for slug, draw in drawn]


def figure_slugs(results: Results) -> list[str]:
    """The figures the page shows for ``results``, in order (``utilisation_<resource>``, ...)."""
    return [figure.slug for figure in figures(results)]
