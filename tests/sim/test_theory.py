"""The engine against queueing theory: Erlang C for M/M/c, and Little's law on every run."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from orchsim.api import run
from orchsim.scheduling import POLICIES

from .conftest import mmc_scenario


def erlang_c_wait(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Mean queueing delay W_q of M/M/c (Erlang C formula)."""
    a = arrival_rate / service_rate
    rho = a / servers
    assert rho < 1
    top = a**servers / math.factorial(servers) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(servers)) + top)
    return p_wait / (servers * service_rate - arrival_rate)


def test_erlang_c_reference_value() -> None:
    # c=2, lambda=1, mu=1: a=1, rho=1/2; C = (1/2 / (1/2)) / (1 + 1 + 1) = 1/3; W_q = (1/3) / (2 - 1) = 1/3.
    assert erlang_c_wait(2, 1.0, 1.0) == pytest.approx(1 / 3)


SERVERS, RATE, MEAN_SERVICE = 4, 3.0, 1.0  # rho = 0.75; Erlang C W_q = 0.5094...
REPLICATIONS, TASKS = 20, 3000


@pytest.fixture(scope="module")
def replication_waits() -> dict[str, np.ndarray]:
    """Mean wait of each replication, per policy (identical tasks across policies per seed)."""
    policies = sorted(POLICIES)
    waits: dict[str, list[float]] = {p: [] for p in policies}
    for seed in range(REPLICATIONS):
        scenario = mmc_scenario(
            servers=SERVERS, rate=RATE, mean_service=MEAN_SERVICE, count=TASKS, seed=seed, policies=policies
        )
        summary = run(scenario).summary.set_index("policy")
        for p in policies:
            waits[p].append(float(summary.loc[p, "mean_wait"]))
    return {p: np.asarray(v) for p, v in waits.items()}


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_mean_wait_matches_erlang_c(policy: str, replication_waits: dict[str, np.ndarray]) -> None:
    expected = erlang_c_wait(SERVERS, RATE, 1 / MEAN_SERVICE)
    means = replication_waits[policy]
    centre = means.mean()
    half_width = stats.t.ppf(0.995, len(means) - 1) * means.std(ddof=1) / math.sqrt(len(means))
    assert abs(centre - expected) <= half_width, (
        f"{policy}: mean wait {centre:.4f} +- {half_width:.4f} (99% CI) excludes Erlang C {expected:.4f}"
    )


def test_whole_node_tasks_wait_the_same_under_every_policy(replication_waits: dict[str, np.ndarray]) -> None:
    # With whole-node tasks on identical nodes every free node is equivalent, so FIFO waits
    # cannot depend on the policy: a sharp check that no policy idles a free node.
    reference = replication_waits["bin_packing"]
    for policy, means in replication_waits.items():
        np.testing.assert_allclose(means, reference, rtol=1e-12, err_msg=policy)


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
