"""A new kind of cluster event is one schema class and one handler, and nothing else.

The test defines a ``cordon`` event (``kubectl cordon``: nodes stop taking new tasks,
running ones carry on), registers its handler, and runs a scenario that uses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import pytest
from pydantic import Field

from orchsim import run
from orchsim.engine.node_events import HANDLERS, handles
from orchsim.scenario import ClusterEvent, ScenarioError, parse_scenario


@pytest.fixture
def cordon_kind() -> Iterator[type[ClusterEvent]]:
    class Cordon(ClusterEvent):
        """Nodes whose index is in ``nodes`` take no new tasks from ``at`` on."""

        kind: Literal["cordon"]
        nodes: list[int] = Field(min_length=1)

    @handles(Cordon)
    def cordon(sim, event: Cordon) -> None:  # type: ignore[no-untyped-def]
        for node in event.nodes:
            sim.nodes.set_schedulable(node, False)

    yield Cordon
    del ClusterEvent.KINDS["cordon"], HANDLERS[Cordon]


def scenario(events: list[dict[str, object]]) -> dict[str, object]:
    return {
        "version": 1,
        "name": "cordon",
        "policies": ["spread"],
        "cluster": {"nodes": [{"count": 3, "capacity": {"cpu": 4000, "memory": 4096}}]},
        "workload": [
            {"kind": "burst", "at": 10, "count": 6, "resources": {"cpu": 500, "memory": 256}, "duration": 5},
        ],
        "events": events,
    }


def test_a_new_event_kind_runs_in_a_scenario(cordon_kind: type[ClusterEvent]) -> None:
    results = run(parse_scenario(scenario([{"kind": "cordon", "at": 0, "nodes": [0, 2]}])))
    tasks = results.tasks
    assert (tasks.status == "completed").all()
    assert set(tasks.node) == {"g0-1"}  # spread would have used all three
    plain = run(parse_scenario(scenario([])))
    assert set(plain.tasks.node) == {"g0-0", "g0-1", "g0-2"}


def test_a_new_event_kind_is_validated_like_the_built_in_ones(cordon_kind: type[ClusterEvent]) -> None:
    with pytest.raises(ScenarioError, match=r"events\.0\.nodes: List should have at least 1 item"):
        parse_scenario(scenario([{"kind": "cordon", "at": 0, "nodes": []}]))
    with pytest.raises(ScenarioError, match=r"events\.0\.colour: unknown field"):
        parse_scenario(scenario([{"kind": "cordon", "at": 0, "nodes": [1], "colour": "red"}]))


def test_unknown_or_missing_kinds_name_the_valid_ones() -> None:
    valid = "node_drain, node_failure, node_join"
    with pytest.raises(ScenarioError, match=rf"events\.0: unknown event kind 'cordon'; valid kinds: {valid}"):
        parse_scenario(scenario([{"kind": "cordon", "at": 0, "nodes": [1]}]))
    with pytest.raises(ScenarioError, match=r"events\.0: an event needs a kind, one of: node_drain, node_failure"):
        parse_scenario(scenario([{"at": 0}]))
