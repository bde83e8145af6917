"""The command line's figures, checked on the matplotlib objects (what a reader of the PNG sees).

Issue 18: on burst.yaml every CLI plot had the policies on top of each other, while the two
things that separate them (nodes in use, stranded capacity) were not drawn;
``utilisation_gpu.png`` was a flat 0 although no task asks for a GPU; the wait CDF's
linear axis hid the tail, and tasks that never started were left out of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from orchsim import plots, run
from orchsim.report.figures import figures
from orchsim.run import Results
from orchsim.scenario import parse_scenario

from .conftest import SCENARIOS

# 4 nodes with GPUs nobody asks for. 24 tasks of a whole node's cpu that never end, so 20
# of them never start; a short Poisson stream waits behind them; one node fails at t=30.
LUMPY: dict[str, Any] = {
    "version": 1,
    "name": "lumpy",
    "seed": 4,
    "policies": ["bin_packing", "spread"],
    "cluster": {
        "heartbeat_interval": 1,
        "failure_timeout": 3,
        "nodes": [{"count": 4, "capacity": {"cpu": 4000, "memory": 8192, "gpu": 2000}}],
    },
    "workload": [
        {"kind": "poisson", "rate": 1.0, "count": 40, "resources": {"cpu": 500, "memory": 256}, "duration": 5},
        {
            "kind": "burst",
            "at": 20,
            "count": 24,
            "resources": {"cpu": 4000, "memory": 256},
            "duration": {"dist": "constant", "value": float("inf")},
        },
    ],
    "events": [{"at": 30, "kind": "node_failure", "count": 1}],
}


@pytest.fixture(scope="module")
def burst() -> Results:
    return run(SCENARIOS / "burst.yaml")


@pytest.fixture(scope="module")
def lumpy() -> Results:
    return run(parse_scenario(LUMPY))


def drawn(results: Results) -> dict[str, Axes]:
    """Every standard figure drawn on a bare Figure, by file stem."""
    axes = {}
    for stem, draw in plots.standard_figures(results):
        ax = Figure(figsize=plots.FIGSIZE, layout="constrained").add_subplot()
        draw(ax)
        axes[stem] = ax
    return axes


def policy_lines(ax: Axes) -> dict[str, Any]:
    """The policies' curves by label (the label up to its first space), without failure marks."""
    return {
        line.get_label().split(" ")[0]: line
        for line in ax.get_lines()
        if not line.get_label().startswith("_") and line.get_gid() != "node failure"
    }


def step_mean(line: Any) -> float:
    """Time-weighted mean of a step (where="post") curve."""
    x, y = (np.asarray(v, dtype=float) for v in line.get_data())
    return float(np.sum(np.diff(x) * y[:-1]) / (x[-1] - x[0]))


def test_burst_figures_separate_the_policies(burst: Results) -> None:
    axes = drawn(burst)
    # No task of burst.yaml asks for a GPU: no flat-0 GPU figures.
    assert list(axes) == [
        "nodes_used",
        "stranded_cpu",
        "stranded_memory",
        "utilisation_cpu",
        "utilisation_memory",
        "wait_cdf",
        "queue",
    ]
    for stem in ("nodes_used", "stranded_cpu"):
        lines = policy_lines(axes[stem])
        assert list(lines) == ["bin_packing", "spread", "round_robin"], stem
        packed, spread = step_mean(lines["bin_packing"]), step_mean(lines["spread"])
        assert packed < 0.8 * spread, (stem, packed, spread)
    # Mean nodes in use, read off the plotted curve, is the one the samples give.
    series = burst.timeseries[burst.timeseries.policy == "spread"]
    _, y = policy_lines(axes["nodes_used"])["spread"].get_data()
    np.testing.assert_allclose(y, series.nodes_used)
    assert axes["nodes_used"].get_ylabel() == "nodes in use (count)"
    assert axes["stranded_cpu"].get_ylabel() == "free cpu on busy nodes (% of live)"


def test_wait_cdf_is_symlog_with_the_tail_in_view(burst: Results) -> None:
    ax = drawn(burst)["wait_cdf"]
    assert ax.get_xscale() == "symlog"
    lines = policy_lines(ax)
    longest = burst.tasks.wait.max()
    assert ax.get_xlim()[0] < 0 < longest < ax.get_xlim()[1]  # zero waits off the spine, the tail inside
    for policy, line in lines.items():
        x, y = line.get_data()
        assert y[-1] == pytest.approx(1.0)  # every task of burst.yaml started
        waits = burst.tasks.loc[burst.tasks.policy == policy, "wait"]
        # the curve at x: the share of tasks that waited at most x
        at = np.searchsorted(x, 60.0, side="right") - 1
        assert y[at] == pytest.approx((waits <= 60.0).mean(), abs=1e-9)
    assert "never started" not in ax.get_title()


def test_never_started_tasks_are_censored_mass_at_the_right(lumpy: Results) -> None:
    axes = drawn(lumpy)
    ax = axes["wait_cdf"]
    assert ax.get_xscale() == "symlog"
    tasks = lumpy.tasks
    longest = tasks.loc[tasks.start_time.notna(), "wait"].max()
    bars = [line for line in ax.get_lines() if line.get_label().startswith("_") and line.get_linewidth() >= 4]
    assert len(bars) == 2  # one per policy
    for (policy, line), bar in zip(policy_lines(ax).items(), bars, strict=True):
        never = tasks.loc[tasks.policy == policy, "start_time"].isna().mean()
        assert never >= 20 / 64
        x, _ = line.get_data()
        bar_x, bar_y = bar.get_data()
        assert bar_x[0] == bar_x[1] == x[-1] > longest  # at the right, past every observed wait
        assert bar_y[0] == pytest.approx(1 - never) and bar_y[1] == 1.0  # the mass of the never-started
        assert bar.get_color() == line.get_color()
        assert f"{policy} ({100 * never:.0f}% never started)" == line.get_label()
    assert ax.patches, "the grey band behind the never-started bars"
    assert "never started" in ax.get_title()


def test_unrequested_resources_are_skipped_and_failures_marked(lumpy: Results) -> None:
    axes = drawn(lumpy)
    assert "utilisation_gpu" not in axes and "stranded_gpu" not in axes
    assert {"utilisation_cpu", "utilisation_memory", "stranded_cpu", "nodes_used", "queue"} <= set(axes)
    failed_at = sorted(set(lumpy.failures.failed_at))
    assert failed_at == [30.0]
    for stem in ("nodes_used", "queue", "utilisation_cpu", "stranded_memory"):
        marks = [line for line in axes[stem].get_lines() if line.get_gid() == "node failure"]
        assert [line.get_xdata()[0] for line in marks] == failed_at, stem
        assert "node failure" in axes[stem].get_legend_handles_labels()[1]
    assert not [line for line in axes["wait_cdf"].get_lines() if line.get_gid() == "node failure"]


def test_the_report_draws_the_same_figures_with_captions(lumpy: Results) -> None:
    page = figures(lumpy)
    assert [f.slug for f in page] == [stem for stem, _ in plots.standard_figures(lumpy)]
    assert all("(s)" in f.alt and f.caption for f in page)
    stranded = next(f for f in page if f.slug == "stranded_cpu")
    assert stranded.title == "stranded cpu" and "free cpu on nodes that run" in stranded.caption


def test_the_command_line_writes_them(lumpy: Results, tmp_path: Path) -> None:
    written = plots.write_all(lumpy, tmp_path)
    names = sorted(p.name for p in written)
    assert names == sorted(f"{stem}.png" for stem, _ in plots.standard_figures(lumpy))
    assert "utilisation_gpu.png" not in names
    for path in written:
        png = path.read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (800, 400)
