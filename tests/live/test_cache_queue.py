"""The master's queue kept in order as tasks come and go (``orchlive.cache.TaskTable``), not sorted per pass.

Whatever sequence of writes the watch brings (a task created, placed, requeued, its
priority changed, deleted), ``ClusterCache.pending`` must equal the queue sorted from
scratch: highest priority first, then by creation, then by id.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from orchlive.cache import ClusterCache, queue_key
from orchlive.models import Task, TaskState

START = datetime(2026, 1, 1, tzinfo=UTC)
STATES = [TaskState.PENDING, TaskState.ASSIGNED, TaskState.RUNNING, TaskState.COMPLETED]
# One write: task number, state, priority, creation second; or ("delete", number).
WRITES = st.lists(
    st.one_of(
        st.tuples(st.integers(0, 12), st.sampled_from(STATES), st.integers(-2, 2), st.integers(0, 3)),
        st.tuples(st.just(-1), st.integers(0, 12)),
    ),
    max_size=60,
)


def _task(number: int, state: TaskState, priority: int, second: int) -> Task:
    when = START + timedelta(seconds=second)
    return Task(id=f"t{number:02d}", name="q", state=state, priority=priority, creation_time=when)


@settings(max_examples=200, deadline=None)
@given(WRITES)
def test_the_kept_queue_is_the_queue_sorted_from_scratch(writes: list[tuple]) -> None:  # type: ignore[type-arg]
    cache = ClusterCache()
    for revision, write in enumerate(writes, start=1):
        if write[0] == -1:
            if revision % 2:
                cache.tasks.pop(f"t{write[1]:02d}", None)
            elif f"t{write[1]:02d}" in cache.tasks:
                del cache.tasks[f"t{write[1]:02d}"]
            continue
        task = _task(*write)
        cache.tasks[task.id] = (task, revision)
    pending = [value for value in cache.tasks.values() if value[0].state == TaskState.PENDING]
    expected = sorted(pending, key=lambda value: queue_key(value[0]))
    assert cache.pending() == expected
    assert cache.tasks.pending_ids == {task.id for task, _ in expected}


def test_a_higher_priority_task_goes_ahead_and_a_placed_one_leaves() -> None:
    cache = ClusterCache()
    for number, priority, second in ((0, 0, 0), (1, 0, 1), (2, 5, 2), (3, 0, 1)):
        task = _task(number, TaskState.PENDING, priority, second)
        cache.tasks[task.id] = (task, number + 1)
    # t2 by priority; then t0 (second 0); t1 and t3 share second 1: by id.
    assert [task.id for task, _ in cache.pending()] == ["t02", "t00", "t01", "t03"]
    placed = _task(0, TaskState.ASSIGNED, 0, 0)
    cache.tasks[placed.id] = (placed, 9)
    assert [task.id for task, _ in cache.pending()] == ["t02", "t01", "t03"]
