"""The engine against queueing theory, measured over a window that leaves out the empty start.

A single queue is built as a cluster: ``c`` identical nodes and tasks that each ask for a
whole node, so a node is a server and FIFO placement is the M/M/c (or M/G/1) discipline.
Each system runs 20 replications (seeds 0..19) with ``metrics.warmup`` (the empty start
is dropped) and ``metrics.until`` before the last arrival (the drain at the end, when
arrivals have stopped and servers empty, is dropped too). A replication gives one
estimate per summary column (``mean_wait``, ``prob_wait``, ``mean_util_cpu``); the check
is that the 95% Student-t interval over the 20 contains the formula's value (Erlang C
for M/M/c, Pollaczek-Khinchine for M/D/1 and M/G/1).

Two exact checks sit under the statistical ones: every start time equals the FIFO
multi-server recursion on the run's own arrivals and durations, and every windowed
summary column equals its recomputation from the task rows. What the intervals then
test is the sampled input and the choice of window.

The seeds are fixed, so each check is deterministic. At 95% a correct simulator still
misses about one check in twenty (a little more for mean waits, whose per-run values are
skewed: simulated coverage 0.88 to 0.95), so a miss is investigated (unusual input
sample, or a bias that longer runs confirm?), never tuned away by changing seeds or lengths.

Lengths keep the file fast (about 270,000 simulated tasks in all): the warm-ups come from
the exact transient of M/M/c started empty (``test_warmup_leaves_a_negligible_bias``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from orchsim import run
from orchsim.scenario import Scenario, parse_scenario
from orchsim.workload import draw

from .queueing import (
    Interval,
    erlang_b,
    erlang_c,
    fifo_start_times,
    lognormal_second_moment,
    mmc_mean_wait,
    mmc_transient,
    pollaczek_khinchine_wait,
    student_t_interval,
)

SEEDS = tuple(range(20))
LEVEL = 0.95
COLUMNS = ("mean_wait", "prob_wait", "mean_util_cpu")
NODE = {"cpu": 1000, "memory": 1024}  # every task asks for all of it


# --------------------------------------------------------------------- reference values
def test_erlang_c_reference_values() -> None:
    # c=1: C = rho. c=2, a=1: C = (1/2 * 2/1) / (1 + 1 + 1) = 1/3 and W_q = (1/3) / (2 - 1) = 1/3.
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert mmc_mean_wait(2, 1.0, 1.0) == pytest.approx(1 / 3)
    # c=3, a=2: a^3/3! * 3/(3-2) = 4; sum_{k<3} a^k/k! = 1 + 2 + 2 = 5; C = 4 / 9; W_q = (4/9) / (3 - 2).
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9)
    assert mmc_mean_wait(3, 2.0, 1.0) == pytest.approx(4 / 9)
    # Erlang B, c=2, a=1: (1/2) / (1 + 1 + 1/2) = 1/5 (the recursion: 1/2, then (1/2)/(2 + 1/2)).
    assert erlang_b(2, 1.0) == pytest.approx(1 / 5)
    # M/M/1: W_q = rho / (mu - lambda); lambda = 0.7, mu = 1: 0.7 / 0.3.
    assert mmc_mean_wait(1, 0.7, 1.0) == pytest.approx(7 / 3)


@pytest.mark.parametrize(("servers", "load"), [(4, Fraction(18, 5)), (16, Fraction(64, 5)), (64, Fraction(304, 5))])
def test_erlang_c_recursion_equals_the_closed_form_in_exact_arithmetic(servers: int, load: Fraction) -> None:
    # The textbook closed form with factorials, in rationals (no overflow, no rounding).
    tail = load**servers / math.factorial(servers) * servers / (servers - load)
    exact = tail / (sum(load**k / math.factorial(k) for k in range(servers)) + tail)
    assert erlang_c(servers, float(load)) == pytest.approx(float(exact), rel=1e-12)


def test_pollaczek_khinchine_reference_values() -> None:
    # M/D/1, rho = 0.5, S = 1: W_q = rho / (2 (1 - rho)) = 0.5 (Kleinrock 1975, eq. 5.75).
    assert pollaczek_khinchine_wait(0.5, 1.0, 1.0) == pytest.approx(0.5)
    # M/M/1 as M/G/1 (E[S^2] = 2 E[S]^2) is Erlang C with one server.
    assert pollaczek_khinchine_wait(0.7, 1.0, 2.0) == pytest.approx(mmc_mean_wait(1, 0.7, 1.0))
    # M/D/1 waits half as long as M/M/1 at the same load.
    assert pollaczek_khinchine_wait(0.8, 1.0, 1.0) == pytest.approx(mmc_mean_wait(1, 0.8, 1.0) / 2)


def test_lognormal_second_moment_matches_scipy_and_the_scenario_sampler() -> None:
    # E[S^2] = mean^2 exp(sigma^2): mean 1, sigma 1 gives e = 2.71828...
    assert lognormal_second_moment(1.0, 1.0) == pytest.approx(math.e)
    mu = math.log(2.0) - 0.5**2 / 2  # the scenario's parametrisation: E[S] = 2
    assert lognormal_second_moment(2.0, 0.5) == pytest.approx(stats.lognorm(s=0.5, scale=math.exp(mu)).moment(2))
    # The engine's sampler draws what the formula assumes (E[S] = mean, E[S^2] = mean^2 e^sigma^2).
    spec = parse_scenario(_scenario_data(1, 1.0, {"dist": "lognormal", "mean": 1.0, "sigma": 1.0}, 1, 0)).workload[0]
    sample = draw(spec.duration, 1_000_000, np.random.default_rng(0))
    assert sample.mean() == pytest.approx(1.0, rel=0.01)
    assert (sample**2).mean() == pytest.approx(math.e, rel=0.03)  # sd of this estimate: 0.7%


def test_fifo_recursion_reference_value() -> None:
    # Two servers. t=0: tasks 0 (3 s), 1 (1 s) and 2 (2 s) arrive; 0 and 1 start at once, 2 waits for the
    # server 1 frees at 1 s and holds it until 3 s. t=1: task 3 waits for the first server free: 3 s.
    start = fifo_start_times(np.array([0.0, 0.0, 0.0, 1.0]), np.array([3.0, 1.0, 2.0, 1.0]), 2)
    np.testing.assert_array_equal(start, [0.0, 0.0, 1.0, 3.0])
    # One server (Lindley): waits 0, 2 - 1, (2 + 2) - 2.5.
    start = fifo_start_times(np.array([0.0, 1.0, 2.5]), np.array([2.0, 2.0, 1.0]), 1)
    np.testing.assert_array_equal(start - [0.0, 1.0, 2.5], [0.0, 1.0, 1.5])


def test_student_t_interval_reference_value() -> None:
    # 1..5: mean 3, s = sqrt(2.5) = 1.5811; t_{4, 0.975} = 2.7764; half width 2.7764 * 1.5811 / sqrt(5) = 1.9632.
    interval = student_t_interval(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert interval.mean == 3.0
    assert interval.half_width == pytest.approx(1.9632, abs=1e-4)
    assert interval.contains(4.96) and not interval.contains(4.97)


# --------------------------------------------------------------------- the systems
@dataclass(frozen=True)
class System:
    """A single queue as a cluster, with its measurement window and its theory values.

    Attributes:
        servers: ``c``, identical nodes.
        arrival_rate: ``lambda``, tasks per second (Poisson).
        service: The scenario's duration distribution (mean 1 s).
        warmup: Start of the measurement window (seconds).
        until: End of the window (seconds), before the last arrival.
        expected: Summary column -> theory value.
    """

    name: str
    servers: int
    arrival_rate: float
    service: dict[str, Any]
    warmup: float
    until: float
    expected: dict[str, float]

    @property
    def count(self) -> int:
        """Tasks to submit: four standard deviations past the expected arrivals before ``until``."""
        mean = self.arrival_rate * self.until
        return math.ceil(mean + 4 * math.sqrt(mean))

    def scenario(self, seed: int, *, window: bool = True) -> Scenario:
        data = _scenario_data(self.servers, self.arrival_rate, self.service, self.count, seed)
        # One time-series sample per window: the series is not used here and costs time.
        data["metrics"] = {"sample_interval": self.until}
        if window:
            data["metrics"] |= {"warmup": self.warmup, "until": self.until}
        return parse_scenario(data)


def _scenario_data(servers: int, rate: float, service: dict[str, Any], count: int, seed: int) -> dict[str, Any]:
    return {
        "version": 1,
        "name": "queue",
        "seed": seed,
        "policies": ["first_fit"],
        "cluster": {"nodes": [{"count": servers, "capacity": NODE}]},
        "workload": [{"kind": "poisson", "rate": rate, "count": count, "resources": NODE, "duration": service}],
    }


def mmc(servers: int, rho: float, warmup: float, until: float) -> System:
    rate = servers * rho
    expected = {"mean_wait": mmc_mean_wait(servers, rate, 1.0), "prob_wait": erlang_c(servers, rate)}
    return System(
        f"M/M/{servers} rho={rho}",
        servers,
        rate,
        {"dist": "exponential", "mean": 1.0},
        warmup,
        until,
        expected | {"mean_util_cpu": rho},
    )


def mg1(name: str, rho: float, service: dict[str, Any], second_moment: float, warmup: float, until: float) -> System:
    # P(wait > 0) = P(server busy) = rho: an arrival sees the time average (PASTA).
    expected = {"mean_wait": pollaczek_khinchine_wait(rho, 1.0, second_moment), "prob_wait": rho, "mean_util_cpu": rho}
    return System(name, 1, rho, service, warmup, until, expected)


# Warm-ups: M/M/c from the exact transient (see test_warmup_leaves_a_negligible_bias). M/D/1
# relaxes faster than M/M/1 at the same load (no service variability); the lognormal service
# (squared coefficient of variation e - 1 = 1.72) about (1 + 1.72) / 2 = 1.4 times slower
# than M/M/1, whose relaxation time at rho 0.6 is 1 / (1 - sqrt(0.6))^2 = 20 s.
SYSTEMS = {
    "MM1": mmc(1, 0.7, warmup=100, until=700),
    "MM4": mmc(4, 0.9, warmup=200, until=800),
    "MM16": mmc(16, 0.8, warmup=20, until=100),
    "MM64": mmc(64, 0.95, warmup=30, until=100),
    "MD1": mg1("M/D/1 rho=0.8", 0.8, {"dist": "constant", "value": 1.0}, 1.0, warmup=200, until=1000),
    "MG1": mg1(
        "M/G/1 lognormal sigma=1 rho=0.6",
        0.6,
        {"dist": "lognormal", "mean": 1.0, "sigma": 1.0},
        lognormal_second_moment(1.0, 1.0),
        warmup=200,
        until=1400,
    ),
}


@dataclass
class Replications:
    """One row of ``summary`` and one task table per seed."""

    summary: pd.DataFrame
    tasks: list[pd.DataFrame]
    horizon: list[float]

    def interval(self, column: str) -> Interval:
        return student_t_interval(self.summary[column].to_numpy(), LEVEL)


def replicate(system: System, seeds: tuple[int, ...] = SEEDS) -> Replications:
    rows, tasks, horizons = [], [], []
    for seed in seeds:
        result = run(system.scenario(seed))
        rows.append(result.summary.iloc[0])
        frame = result.tasks[["submit_time", "start_time", "end_time", "wait"]]
        tasks.append(frame.assign(duration=result.workload.duration))
        horizons.append(result.records[0].horizon)
    return Replications(pd.DataFrame(rows).reset_index(drop=True), tasks, horizons)


@pytest.fixture(scope="module")
def replications() -> Any:
    """``get(key)``: the 20 replications of ``SYSTEMS[key]``, simulated once per module."""
    cache: dict[str, Replications] = {}

    def get(key: str) -> Replications:
        if key not in cache:
            cache[key] = replicate(SYSTEMS[key])
        return cache[key]

    return get


# --------------------------------------------------------------------- theory checks
# Checks whose fixed seeds miss the 95% interval by chance, with the investigation that
# says so (strict: if they start passing, the engine's numbers changed and this is stale).
CHANCE_MISSES = {
    ("MD1", "mean_wait"): (
        "chance, not bias: seeds 0..19 drew a light load (realised rho 0.7917; utilisation 0.7910 +- 0.013),"
        " and W_q = rho / (2 (1 - rho)) is steep: 1.799 +- 0.181 against 2.0. Seeds 20..99: 1.937 +- 0.12;"
        " 2,000 other seeds: 1.995 +- 0.026, the 20-seed interval covering 2.0 95 times in 100;"
        " 20 runs with a 12.5 times longer window: 1.981 +- 0.083"
    ),
}


def _theory_cases() -> list[Any]:
    cases = []
    for key in SYSTEMS:
        for column in COLUMNS:
            reason = CHANCE_MISSES.get((key, column))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cases.append(pytest.param(key, column, marks=marks, id=f"{key}-{column}"))
    return cases


@pytest.mark.parametrize(("key", "column"), _theory_cases())
def test_matches_theory(key: str, column: str, replications: Any) -> None:
    """Erlang C (M/M/c) or Pollaczek-Khinchine (M/G/1) inside the 95% interval of 20 replications."""
    system = SYSTEMS[key]
    interval = replications(key).interval(column)
    expected = system.expected[column]
    assert interval.contains(expected), f"{system.name}: {column} {interval} excludes the theory value {expected:.5g}"


@pytest.mark.parametrize("key", list(SYSTEMS))
def test_window_statistics_match_the_task_table(key: str, replications: Any) -> None:
    """The summary's windowed columns, recomputed from the per-task rows.

    Tasks submitted in ``[warmup, until)`` count for the waits; the busy time inside the
    window over ``c`` times its length is the utilisation (a task holds a whole node).
    A task that found a free node has a wait of exactly 0, so ``prob_wait`` is not
    inflated by rounding.
    """
    system = SYSTEMS[key]
    w0, w1 = system.warmup, system.until
    reps = replications(key)
    for seed, tasks, row in zip(SEEDS, reps.tasks, reps.summary.itertuples(), strict=True):
        assert tasks.submit_time.max() > w1, f"seed {seed}: arrivals stopped before the window's end"
        assert row.tasks_never_started == 0
        measured = tasks[(tasks.submit_time >= w0) & (tasks.submit_time < w1)]
        assert row.tasks_measured == len(measured)
        assert row.mean_wait == pytest.approx(measured.wait.mean(), rel=1e-9)
        assert ((measured.wait == 0) == (measured.start_time == measured.submit_time)).all()
        assert row.prob_wait == pytest.approx((measured.wait > 0).mean(), rel=1e-12)
        busy = (np.minimum(tasks.end_time, w1) - np.maximum(tasks.start_time, w0)).clip(lower=0).sum()
        assert row.mean_util_cpu == pytest.approx(busy / (system.servers * (w1 - w0)), rel=1e-9)


@pytest.mark.parametrize("key", list(SYSTEMS))
def test_engine_waits_equal_the_fifo_recursion(key: str, replications: Any) -> None:
    """Every task of every replication starts when the Kiefer-Wolfowitz recursion says.

    Given the run's own arrivals and durations, FIFO on c servers fixes every start time;
    the engine must reproduce them (to rounding). So the statistical checks above test
    what is left: the sampled arrivals and durations, and the windowed summary.
    """
    system = SYSTEMS[key]
    for seed, tasks in zip(SEEDS, replications(key).tasks, strict=True):
        expected = fifo_start_times(tasks.submit_time.to_numpy(), tasks.duration.to_numpy(), system.servers)
        np.testing.assert_allclose(tasks.start_time, expected, rtol=0, atol=1e-9, err_msg=f"seed {seed}")
        np.testing.assert_allclose(tasks.end_time - tasks.start_time, tasks.duration, rtol=0, atol=1e-9)


@pytest.mark.parametrize("key", ["MM1", "MM4", "MM16", "MM64"])
def test_warmup_leaves_a_negligible_bias(key: str, replications: Any) -> None:
    """Starting empty biases every estimate low; after the warm-up, by under a tenth of the interval.

    The expected value of each windowed estimate, from the exact transient of M/M/c
    started empty (forward equations), differs from the stationary value by less than a
    tenth of the measured half width, so the window's start moves the coverage of a 95%
    interval by well under one point.
    """
    system = SYSTEMS[key]
    path = mmc_transient(system.servers, system.arrival_rate, 1.0, system.until, step=system.until / 800)
    inside = path["time"] >= system.warmup
    means = {
        "mean_wait": path["wait"],  # arrivals are uniform in time: the time average is the task average
        "prob_wait": path["prob_wait"],
        "mean_util_cpu": path["busy"] / system.servers,
    }
    for column, series in means.items():
        windowed = integrate.trapezoid(series[inside], path["time"][inside]) / (system.until - system.warmup)
        bias = windowed - system.expected[column]
        half_width = replications(key).interval(column).half_width
        assert abs(bias) < 0.1 * half_width, f"{system.name}: {column} bias {bias:.2g} vs half width {half_width:.2g}"
        full = integrate.trapezoid(series, path["time"]) / system.until
        assert full < windowed  # the empty start alone already pulls the full-run mean down


def test_without_the_window_utilisation_misses(replications: Any) -> None:
    """Why the window matters: the same M/M/64 runs, measured over the whole run, miss rho = 0.95.

    Over the whole run the mean includes the empty start and the drain after the last
    arrival (c nodes of capacity, fewer and fewer busy), both below rho. The whole-run
    utilisation is recomputed from the task rows (busy time over ``c`` times the horizon)
    and checked against the engine's own figure for a run without a window.
    """
    system = SYSTEMS["MM64"]
    reps = replications("MM64")
    whole = np.array(
        [
            (t.end_time - t.start_time).sum() / (system.servers * h)
            for t, h in zip(reps.tasks, reps.horizon, strict=True)
        ]
    )
    unwindowed = run(system.scenario(SEEDS[0], window=False)).summary.iloc[0]
    assert unwindowed.mean_util_cpu == pytest.approx(whole[0], rel=1e-9)
    interval = student_t_interval(whole, LEVEL)
    assert interval.high < system.expected["mean_util_cpu"], f"whole-run utilisation {interval}"
    assert reps.interval("mean_util_cpu").contains(system.expected["mean_util_cpu"])


# --------------------------------------------------------------------- Ciw, independently
def ciw_replication(system: System, seed: int) -> dict[str, float]:
    """One run of ``system`` (exponential service) in Ciw 3, measured over the same window."""
    import ciw

    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=system.arrival_rate)],
        service_distributions=[ciw.dists.Exponential(rate=1.0)],
        number_of_servers=[system.servers],
    )
    ciw.seed(seed)  # Ciw draws from the process-wide random and numpy generators
    simulation = ciw.Simulation(network)
    # Arrivals go on past the window's end; every customer who arrived inside it has left
    # 50 s later (P(W_q > 50 s) = C exp(-(c mu - lambda) 50) is under 2e-9 here; checked below).
    simulation.simulate_until_max_time(system.until + 50)
    assert all(i.arrival_date >= system.until for i in simulation.transitive_nodes[0].all_individuals)
    records = pd.DataFrame(simulation.get_all_records())
    w0, w1 = system.warmup, system.until
    measured = records[(records.arrival_date >= w0) & (records.arrival_date < w1)]
    busy = (np.minimum(records.service_end_date, w1) - np.maximum(records.service_start_date, w0)).clip(lower=0)
    return {
        "mean_wait": float(measured.waiting_time.mean()),
        "prob_wait": float((measured.waiting_time > 0).mean()),
        "mean_util_cpu": float(busy.sum() / (system.servers * (w1 - w0))),
    }


@pytest.fixture(scope="module")
def ciw_mm4() -> pd.DataFrame:
    return pd.DataFrame([ciw_replication(SYSTEMS["MM4"], seed) for seed in SEEDS])


CIW_CHANCE_MISS = pytest.mark.xfail(
    strict=True,
    reason=(
        "chance, not bias: Ciw's seeds 0..19 drew a heavy load (arrival rate 3.626 +- 0.033 per second and mean"
        " service 1.0055 s inside the window: realised rho 0.912), so utilisation 0.9121 +- 0.011 and P(wait)"
        " 0.8128 +- 0.023 sit above 0.9 and 0.7878. Ciw's seeds 20..99: 0.8950 +- 0.0057 and 0.776 +- 0.012"
    ),
)


@pytest.mark.parametrize(
    "column",
    [
        "mean_wait",
        pytest.param("prob_wait", marks=CIW_CHANCE_MISS),
        pytest.param("mean_util_cpu", marks=CIW_CHANCE_MISS),
    ],
)
def test_ciw_matches_erlang_c(column: str, ciw_mm4: pd.DataFrame) -> None:
    """The same M/M/4 at rho 0.9 and the same window in Ciw 3, inside its 95% interval.

    An independent simulator (its own event loop and random streams) on the same model:
    if the engine and the formulas shared a mistake, Ciw would disagree with the formulas.
    The engine's side of the comparison is ``test_matches_theory[MM4-*]``; the two are
    compared with the theory, not with each other to the bit.
    """
    system = SYSTEMS["MM4"]
    expected = system.expected[column]
    interval = student_t_interval(ciw_mm4[column].to_numpy(), LEVEL)
    assert interval.contains(expected), f"ciw {system.name}: {column} {interval} excludes {expected:.5g}"


# --------------------------------------------------------------------- the long form
FULL = {
    "MM4": mmc(4, 0.9, warmup=200, until=4000),
    "MM64": mmc(64, 0.95, warmup=50, until=500),
}


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("ORCHSIM_FULL_THEORY") != "1", reason="long form: set ORCHSIM_FULL_THEORY=1 (about 920,000 tasks)"
)
@pytest.mark.parametrize("key", list(FULL))
def test_matches_theory_long_runs(key: str) -> None:
    """The issue's two systems with windows five times longer: narrower intervals, same verdict."""
    system = FULL[key]
    reps = replicate(system)
    for column in COLUMNS:
        interval = reps.interval(column)
        expected = system.expected[column]
        assert interval.contains(expected), f"{system.name}: {column} {interval} excludes {expected:.5g}"
