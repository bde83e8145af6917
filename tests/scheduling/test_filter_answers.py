"""A filter's answer is checked: a bool array with one value per node, else a ``FilterError`` naming it.

An audit's filters returning ``(nodes.tasks < 2).astype(int)``, ``np.ones(N)``, a list or an
array of another length raised numpy's errors (``bad operand type for unary ~: 'list'``) or
were broadcast to every node, none naming the filter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from orchsim.scheduling import FILTERS, FilterError, NodeMatrix, PolicyError, PreparedPolicy, decide


def _decide_with(answer: Any) -> None:
    def odd(nodes, request, task):  # type: ignore[no-untyped-def]
        if isinstance(answer, Exception):
            raise answer
        return answer(nodes) if callable(answer) else answer

    FILTERS.register("odd_answer_probe", odd)
    try:
        nodes = NodeMatrix.from_capacities({"cpu": [1000.0, 1000.0, 1000.0]})
        prepared = PreparedPolicy("first_fit", filters=FILTERS.active({"odd_answer_probe": {}}))
        decide(nodes, nodes.request_vector({"cpu": 1}), prepared)
    finally:
        FILTERS.unregister("odd_answer_probe")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda nodes: (nodes.tasks < 2).astype(int), "returned int64 array of shape (3,)"),
        (lambda nodes: np.ones(nodes.n_nodes), "returned float64 array of shape (3,)"),
        ([True, True, True], "returned list"),
        (np.array([True]), "returned bool array of shape (1,)"),
        (KeyError("zone"), "raised KeyError: 'zone'"),
    ],
)
def test_a_malformed_answer_is_named(answer: Any, message: str) -> None:
    with pytest.raises(
        FilterError, match=f"filter 'odd_answer_probe' {message}".replace("(", r"\(").replace(")", r"\)")
    ):
        _decide_with(answer)


def test_a_filter_error_is_a_policy_error_the_command_lines_print_on_one_line() -> None:
    assert issubclass(FilterError, PolicyError)
    _decide_with(lambda nodes: np.ones(nodes.n_nodes, dtype=bool))  # a good answer passes
