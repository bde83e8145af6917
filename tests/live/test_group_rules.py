"""The rules of gangs and dependencies on the master's side, without etcd: table tests on cached tasks.

``dependencies.verdict`` (held, may run, fail or skip), ``parent_state`` of a gang,
``gangs._verdict`` (a gang kept whole), ``GangPass.queue`` (a gang queued once, only whole),
and the client's DAG view.
"""

from __future__ import annotations

from typing import Any

import pytest

from orchlive.api.dags import dag_state
from orchlive.cache import ClusterCache
from orchlive.client.views import dag_view
from orchlive.dependencies import parent_state, verdict
from orchlive.gangs import GangPass, _verdict
from orchlive.models import Task, TaskState, replica_id

P, A, R, C, F, S = (TaskState[s] for s in ("PENDING", "ASSIGNED", "RUNNING", "COMPLETED", "FAILED", "SKIPPED"))


def _cache(*tasks: Task) -> ClusterCache:
    cache = ClusterCache()
    for revision, task in enumerate(tasks, start=1):
        cache.tasks[task.id] = (task, revision)
    return cache


def _gang(gid: str, states: list[TaskState]) -> list[Task]:
    return [
        Task(id=replica_id(gid, i), name="g", gang=gid, replica=i, replicas=len(states), state=state)
        for i, state in enumerate(states)
    ]


@pytest.mark.parametrize(
    ("parents", "on", "if_fails", "expected"),
    [
        ([C, C], "success", "fail", None),  # every parent completed: it may run
        ([C, R], "success", "fail", P),  # one still running: held
        ([C, F], "success", "fail", F),  # a parent failed: it fails...
        ([C, F], "success", "skip", S),  # ...or is skipped
        ([R, F], "success", "skip", S),  # settled at once, not after the running one
        ([S, C], "success", "fail", F),  # a skipped parent did not complete either
        ([F, S], "completion", "fail", None),  # on completion: ended at all is enough
        ([F, A], "completion", "fail", P),
    ],
)
def test_a_childs_verdict(parents: list[TaskState], on: str, if_fails: str, expected: TaskState | None) -> None:
    made = [Task(id=f"p{i}", name=f"p{i}", state=state) for i, state in enumerate(parents)]
    child = Task(id="c", name="c", after=[t.id for t in made], on=on, if_parent_fails=if_fails)  # type: ignore[arg-type]
    state, why = verdict(_cache(*made, child), child)
    assert state == expected, why
    if state == P:
        assert why.startswith("waiting for parent task(s): ")
    elif state is not None:
        assert why.startswith(f"{state.value.lower()}: parent task ")


def test_a_missing_parent_counts_as_failed() -> None:
    child = Task(id="c", name="c", after=["gone"], if_parent_fails="skip")
    assert verdict(_cache(child), child) == (S, "skipped: parent task gone no longer exists")


@pytest.mark.parametrize(
    ("replicas", "expected"),
    [
        ([C, C, C], C),
        ([C, S, S], C),  # spares skipped: the gang ran and completed
        ([C, F, C], F),
        ([R, C, C], R),
        ([P, P, P], P),
        ([S, S], S),
    ],
)
def test_a_gang_parents_state(replicas: list[TaskState], expected: TaskState) -> None:
    assert parent_state(_cache(*_gang("g0", replicas)), "g0") == expected


@pytest.mark.parametrize(
    ("replicas", "target", "movers"),
    [
        ([R, R, R], None, []),  # whole: nothing to do
        ([R, R, S], None, []),  # running with a spare
        ([R, F, R], F, [0, 2]),  # a replica failed: the others fail with it
        ([C, F, C], None, []),  # all ended: nothing moves a gang any more
        ([R, P, R], P, [0, 2]),  # a replica back in the queue: the rest follows
        ([C, P, S], P, [0, 2]),  # even those that completed or were spare: the gang runs again whole
        ([P, P, P], None, []),
    ],
)
def test_a_gang_is_kept_whole(replicas: list[TaskState], target: TaskState | None, movers: list[int]) -> None:
    found = _verdict("g0", _gang("g0", replicas))
    if target is None:
        assert found is None
        return
    assert found is not None
    state, why, moved = found
    assert (state, [t.replica for t in moved]) == (target, movers)
    assert why.startswith("gang g0: replica 1 failed" if target == F else "gang g0 requeued: replica 1")


def test_a_gang_is_queued_once_and_only_whole() -> None:
    whole = _gang("g0", [P, P])
    broken = _gang("g1", [P, R])
    single = Task(id="t", name="t")
    pending = {t.id: (t, 1) for t in [*whole, broken[0], single]}  # g1's replica 1 is not pending
    gangs = GangPass(None, None, pending)  # type: ignore[arg-type]
    assert gangs.queue(["g0", "g0-1", "g1", "t"]) == ["g0", "t"]
    assert gangs.any and gangs.gang_of("g0") == (2, 2) and gangs.gang_of("t") is None
    assert gangs.spread({"g0": "why"}) == {"g0": "why", "g0-1": "why"}


def test_the_dag_state_and_view() -> None:
    assert dag_state([Task(name="a", state=C), Task(name="b", state=S)]) == "COMPLETED"
    assert dag_state([Task(name="a", state=C), Task(name="b", state=F)]) == "FAILED"
    assert dag_state([Task(name="a", state=P), Task(name="b", state=P)]) == "PENDING"
    assert dag_state([Task(name="a", state=C), Task(name="b", state=P)]) == "RUNNING"
    dag: dict[str, Any] = {
        "id": "d1",
        "state": "RUNNING",
        "counts": {"RUNNING": 1, "PENDING": 2},
        "tasks": [
            {"id": "a1", "name": "extract", "state": "RUNNING", "node_id": "w1", "after": []},
            {"id": "g", "name": "train", "state": "PENDING", "after": ["a1"], "gang": "g", "replica": 0, "reason": "x"},
            {"id": "g-1", "name": "train", "state": "PENDING", "after": ["a1"], "gang": "g", "replica": 1},
        ],
    }
    lines = dag_view(dag).splitlines()
    assert lines[0] == "dag/d1   RUNNING   (1 RUNNING, 2 PENDING)"
    assert [line.split()[:5] for line in lines[2:]] == [
        ["a1", "extract", "RUNNING", "w1", "<none>"],
        ["g", "train[0]", "PENDING", "<none>", "extract"],
        ["g-1", "train[1]", "PENDING", "<none>", "extract"],
    ]
