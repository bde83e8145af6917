"""What a run is configured with and what it leaves behind: plain data, no behaviour.

``EngineConfig`` is everything the engine needs besides the tasks and the initial nodes;
``RunRecords`` is what one policy run produced (per-task columns, samples, exact
integrals), which ``orchsim.metrics`` turns into tables. Task records are columnar numpy
arrays indexed by task id, so a million tasks cost a few tens of MB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orchsim import scenario as sc

__all__ = ["EngineConfig", "NodeState", "RunRecords", "Status", "TaskColumns"]


class Status:
    """Task status codes in the records (strings in the CSV)."""

    PENDING = 0
    RUNNING = 1
    COMPLETED = 2
    FAILED = 3
    UNSCHEDULABLE = 4
    SKIPPED = 5  # never ran: a parent it needed did not complete (``if_parent_fails: skip``)
    NAMES = ("pending", "running", "completed", "failed", "unschedulable", "skipped")


class NodeState:
    """Node states. DEAD: failed but not yet detected (the scheduler still sees it up)."""

    UP = 0
    DEAD = 1
    DOWN = 2
    DRAINING = 3
    REMOVED = 4


@dataclass(frozen=True)
class EngineConfig:
    """Everything the engine needs besides the tasks and the initial nodes."""

    policy: str
    policy_params: dict[str, Any]
    seed: int
    queue: str = "fifo"
    backfill_window: int = 100
    max_attempts: int = 5
    preemption: bool = False  # a task that fits nowhere may evict lower-priority ones
    per_instant: bool = False  # one pass after all arrivals and ends at the same time
    decision_latency: tuple[float, ...] = ()  # seconds a pass waits (orchsim.engine.latency); () none
    sampling: Any = None  # node sampling (orchsim.scheduling.sampling): None scores every node
    heartbeat_interval: float = 5.0
    failure_timeout: float = 15.0
    events: tuple[Any, ...] = ()
    autoscaler: sc.Autoscaler | None = None
    sample_interval: float = 10.0
    max_samples: int = 1000  # time-series samples kept at most (thinned evenly past it)
    filters: dict[str, dict[str, Any]] = field(default_factory=dict)  # beyond the built-ins, with params
    warmup: float = 0.0  # start of the measurement window (simulated seconds)
    until: float | None = None  # its end; None: the end of the run


class TaskColumns:
    """Per-task records, one numpy column each, written in place by the engine.

    Attributes:
        start, end: Start of the last run and its end (NaN until known).
        node: Node of the last run (-1: never placed).
        status: ``Status`` codes.
        attempts: Placements so far.
        wait: Total time queued, over every attempt.
        enqueued_at: When the task last joined the queue.
        epoch: Raised when a run is lost with its node: its completion event is then void.
    """

    __slots__ = ("attempts", "end", "enqueued_at", "epoch", "node", "start", "status", "wait")

    def __init__(self, n_tasks: int) -> None:
        self.start = np.full(n_tasks, np.nan)
        self.end = np.full(n_tasks, np.nan)
        self.node = np.full(n_tasks, -1, dtype=np.int64)
        self.status = np.zeros(n_tasks, dtype=np.int8)
        self.attempts = np.zeros(n_tasks, dtype=np.int32)
        self.wait = np.zeros(n_tasks)
        self.enqueued_at = np.zeros(n_tasks)
        self.epoch = np.zeros(n_tasks, dtype=np.int32)


@dataclass
class RunRecords:
    """What one policy run produced: per-task columns, samples and exact integrals."""

    policy: str
    node_ids: list[str]
    start_time: np.ndarray
    end_time: np.ndarray
    node: np.ndarray
    status: np.ndarray
    attempts: np.ndarray
    wait: np.ndarray
    samples: dict[str, np.ndarray]
    integrals: dict[str, float]
    horizon: float
    peak_nodes_used: int
    rescheduled: int
    wall_seconds: float
    decisions: int
    # One entry per node failure, at detection: (failed at, detected at, node id, tasks lost).
    failures: list[tuple[float, float, str, int]] = field(default_factory=list)
    # Why a task did not run: for tasks never placed, unschedulable or given up (task -> text).
    reasons: dict[int, str] = field(default_factory=dict)
    # The measurement window (start, end) in simulated seconds; end is at most the horizon.
    window: tuple[float, float] = (0.0, math.inf)
    # Devices of each task's last run that took any, as text ("0;3"; see format_assignment).
    devices: dict[int, str] = field(default_factory=dict)
    # Columns and summary keys of the features a run uses (priority, preemption, gangs,
    # dependencies; see engine.task_structure), appended to the tables; empty otherwise.
    task_extras: dict[str, np.ndarray] = field(default_factory=dict)
    summary_extras: dict[str, float | int] = field(default_factory=dict)
    # One row per DAG (dag, submit, end, makespan, critical_path, slack), or None without DAGs.
    dags: dict[str, np.ndarray] | None = None
