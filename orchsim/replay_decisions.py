"""Every live placement decided again by the shared core, on the cluster the master saw then.

The replay (``orchsim.replay_cli``) runs a recording's workload through the simulator: ends,
waits and losses are the simulator's, so one timing race shifts every later placement and
the replay check has to leave those out. This check simulates nothing. A recording of
format 3 orders every attempt's placement and end by etcd's commit order (the event ids,
``TASK_EVENTS``), so the cluster as the master held it when it placed a task can be rebuilt
exactly: the attempts placed before that placement and not ended before it, on the nodes in
service at that moment. The shared core (``decide``, the recorded policy and parameters) is
asked where the task goes, and a master running that same function must have chosen the
same node, decision after decision, with no race to leave out.

A difference is named. The master decides from its watch's copy of the store, which may
not yet hold the ends committed just before (after the task's creation, which it had seen,
for a first placement soon after it or of a task that fitted when created; else, or in a
recording before format 4, those stamped or committed in the last ``WATCH_LAG`` seconds; the
latest committed of them, as a watch delivers in commit order): if deciding again without
some such ends gives the live node, the difference is "lag". Otherwise it is "unexplained":
the master and the core disagreed, which is what the check is for.

Not checked, and counted by reason: placements of policies that keep state across
decisions (``round_robin``'s cursor, random draws: only ``pure`` policies are decided
again), gang replicas (a gang is placed all or nothing by the pass), tasks with devices,
placements that evicted others (preemption). A recording before format 3 is not checked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from orchsim.scheduling import FILTERS, POLICIES, CapacityError, NodeMatrix, PreparedPolicy, decide
from orchsim.traces import load_orchlive_node_history, load_orchlive_nodes
from orchsim.traces.orchlive import RecordedAttempts, load_orchlive_attempts
from orchsim.traces.orchlive_latency import in_service

__all__ = ["WATCH_LAG", "DecisionCheck", "DecisionDifference", "check_decisions"]

#: Seconds before a placement within which a committed end may not yet have reached the master's watch.
WATCH_LAG = 0.25
#: The most ends one placement's lag is looked for among (the latest committed): a suffix each.
_LAG_ENDS = 32


@dataclass(frozen=True)
class DecisionDifference:
    """A live placement the core, on the rebuilt cluster, would have made elsewhere."""

    task_id: str
    recorded: str
    decided: str
    cause: str


@dataclass(frozen=True)
class DecisionCheck:
    """Live placements decided again: how many were compared, agreed, differed by lag, and were not checked."""

    policy: str
    compared: int
    agreed: int
    lag: int
    not_checked: dict[str, int] = field(default_factory=dict)
    differences: list[DecisionDifference] = field(default_factory=list)

    @property
    def unexplained(self) -> int:
        """Differences neither agreement nor the watch's lag accounts for."""
        return self.compared - self.agreed - self.lag

    def lines(self, limit: int | None = None) -> list[str]:
        """The report as text lines: the count, what was not checked, then every difference (the first ``limit``)."""
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(self.not_checked.items()))
        out = [
            f"decisions: {self.agreed}/{self.compared} live placements decided alike by the core ({self.policy}) "
            f"on the cluster the master saw; {self.lag} differ by the watch's lag, {self.unexplained} unexplained"
            + (f"; not checked: {skipped}" if skipped else "")
        ]
        shown = self.differences if limit is None else self.differences[:limit]
        out += [f"  {d.task_id}: live {d.recorded}, core {d.decided or '-'} ({d.cause})" for d in shown]
        if len(shown) < len(self.differences):
            out.append(f"  ... and {len(self.differences) - len(shown)} more (all in replay_check.txt: --out)")
        return out


def _unchecked_policy(policy: str, sample: str | dict[str, Any] | None) -> str | None:
    """Why none of the policy's placements can be decided again, or None.

    A policy not registered ``pure=True`` may keep state across decisions; with node
    sampling, where a scan starts follows every decision the master made (its random
    stream, or the rotating start): neither can be rebuilt from the recording.
    """
    if not (POLICIES.spec(policy).pure if policy in POLICIES else False):
        return "placements (the policy may keep state across decisions: not registered pure=True)"
    if sample is not None and sample != "all":
        return "placements (node sampling: where a scan starts follows every decision the master made)"
    return None


def _why_not_checked(rec: RecordedAttempts, k: int, unchecked: str | None, evicting: set[int]) -> str | None:
    """Why placement ``k`` is not decided again (see the module), or None."""
    if unchecked is not None:
        return unchecked
    if rec.gang[k]:
        return "gang replicas"
    if rec.devices[k]:
        return "with devices"
    if k in evicting:
        return "that evicted others"
    return None


def _evicting(rec: RecordedAttempts) -> set[int]:
    """Placements committed in the same transaction (revision) as a preempted attempt's end."""
    assert rec.assigned_event is not None and rec.end_event is not None
    preempted = {int(e) // 1000 for e, s in zip(rec.end_event, rec.state, strict=True) if s == "PREEMPTED" and e == e}
    return {k for k, e in enumerate(rec.assigned_event) if e == e and int(e) // 1000 in preempted}


def _service(history: list[tuple[float, str]], lost_grace: float) -> list[tuple[float, str]]:
    """A node's history with each loss moved to its lease's expiry: the master places nothing there after it."""
    return sorted((at - lost_grace if kind == "lost" else at, kind) for at, kind in history)


def check_decisions(
    directory: str | Path,
    policy: str,
    params: dict[str, object] | None = None,
    *,
    lost_grace: float = 0.0,
    filters: Mapping[str, Mapping[str, Any]] | None = None,
    sample: str | dict[str, Any] | None = None,
) -> DecisionCheck | None:
    """Decide every live placement of the recording in ``directory`` again under ``policy``.

    Returns None for a recording before format 3 (no event ids: no commit order to rebuild from).

    ``lost_grace``: the master's grace between a lease's expiry and the loss it declares
    (``policy.json``'s ``lost_grace``): a node is out of service from its lease's expiry.
    ``filters``, ``sample``: the master's filters and node sampling, as recorded.

    Raises:
        TraceError: a malformed recording (naming file, line and column).
    """
    ids, capacity, labels = load_orchlive_nodes(directory)
    history = {n: _service(h, lost_grace) for n, h in load_orchlive_node_history(directory).items()}
    rec = load_orchlive_attempts(directory)
    if rec.assigned_event is None or rec.end_event is None:
        return None
    matrix = NodeMatrix.from_capacities(capacity, ids=ids, labels=labels)
    prepared = PreparedPolicy(policy, params=dict(params or {}), filters=FILTERS.active(filters or {}), sample=sample)
    unchecked = _unchecked_policy(policy, sample)
    requests = [matrix.request_vector({r: float(v[k]) for r, v in rec.requests.items()}) for k in range(len(rec))]
    evicting, first = _evicting(rec), _first_placements(rec)
    held, fitted = dict[int, int](), set[int]()  # attempt -> its node while held; first attempts that fitted
    skipped, differences = Counter[str](), list[DecisionDifference]()
    for kind, k in _commit_order(rec, first):
        if kind == "end":
            if k in held:
                matrix.release(held.pop(k), requests[k])
            continue
        if kind == "create":
            _serving(matrix, ids, history, float(rec.submit[k]) if rec.submit is not None else np.nan)
            if decide(matrix, requests[k], prepared, explain=False).node_id is not None:
                fitted.add(k)
            continue
        why = _why_not_checked(rec, k, unchecked, evicting)
        if why is not None:
            skipped[why] += 1
        else:
            _serving(matrix, ids, history, float(rec.assigned_time[k]))
            decided = decide(matrix, requests[k], prepared, explain=False).node_id or ""
            cause = ""
            if decided != rec.node[k]:
                lag = _lag(rec, k, held, matrix, requests, prepared, first=bool(first[k]), fitted=k in fitted)
                cause = lag or "unexplained"
            differences.append(DecisionDifference(str(rec.task_id[k]), str(rec.node[k]), decided, cause))
        node = matrix.index_of(str(rec.node[k]))
        try:
            matrix.allocate(node, requests[k])
        except CapacityError:
            skipped["held nowhere (more than its node had free in the rebuilt cluster)"] += 1
            continue
        held[k] = node
    return _summary(policy, differences, skipped)


def _serving(matrix: NodeMatrix, ids: list[str], history: dict[str, list[tuple[float, str]]], at: float) -> None:
    """Mark schedulable the nodes in service at ``at`` (seconds), the rest not."""
    for i, nid in enumerate(ids):
        matrix.set_schedulable(i, in_service(history.get(nid, []), at))


def _summary(policy: str, decided: list[DecisionDifference], skipped: Counter[str]) -> DecisionCheck:
    """The check from every decision made again (``cause`` empty where the core agreed)."""
    lag = sum(d.cause.startswith("lag") for d in decided)
    agreed = sum(not d.cause for d in decided)
    return DecisionCheck(policy, len(decided), agreed, lag, dict(skipped), [d for d in decided if d.cause])


def _commit_order(rec: RecordedAttempts, first: np.ndarray) -> list[tuple[str, int]]:
    """Every creation, placement and end, ``("create" | "place" | "end", attempt)``, in commit order.

    At equal ids an end comes first. A creation (format 4) is listed once per task, for its
    first placed attempt (``first``): whether the task fitted then is what ``_lag`` needs to know.
    """
    steps: list[tuple[float, int, str, int]] = []
    for k in range(len(rec)):
        if rec.node[k] and not np.isnan(rec.assigned_event[k]):
            steps.append((float(rec.assigned_event[k]), 1, "place", k))
            if not np.isnan(rec.end_event[k]):
                steps.append((float(rec.end_event[k]), 0, "end", k))
            if first[k] and rec.created_event is not None and not np.isnan(rec.created_event[k]):
                steps.append((float(rec.created_event[k]), 0, "create", k))
    return [(kind, k) for _, _, kind, k in sorted(steps)]


def _first_placements(rec: RecordedAttempts) -> np.ndarray:
    """Per attempt: whether it is its task's first placement (no attempt of that task placed before it).

    One pass over the attempts (a recording may hold a million), not one per attempt.
    """
    assert rec.assigned_event is not None
    earliest: dict[str, float] = {}
    for task_id, event in zip(rec.task_id.tolist(), rec.assigned_event.tolist(), strict=True):
        if event == event and event < earliest.get(task_id, np.inf):  # nan: never placed
            earliest[task_id] = event
    return np.array(
        [e == e and e <= earliest[t] for t, e in zip(rec.task_id.tolist(), rec.assigned_event.tolist(), strict=True)],
        dtype=bool,
    )


def _lag(
    rec: RecordedAttempts,
    k: int,
    held: dict[int, int],
    matrix: NodeMatrix,
    requests: list[np.ndarray],
    prepared: PreparedPolicy,
    *,
    first: bool = False,
    fitted: bool = False,
) -> str | None:
    """A "lag: ..." cause if some ends the master may not have seen yet, still held, give the live node.

    A task's first placement: the master had seen the task's creation (``created_event``,
    format 4) through its watch, which delivers in commit order (it learns of new tasks only
    so, or from a snapshot read after them). So what it may not have seen are the ends
    committed after the creation and before the placement. That bound holds for any wait,
    and is used where the wait says nothing about the watch: placed within ``WATCH_LAG`` of
    the submission, or whenever the task fitted somewhere at its creation (``fitted``: a
    master that placed it later was that far behind, 0.42 s on a loaded CI host). A task
    that did not fit waited for an end the master had seen; a later attempt (the master
    mirrors some of its own writes, a requeue for a preemption, before its watch brings
    them); or a recording without the id: the ends of the last ``WATCH_LAG`` seconds, stamped
    then or committed then (after a placement stamped then, by the event order: a worker
    stamps an end when its process exits and reports it later, in a batch, and a loaded
    worker's report can commit well after its stamp).

    The watch delivers in commit order, so what the master had not yet seen is the *latest
    committed* of those ends: each such suffix is tried, from all of them (at most
    ``_LAG_ENDS``) to the last one alone (a gang's two replicas ended 21 ms apart; the master
    had seen the first end only).
    """
    assert rec.end_event is not None and rec.assigned_event is not None
    at, placed = float(rec.assigned_time[k]), float(rec.assigned_event[k])
    seen = _created_seen(rec, k, first, fitted)
    committed_after = _committed_after(rec) if seen != seen else None
    unseen = [
        j
        for j in range(len(rec))
        if j not in held
        and rec.node[j]
        and not np.isnan(rec.end_event[j])
        and rec.end_event[j] < placed
        and (
            rec.end_event[j] > seen
            if committed_after is None
            else at - WATCH_LAG <= max(float(rec.end[j]), committed_after[j])
        )
    ]
    recent = sorted(unseen, key=lambda j: float(rec.end_event[j]))[-_LAG_ENDS:]
    for first in range(len(recent)):
        suffix = recent[first:]
        trial = matrix.copy()
        for j in suffix:
            trial.allocate_unchecked(trial.index_of(str(rec.node[j])), list(requests[j]))
        if decide(trial, requests[k], prepared, explain=False).node_id == rec.node[k]:
            names = ", ".join(str(rec.task_id[j]) for j in suffix)
            return f"lag: the master had not yet seen the end of {names}"
    return None


def _created_seen(rec: RecordedAttempts, k: int, first: bool, fitted: bool) -> float:
    """The id of the task's creation (format 4) where it bounds what the master had seen (``_lag``), else ``nan``."""
    if rec.created_event is None or rec.submit is None or not first:
        return np.nan  # placed before: what requeued it may be the master's own, mirrored write
    if not (fitted or rec.assigned_time[k] - rec.submit[k] <= WATCH_LAG):
        return np.nan  # it waited for room: the end that made it may be seconds old, seen long before
    return float(rec.created_event[k])


def _committed_after(rec: RecordedAttempts) -> np.ndarray:
    """Per attempt, the latest placement time stamped before its end's commit (``-inf`` if none or no end).

    Event ids are commit order, and a placement's stamp precedes its commit, so an end
    committed after a placement's event committed after that placement's time stamp.
    """
    assert rec.assigned_event is not None and rec.end_event is not None
    placed = ~np.isnan(rec.assigned_event)
    order = np.argsort(rec.assigned_event[placed], kind="stable")
    events = rec.assigned_event[placed][order]
    if not len(events):
        return np.full(len(rec), -np.inf)
    latest = np.maximum.accumulate(rec.assigned_time[placed][order].astype(float))
    before = np.searchsorted(events, np.nan_to_num(rec.end_event, nan=-np.inf), side="left") - 1
    return np.where(before >= 0, latest[np.maximum(before, 0)], -np.inf)
