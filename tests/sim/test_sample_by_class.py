"""A time-series sample taken from the state classes has the bits of the pass over every node.

``cluster_sample`` sums count x column over the matrix's state classes when it keeps
them (``engine/sampling._sample_by_class``); with whole-unit amounts every partial sum is
an exact integer, so the result must equal the plain sample exactly, not approximately.
A fractional amount sends the sample back to the plain pass (and still equal).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from orchsim.engine.sampling import _sample_by_class, cluster_sample
from orchsim.scheduling import NodeMatrix, PreparedPolicy
from orchsim.scheduling.state_classes import keep_state_classes

KINDS = [(1000.0, 2000.0), (2000.0, 1000.0), (4096.0, 4096.0), (0.0, 1000.0)]
WHOLE = [np.array([500.0, 256.0]), np.array([1000.0, 1000.0]), np.array([250.0, 2048.0]), np.array([0.0, 0.0])]
FRACTIONAL = np.array([0.5, 256.25])


def _pair(kinds: list[int]) -> tuple[NodeMatrix, NodeMatrix]:
    capacities = {"cpu": [KINDS[k][0] for k in kinds], "memory": [KINDS[k][1] for k in kinds]}
    return NodeMatrix.from_capacities(capacities), NodeMatrix.from_capacities(capacities)


@settings(max_examples=80, deadline=None)
@given(
    kinds=st.lists(st.integers(0, 3), min_size=1, max_size=12),
    steps=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 60)), max_size=60),
    typical=st.sampled_from([WHOLE[0], WHOLE[1], np.array([0.0, 0.0]), np.array([300.0, 0.0])]),
    fractional=st.booleans(),
)
def test_a_sample_by_class_equals_the_sample_over_every_node(
    kinds: list[int], steps: list, typical: np.ndarray, fractional: bool
) -> None:
    classed, plain = _pair(kinds)
    keep_state_classes(classed, PreparedPolicy("bin_packing"))
    cap_total = plain.capacity.sum(axis=1)
    running: list[tuple[int, np.ndarray]] = []
    for kind, shape, pick in steps:
        request = FRACTIONAL if fractional and shape == 3 else WHOLE[shape]
        if kind <= 1:
            node = pick % plain.n_nodes
            if (plain.free[:, node] >= request).all():
                for nodes in (classed, plain):
                    nodes.allocate_unchecked(node, request.tolist())
                running.append((node, request))
        elif kind == 2 and running:
            node, done = running.pop(pick % len(running))
            for nodes in (classed, plain):
                nodes.release_unchecked(node, done.tolist())
        elif kind == 3:
            node = pick % plain.n_nodes
            for nodes in (classed, plain):
                nodes.set_schedulable(node, not bool(nodes.schedulable[node]))
        if classed.state_classes is None:
            return  # past MAX_CLASSES: the classes turned themselves off, nothing left to compare
        assert cluster_sample(classed, set(), cap_total, typical) == cluster_sample(plain, set(), cap_total, typical)
        whole = all(float(v).is_integer() for v in np.concatenate((classed.allocated.ravel(), classed.free.ravel())))
        assert (_sample_by_class(classed, cap_total, typical) is not None) == whole


def test_the_sample_by_class_is_taken_when_the_classes_are_kept() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [1000.0] * 6, "memory": [1000.0] * 6})
    keep_state_classes(nodes, PreparedPolicy("bin_packing"))
    for node in (0, 2, 3):
        nodes.allocate_unchecked(node, [1000.0, 600.0])
    typical = np.array([1000.0, 500.0])
    sample = _sample_by_class(nodes, nodes.capacity.sum(axis=1), typical)
    assert sample == {
        "max_tasks_per_node": 1,
        "util_cpu": 0.5,
        "stranded_cpu": 0.0,
        "util_memory": 0.3,
        "stranded_memory": 1200.0 / 6000.0,
        "fragmentation": (0.0 / 3000.0 + 1200.0 / 4200.0) / 2,
    }
