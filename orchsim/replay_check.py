"""Recorded vs replayed: does the simulator, under the recorded policy, do what the live cluster did?

Two checks:

* placements: the share of the tasks the live cluster placed that the replay put on the
  same node, leaving out those whose placement depended on timing, and every divergence
  with its cause: another task arrived or ended between the task's submission and its
  live placement (the simulator places at submission); another task's end was committed
  on the other side of its placement live than in the replay (event ids, format 3: a
  time is stamped before its commit, which a loaded machine delays); the live cluster placed it more
  than once (a node loss); the replay placed it more than once, requeued by a node loss
  (the replay's loss dates the worker's death from when the master declared it, and the
  master may declare it late: a task can end on the node in one cluster and not the
  other, and what the node holds then differs); it was on a lost node around the time
  its worker died, which the recording knows only to within one lease; it followed such
  a divergence while the cluster differed;
  else "unexplained" (counted against the agreement);
* waits (submission to first placement, seconds): the replayed mean against the recorded
  mean and a percentile bootstrap interval of it; ``within`` says whether the replayed
  mean lies inside that interval. The live master takes milliseconds to hundreds of them
  per decision; the replay models that (``scheduler.decision_latency``, measured from the
  recording by ``orchsim.traces.decision_latencies``) rather than the verdict allowing for
  it, and ``latency`` says how the replay did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from orchsim.traces.orchlive import RecordedTasks

if TYPE_CHECKING:
    from orchsim.replay_decisions import DecisionCheck

__all__ = ["LOSS_MARGIN", "Divergence", "ReplayCheck", "bootstrap_mean", "compare_replay"]

#: Seconds added before a lost node's lease: the master notices an expiry a little late.
LOSS_MARGIN = 0.5


@dataclass(frozen=True)
class Divergence:
    """One task the replay put elsewhere than the live cluster did."""

    task_id: str
    recorded: str
    replayed: str
    cause: str


@dataclass(frozen=True)
class ReplayCheck:
    """Placement agreement and waits, recorded vs replayed (one policy's replay)."""

    compared: int
    agreed: int
    timing: int
    recorded_mean_wait: float
    replayed_mean_wait: float
    interval: tuple[float, float]
    latency: str = "none"
    divergences: list[Divergence] = field(default_factory=list)
    # Every live placement decided again on the cluster the master saw (format 3), if checked.
    decisions: DecisionCheck | None = None

    @property
    def agreement(self) -> float:
        """Share of the tasks whose placement did not depend on timing that went to the same node."""
        counted = self.compared - self.timing
        return self.agreed / counted if counted else 1.0

    @property
    def within(self) -> bool:
        """The replayed mean wait lies in the recorded mean's bootstrap interval."""
        low, high = self.interval
        return low <= self.replayed_mean_wait <= high

    def lines(self, limit: int | None = None) -> list[str]:
        """The report as text lines: the two checks side by side, then every divergence (the first ``limit``)."""
        low, high = self.interval
        out = [
            f"placements: {self.agreed}/{self.compared - self.timing} on the same node ({100 * self.agreement:.1f}%; "
            f"{self.timing} of the {self.compared} placed live left out: their placement depended on timing)",
            f"mean wait (s): recorded {self.recorded_mean_wait:.3f} [95% bootstrap {low:.3f}, {high:.3f}], "
            f"replayed {self.replayed_mean_wait:.3f}: {'within' if self.within else 'OUTSIDE'} "
            f"(decision latency replayed: {self.latency})",
        ]
        shown = self.divergences if limit is None else self.divergences[:limit]
        out += [f"  {d.task_id}: recorded {d.recorded}, replayed {d.replayed or '-'} ({d.cause})" for d in shown]
        if len(shown) < len(self.divergences):
            more = len(self.divergences) - len(shown)
            out.append(f"  ... and {more} more divergences (all in replay_check.txt: --out)")
        if self.decisions is not None:
            out += self.decisions.lines(limit)
        return out


def bootstrap_mean(
    values: np.ndarray, *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (seeded, so reports are reproducible)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def _race(i: int, recorded: RecordedTasks, window: float) -> str | None:
    """Why task ``i``'s live placement depended on timing, or None.

    Between its submission and its live placement (widened by ``window`` seconds both
    ways) another task arrived or ended: the live master saw a cluster the simulator, which
    places at submission, did not. A DAG's child counts from its parents' end (``ready``):
    it arrives in the queue then, not at its submission.
    """
    ready = recorded.submit if recorded.ready is None else recorded.ready
    low = ready[i] - window
    high = ready[i] + np.nan_to_num(recorded.wait[i]) + window
    for what, times in (("arrived", ready), ("ended", recorded.end)):
        hits = np.flatnonzero((times >= low) & (times <= high))
        hits = hits[hits != i]
        if hits.size:
            j = int(hits[0])
            return f"timing: {recorded.task_id[j]} {what} {times[j] - recorded.submit[i]:+.3f} s from its submission"
    return None


def _commit_order(i: int, recorded: RecordedTasks, start: np.ndarray | None, end: np.ndarray | None) -> str | None:
    """A task whose end the live master and the replay saw on different sides of task ``i``'s placement, or None.

    Live, ``i`` was placed in the transaction of its ``task.assigned`` event: an attempt
    whose end event has a smaller id was committed before it, a larger one after, whatever
    its time says (a time is stamped before its transaction commits, and on a loaded machine
    the commit can come a good while later). In the replay, an end at or before ``i``'s
    placement counted. Needs the event ids (format 3) and the replay's times; what the
    master's watch had not yet delivered when it decided is the time window's (``_race``).
    """
    if recorded.assigned_event is None or recorded.end_event is None or start is None or end is None:
        return None
    placed, at = recorded.assigned_event[i], start[i]
    if np.isnan(placed) or np.isnan(at):
        return None
    known = ~np.isnan(recorded.end_event) & ~np.isnan(end)
    live, replay = recorded.end_event < placed, end <= at
    differ = np.flatnonzero(known & (live != replay))
    differ = differ[differ != i]
    if not differ.size:
        return None
    j = int(differ[0])
    sides = ("before", "after") if live[j] else ("after", "before")
    return f"timing: {recorded.task_id[j]} ended {sides[0]} its placement live (commit order), {sides[1]} in the replay"


def _joined_near(i: int, recorded: RecordedTasks, joins: Sequence[tuple[str, float]], window: float) -> str | None:
    """A node that joined between task ``i``'s submission and its live placement (widened by ``window``), or None."""
    low = recorded.submit[i] - window
    high = recorded.submit[i] + np.nan_to_num(recorded.wait[i]) + window
    for node, at in joins:
        if low <= at <= high:
            return f"timing: node {node} joined {at - recorded.submit[i]:+.3f} s from its submission"
    return None


def _lost_node(
    i: int, recorded: RecordedTasks, replayed: np.ndarray, losses: Mapping[str, Sequence[float]], lease: float
) -> str | None:
    """Why task ``i`` may have met a lost node's death differently, or None.

    The recording knows when the master declared a node lost, not when its worker died
    (up to one lease before): a task on that node (live or replayed) whose stay there
    overlaps that lease may have ended, or been lost, in one cluster and not the other.
    """
    begin = recorded.submit[i]
    end = recorded.end[i] if not np.isnan(recorded.end[i]) else begin + np.nan_to_num(recorded.wait[i])
    for node in dict.fromkeys((str(recorded.node[i]), str(replayed[i]))):
        for lost in losses.get(node, ()):
            if begin <= lost and end >= lost - lease - LOSS_MARGIN:
                died = f"its worker died within the {lease:g} s lease before"
                return f"timing: node {node} was lost at {lost:.3f} s, {died}"
    return None


def _requeued_in_replay(
    i: int,
    recorded: RecordedTasks,
    replayed_attempts: np.ndarray | None,
    replayed_start: np.ndarray | None,
    losses: Mapping[str, Sequence[float]],
) -> str | None:
    """Why the replay placed task ``i`` more than once (a node lost between its submission and last start), or None."""
    if replayed_attempts is None or replayed_attempts[i] <= 1:
        return None
    last = np.inf if replayed_start is None or np.isnan(replayed_start[i]) else replayed_start[i]
    after = sorted((at, node) for node, times in losses.items() for at in times if recorded.submit[i] <= at <= last)
    if not after:
        return None
    at, node = after[0]
    times = int(replayed_attempts[i])
    return f"timing: placed {times} times in the replay, requeued when node {node} was lost at {at:.3f} s"


def _causes(
    recorded: RecordedTasks,
    diverged: np.ndarray,
    window: float,
    node_cause: Callable[[int], str | None] = lambda i: None,
    replayed_end: np.ndarray | None = None,
) -> dict[int, tuple[str, bool]]:
    """Per diverging task: its cause, and whether that cause is timing (which the agreement leaves out).

    A divergence follows from an earlier timing one when that task was still running, live
    or in the replay (``replayed_end``), at this one's submission: the two clusters differ
    as long as it runs in either.
    """
    until = recorded.end if replayed_end is None else np.fmax(recorded.end, replayed_end)
    causes: dict[int, tuple[str, bool]] = {}
    timing: list[int] = []
    for i in diverged:
        race = _race(int(i), recorded, window) or node_cause(int(i))
        earlier = [k for k in timing if recorded.submit[k] <= recorded.submit[i] < until[k]]
        if recorded.attempts[i] > 1:
            cause = f"timing: placed {recorded.attempts[i]} times live (rescheduled)"
        elif race is not None:
            cause = race
        elif earlier:
            cause = f"timing: follows {recorded.task_id[earlier[0]]}, which diverged and was still running"
            cause += "" if recorded.submit[i] < recorded.end[earlier[0]] else " in the replay"
        else:
            causes[int(i)] = ("unexplained", False)
            continue
        causes[int(i)] = (cause, True)
        timing.append(int(i))
    return causes


def compare_replay(
    recorded: RecordedTasks,
    replayed: Mapping[str, np.ndarray],
    *,
    race_window: float = 0.1,
    latency: str = "none",
    losses: Mapping[str, float | Sequence[float]] | None = None,
    lease: float = 0.0,
    joins: Sequence[tuple[str, float]] = (),
) -> ReplayCheck:
    """Compare a recording with one policy's replay of it.

    Args:
        recorded: What the live cluster did (``load_orchlive_tasks``), in workload order.
        replayed: The replay's tasks table for one policy (``Results.table("tasks")``
            rows of that policy): ``node`` and ``wait`` (and ``end_time`` and ``attempts``,
            if given), in the same order.
        race_window: Seconds around a task's submission and live placement within which
            another task's arrival or end makes its placement a matter of timing: an end
            is the process's exit, which reaches the master after the worker reports it
            (tens of milliseconds, more on a loaded machine).
        latency: How the replay modelled the master's decision latency, for the report.
        losses: Node -> when the live master declared it lost (s), from the recording: one
            time or every one (a node lost more than once).
        lease: The workers' lease (s): a lost node's worker died up to this long before.
        joins: ``(node, time)`` of every join (or return) after the first submission (s).
    """
    nodes = np.asarray(replayed["node"], dtype=object)
    if len(nodes) != len(recorded.node):
        raise ValueError(f"the replay has {len(nodes)} tasks, the recording {len(recorded.node)}")
    placed = recorded.node != ""  # every task the live cluster placed is compared
    same = placed & (recorded.node == nodes)
    diverged = np.flatnonzero(placed & ~same)
    lost = {node: [t] if isinstance(t, int | float) else list(t) for node, t in (losses or {}).items()}
    ends = np.asarray(replayed["end_time"], dtype=np.float64) if "end_time" in replayed else None

    again = np.asarray(replayed["attempts"]) if "attempts" in replayed else None
    starts = np.asarray(replayed["start_time"], dtype=np.float64) if "start_time" in replayed else None

    def node_cause(i: int) -> str | None:
        return (
            _commit_order(i, recorded, starts, ends)
            or _joined_near(i, recorded, joins, race_window)
            or _requeued_in_replay(i, recorded, again, starts, lost)
            or _lost_node(i, recorded, nodes, lost, lease)
        )

    causes = _causes(recorded, diverged, race_window, node_cause, ends)
    divergences = [
        Divergence(str(recorded.task_id[i]), str(recorded.node[i]), str(nodes[i]), causes[int(i)][0]) for i in diverged
    ]
    live_wait = recorded.wait[~np.isnan(recorded.wait)]
    sim_wait = np.asarray(replayed["wait"], dtype=np.float64)
    if "start_time" in replayed:  # a task that never ran (skipped, failed with its parent) has no wait
        sim_wait = np.where(np.isnan(np.asarray(replayed["start_time"], dtype=np.float64)), np.nan, sim_wait)
    sim_wait = sim_wait[~np.isnan(sim_wait)]
    return ReplayCheck(
        compared=int(placed.sum()),
        timing=sum(1 for _, is_timing in causes.values() if is_timing),
        agreed=int(same.sum()),
        recorded_mean_wait=float(live_wait.mean()) if live_wait.size else float("nan"),
        replayed_mean_wait=float(sim_wait.mean()) if sim_wait.size else float("nan"),
        interval=bootstrap_mean(live_wait),
        latency=latency,
        divergences=divergences,
    )
