"""Sample-path identities, and what the 'Erlang C for every policy' check really covers.

The comparisons with queueing formulas (Erlang C, Pollaczek-Khinchine) over 20
replications live in ``test_queueing_theory.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from orchsim import run
from orchsim.scheduling import POLICIES

from .conftest import mmc_scenario

REFERENCE = "first_fit"  # the policy test_queueing_theory.py runs


@pytest.fixture(scope="module")
def waits_by_policy() -> dict[str, pd.DataFrame]:
    """Per-task waits of M/M/4 at rho 0.9 under every registered policy, for two seeds."""
    policies = sorted(POLICIES)
    frames = []
    for seed in (0, 1):
        scenario = mmc_scenario(servers=4, rate=3.6, mean_service=1.0, count=500, seed=seed, policies=policies)
        tasks = run(scenario).tasks
        frames.append(tasks.assign(seed=seed)[["policy", "seed", "task_id", "wait", "start_time", "node"]])
    return {p: frame.sort_values(["seed", "task_id"]) for p, frame in pd.concat(frames).groupby("policy")}


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_every_policy_gives_the_same_waits_on_whole_node_tasks(
    policy: str, waits_by_policy: dict[str, pd.DataFrame]
) -> None:
    """The README's "Erlang C for every policy" is one check repeated, not a per-policy validation.

    In the M/M/c model every task asks for a whole node and the nodes are identical, so
    whenever a task can start, every free node is equivalent and the policy's choice
    cannot change any wait: all policies produce the same waits to the bit. This test
    asserts exactly that (a policy that idled a free node, or placed a task on a busy one,
    would fail it). The Erlang C checks in ``test_queueing_theory.py`` run once, with
    ``first_fit``; by this identity their verdict is every policy's, but they say
    nothing about how the policies differ: that needs tasks smaller than a node.
    """
    reference = waits_by_policy[REFERENCE]
    mine = waits_by_policy[policy]
    np.testing.assert_array_equal(mine.wait.to_numpy(), reference.wait.to_numpy(), err_msg=policy)
    np.testing.assert_array_equal(mine.start_time.to_numpy(), reference.start_time.to_numpy(), err_msg=policy)


def test_only_random_and_round_robin_place_whole_node_tasks_differently(
    waits_by_policy: dict[str, pd.DataFrame],
) -> None:
    # Every free node is empty, so every scoring policy scores them all the same and the
    # tie-break (lowest index) picks the node: 13 of the 15 policies make the very same
    # placements as first_fit. random and round_robin do place differently, and their
    # waits still agree (the test above), so the identity is not vacuous.
    reference = tuple(waits_by_policy[REFERENCE].node)
    differ = sorted(p for p, frame in waits_by_policy.items() if tuple(frame.node) != reference)
    assert differ == ["random", "round_robin"]


def test_littles_law_holds_on_mmc() -> None:
    scenario = mmc_scenario(servers=3, rate=2.0, mean_service=1.0, count=3000, seed=5, policies=["spread"])
    results = run(scenario)
    record = results.records[0]
    horizon = record.horizon
    arrivals_per_second = len(results.workload) / horizon
    # L_q = lambda * W_q over the sample path (exact when the system starts and ends empty).
    mean_queue = record.integrals["queue"] / horizon
    mean_wait = record.wait.mean()
    assert mean_queue == pytest.approx(arrivals_per_second * mean_wait, rel=1e-9)
    # L = lambda * W for tasks in service too.
    mean_running = record.integrals["running"] / horizon
    mean_service = np.nanmean(record.end_time - record.start_time)
    assert mean_running == pytest.approx(arrivals_per_second * mean_service, rel=1e-9)
