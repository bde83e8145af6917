"""The sampling trade-off table and its figure (issue 14), on a cluster small enough to check by hand.

Eight nodes of 4000 millicores: nodes 0-3 hold 3000, nodes 4-7 are empty. Four tasks of 1000
each: scoring every node, bin packing fills nodes 0-3 to the brim (4 nodes used, nothing
left free on them); scoring 2 candidates from a random start may open an empty node.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from orchsim.plots import plot_sampling_tradeoff
from orchsim.sampling_tradeoff import label, sampling_tradeoff
from orchsim.scheduling import NodeMatrix


def half_full() -> NodeMatrix:
    nodes = NodeMatrix.from_capacities({"cpu": [4000.0] * 8, "memory": [8192.0] * 8})
    for node in range(4):
        nodes.allocate(node, {"cpu": 3000.0, "memory": 1024.0})
    return nodes


def test_scoring_every_node_packs_the_used_nodes_to_the_brim() -> None:
    nodes = half_full()
    requests = np.tile([1000.0, 1024.0], (4, 1))
    table = sampling_tradeoff(nodes, requests, ["all", {"candidates": 2}])
    every = table.set_index("sample").loc["all"]
    assert (every["share"], every["nodes_used"], every["unplaced"]) == (1.0, 4, 0)
    # Free cpu on busy nodes: 0 of 32000; memory 4 x (8192 - 2048) of 65536 -> mean (0 + 0.375) / 2.
    assert every["stranded_share"] == pytest.approx(0.1875)
    sampled = table.set_index("sample").loc["2 nodes"]
    assert sampled["share"] == pytest.approx(2 / 8)
    assert sampled["nodes_used"] >= 4  # never better than scoring every node
    assert (table["decision_us"] > 0).all()
    assert nodes.allocated[0].tolist() == [3000.0] * 4 + [0.0] * 4  # the start state is left alone


def test_too_big_tasks_count_as_unplaced() -> None:
    table = sampling_tradeoff(half_full(), np.array([[5000.0, 0.0]]), ["all"])
    assert table["unplaced"].tolist() == [1]


LABELS = [
    ("all", "all"),
    (None, "all"),
    ("log2", "log2"),
    ({"candidates": 50}, "50 nodes"),
    ({"percentage": 5}, "5%"),
    ({"percentage": "adaptive"}, "kube adaptive"),
]


@pytest.mark.parametrize(("sample", "text"), LABELS)
def test_labels(sample: object, text: str) -> None:
    assert label(sample) == text  # type: ignore[arg-type]


def test_the_figure_has_four_panels_on_a_log_share_axis() -> None:
    table = sampling_tradeoff(half_full(), np.tile([1000.0, 1024.0], (4, 1)), ["all", {"candidates": 2}])
    fig = plot_sampling_tradeoff(table, Figure())
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["decision time", "nodes used", "stranded capacity", "unplaced tasks"]
    assert all(ax.get_xscale() == "log" for ax in fig.axes)
    x, y = fig.axes[1].get_lines()[0].get_data()
    assert list(x) == [25.0, 100.0]  # shares in %, sorted
    assert y[-1] == 4
