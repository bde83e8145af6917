"""Reference formulas of queueing theory, and the confidence interval the theory tests use.

Pure functions of the standard library and scipy, written from the textbook formulas
(Kleinrock, *Queueing Systems* vol. 1, 1975: Erlang C in section 3.5, Pollaczek-Khinchine
in section 5.7; Gross, Shortle, Thompson and Harris, *Fundamentals of Queueing Theory*,
4th ed., 2008, sections 2.3 and 5.1), and checked by ``test_queueing_theory.py`` against
worked numbers.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "Interval",
    "erlang_b",
    "erlang_c",
    "fifo_start_times",
    "lognormal_second_moment",
    "mmc_transient",
    "mmc_mean_wait",
    "pollaczek_khinchine_wait",
    "student_t_interval",
]


def erlang_b(servers: int, offered_load: float) -> float:
    """Erlang B blocking probability ``B(c, a)`` by the stable recursion.

    ``B(0, a) = 1`` and ``B(k, a) = a B(k-1, a) / (k + a B(k-1, a))``: the same number as
    ``(a^c / c!) / sum_{k=0..c} a^k / k!`` without the factorials that overflow at c = 64
    (Gross et al. 2008, eq. 2.61 and the recursion that follows it).

    Args:
        servers: ``c``, at least 1.
        offered_load: ``a = lambda / mu`` in Erlangs (mean busy servers), non-negative.
    """
    if servers < 1 or offered_load < 0:
        raise ValueError(f"need servers >= 1 and load >= 0, got c={servers}, a={offered_load}")
    b = 1.0
    for k in range(1, servers + 1):
        b = offered_load * b / (k + offered_load * b)
    return b


def erlang_c(servers: int, offered_load: float) -> float:
    """Erlang C: the probability that an arrival to M/M/c has to wait, ``P(W_q > 0)``.

    ``C(c, a) = (a^c / c!) (c / (c - a)) / (sum_{k<c} a^k / k! + (a^c / c!) (c / (c - a)))``
    (Kleinrock 1975, eq. 3.40), computed from Erlang B as ``C = B / (1 - rho (1 - B))`` with
    ``rho = a / c``. By PASTA it is also the long-run share of arrivals that wait.

    Args:
        servers: ``c``.
        offered_load: ``a = lambda / mu`` in Erlangs; must be below ``c`` (a stable queue).
    """
    rho = offered_load / servers
    if not 0 <= rho < 1:
        raise ValueError(f"unstable: rho = a / c = {rho} must be in [0, 1)")
    b = erlang_b(servers, offered_load)
    return b / (1 - rho * (1 - b))


def mmc_mean_wait(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Mean time in queue ``W_q`` of M/M/c, in the time unit of the rates.

    ``W_q = C(c, a) / (c mu - lambda)`` with ``a = lambda / mu`` (Kleinrock 1975, eq. 3.43).
    """
    return erlang_c(servers, arrival_rate / service_rate) / (servers * service_rate - arrival_rate)


def pollaczek_khinchine_wait(arrival_rate: float, mean_service: float, second_moment: float) -> float:
    """Mean time in queue ``W_q`` of M/G/1 (the Pollaczek-Khinchine mean-value formula).

    ``W_q = lambda E[S^2] / (2 (1 - rho))`` with ``rho = lambda E[S]`` (Kleinrock 1975,
    eq. 5.72; Gross et al. 2008, eq. 5.9). For M/D/1, ``E[S^2] = E[S]^2``; for M/M/1,
    ``E[S^2] = 2 E[S]^2`` and the formula is Erlang C with one server.

    Args:
        arrival_rate: ``lambda`` (per second).
        mean_service: ``E[S]`` (seconds).
        second_moment: ``E[S^2]`` (seconds squared).
    """
    rho = arrival_rate * mean_service
    if not 0 <= rho < 1:
        raise ValueError(f"unstable: rho = lambda E[S] = {rho} must be in [0, 1)")
    return arrival_rate * second_moment / (2 * (1 - rho))


def lognormal_second_moment(mean: float, sigma: float) -> float:
    """``E[S^2]`` of the scenario's ``lognormal`` (``mean`` of S, ``sigma`` of ln S).

    With ``ln S ~ N(mu, sigma^2)``, ``E[S^k] = exp(k mu + k^2 sigma^2 / 2)``; the scenario
    sets ``mu = ln(mean) - sigma^2 / 2`` so that ``E[S] = mean``, hence
    ``E[S^2] = exp(2 mu + 2 sigma^2) = mean^2 exp(sigma^2)``.
    """
    return mean**2 * math.exp(sigma**2)


def fifo_start_times(arrival: np.ndarray, service: np.ndarray, servers: int) -> np.ndarray:
    """Start times in a FIFO queue with ``c`` identical servers (the Kiefer-Wolfowitz recursion).

    Customers are served in arrival order; each starts at ``max(arrival, earliest time a
    server is free)`` and holds that server for its service time (Kiefer and Wolfowitz,
    "On the theory of queues with many servers", Trans. AMS 78, 1955; with one server it
    is Lindley's recursion). Given the same arrivals and service times, any correct FIFO
    simulation of G/G/c produces exactly these start times.

    Args:
        arrival: Arrival times (seconds), float ``(n,)``; ties keep their order.
        service: Service times (seconds), float ``(n,)``.
        servers: ``c``.

    Returns:
        Start times (seconds), float ``(n,)``, in the order of the inputs.
    """
    free = [0.0] * servers  # when each server is next free (a heap)
    start = np.empty(len(arrival))
    for i in np.argsort(arrival, kind="stable").tolist():
        begin = max(float(arrival[i]), heapq.heappop(free))
        start[i] = begin
        heapq.heappush(free, begin + float(service[i]))
    return start


@dataclass(frozen=True)
class Interval:
    """A Student-t confidence interval for the mean of ``n`` independent replications."""

    mean: float
    half_width: float
    n: int
    level: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def __str__(self) -> str:
        return f"{self.mean:.5g} +- {self.half_width:.2g} ({self.level:.0%}, n={self.n})"


def student_t_interval(values: np.ndarray, level: float = 0.95) -> Interval:
    """``mean +- t_{n-1, (1+level)/2} s / sqrt(n)`` over replications (one value each).

    Args:
        values: One estimate per independent replication, float ``(n,)``, ``n >= 2``.
        level: Two-sided confidence level.
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n < 2:
        raise ValueError("an interval needs at least two replications")
    half = float(stats.t.ppf((1 + level) / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return Interval(mean=float(values.mean()), half_width=half, n=n, level=level)


def mmc_transient(
    servers: int, arrival_rate: float, service_rate: float, horizon: float, step: float = 0.25, max_queue: int = 400
) -> dict[str, np.ndarray]:
    """Expected path of M/M/c started empty, from the Kolmogorov forward equations.

    The number in system is a birth-death chain (births ``lambda``, deaths ``min(n, c) mu``),
    truncated at ``c + max_queue``; ``p(t + step) = p(t) expm(Q step)`` (Kleinrock 1975,
    section 2.5). An arrival at ``t`` that finds ``n >= c`` waits ``(n - c + 1) / (c mu)``
    on average, and by PASTA it sees ``p(t)``.

    Returns:
        ``time`` (seconds, float ``(K,)``, from 0 to ``horizon`` by ``step``) and, at those
        times, ``busy`` (expected busy servers), ``wait`` (expected wait of an arrival,
        seconds) and ``prob_wait`` (probability that an arrival waits).
    """
    from scipy.linalg import expm

    size = servers + max_queue + 1
    n = np.arange(size)
    q = np.zeros((size, size))
    q[n[:-1], n[:-1] + 1] = arrival_rate
    q[n[1:], n[1:] - 1] = np.minimum(n[1:], servers) * service_rate
    q[n, n] = -q.sum(axis=1)
    transition = expm(q * step)
    times = np.arange(0.0, horizon + step / 2, step)
    p = np.zeros(size)
    p[0] = 1.0
    path = np.empty((len(times), size))
    for k in range(len(times)):
        path[k] = p
        p = p @ transition
    return {
        "time": times,
        "busy": path @ np.minimum(n, servers),
        "wait": path @ (np.maximum(n - servers + 1, 0) / (servers * service_rate)),
        "prob_wait": path @ (n >= servers),
    }
