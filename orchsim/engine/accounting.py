"""Exact time integrals over the measurement window, and the live capacity they integrate.

Means reported for a run (utilisation, queue length, running tasks, nodes up) are time
integrals divided by the window's length, accumulated exactly at every state change, not
sampled. Two views of the cluster are kept apart: the scheduler's (in the ``NodeMatrix``)
changes when a failure is detected; the physical one, here, changes at the failure itself,
so a dead node has no capacity and the work lost on it ends when it died: utilisation can
never exceed 1.
"""

from __future__ import annotations

import math

import numpy as np

from orchsim.engine.records import Status, TaskColumns

__all__ = ["Accounting"]


class Accounting:
    """Live capacity and the time integrals of the window ``[warmup, until)``.

    Attributes:
        cap_total: Float ``(R,)``: capacity of the physically live nodes.
        nodes_up: Nodes physically up.
        last_t: Time of the last task or node state change (the run's horizon at the end).
        queue, running, nodes_up_time: Integrals of queue length, running tasks, nodes up.
        capacity: Float ``(R,)``: integral of live capacity.
        lost_used: Float ``(R,)``: allocation held by runs lost with their node, until it died.
    """

    def __init__(self, warmup: float, until: float | None, cap_total: np.ndarray, nodes_up: int) -> None:
        self.w0 = float(warmup)
        self.w1 = math.inf if until is None else float(until)
        self._windowed = self.w0 > 0 or self.w1 < math.inf
        self.cap_total = cap_total
        self.nodes_up = nodes_up
        self.last_t = 0.0
        self._cap_since = 0.0
        self.capacity = np.zeros(len(cap_total))
        self.lost_used = np.zeros(len(cap_total))
        self.queue = 0.0
        self.running = 0.0
        self.nodes_up_time = 0.0

    def in_window(self, begin: float, end: float) -> float:
        """Length of ``[begin, end]`` inside the measurement window (0 if none)."""
        return max(0.0, min(end, self.w1) - max(begin, self.w0))

    def advance(self, now: float, queued: int, running: int) -> None:
        """Integrate queue length and running count up to ``now`` (call before changing them)."""
        if now > self.last_t:
            dt = self.in_window(self.last_t, now) if self._windowed else now - self.last_t
            if dt > 0:
                self.queue += queued * dt
                self.running += running * dt
            self.last_t = now

    def capacity_changing(self, now: float) -> None:
        """Integrate live capacity and node count up to ``now`` (call before changing them).

        Capacity changes only with node events, so it is integrated there and not on every
        task event; allocated capacity is integrated from the task records at the end
        (``used``: demand x run time), which is exact and costs nothing per event.
        """
        if now > self._cap_since:
            dt = self.in_window(self._cap_since, now)
            if dt > 0:
                self.capacity += self.cap_total * dt
                self.nodes_up_time += self.nodes_up * dt
            self._cap_since = now

    def node_leaves(self, now: float, capacity: np.ndarray) -> None:
        """A node stops being physically live (fails or is removed) at ``now``."""
        self.capacity_changing(now)
        self.nodes_up -= 1
        self.cap_total -= capacity

    def node_joins(self, now: float, capacity: np.ndarray, count: int = 1) -> None:
        """``count`` nodes of ``capacity`` become live (join or come back) at ``now``."""
        self.capacity_changing(now)
        self.nodes_up += count
        self.cap_total += capacity * count

    def lose_run(self, demand: np.ndarray, start: float, failed_at: float) -> None:
        """A run lost with its node held ``demand`` from ``start`` until the node died."""
        self.lost_used += demand * self.in_window(start, max(start, failed_at))

    def used(self, tasks: TaskColumns, demand: np.ndarray) -> np.ndarray:
        """Time integral of allocated capacity over the window: demand x run time, summed over runs.

        The last run of a running or completed task is read from the records; every run
        lost with a node (including the last run of a task that failed for good) was added
        by ``lose_run`` when it was given up, ending when the node died.
        """
        ran = (tasks.status == Status.RUNNING) | (tasks.status == Status.COMPLETED)
        start = np.where(ran, tasks.start, 0.0)
        end = np.where(ran, np.where(np.isnan(tasks.end), self.last_t, tasks.end), 0.0)
        w0, w1 = self.w0, min(self.w1, self.last_t)
        run_time = np.clip(end, w0, w1) - np.clip(start, w0, w1)
        return np.where(ran, run_time, 0.0) @ demand + self.lost_used

    def window(self) -> tuple[float, float]:
        """The measurement window as it ended: its end is at most the horizon."""
        return (self.w0, min(self.w1, float(self.last_t)))
