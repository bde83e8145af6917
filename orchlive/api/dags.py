"""``/api/v1/dags``: submit tasks that wait for each other, see a DAG's state, cancel it.

A DAG is submitted at once (``POST``: its tasks name their parents in ``after`` by name
within the submission, or by id or unique name among existing tasks); a cycle, an unknown
or ambiguous parent is one 422 naming the field. ``GET`` shows every task of the DAG (a
task submitted alone with ``after`` joins its first parent's DAG, and a root submitted
alone is the DAG of its own id). ``DELETE`` removes the DAG's tasks (running ones are stopped).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from orchlive import transitions
from orchlive.api.deps import StoreDep
from orchlive.api.idempotency import IdempotencyKey, keyed_id, replayed
from orchlive.api.tasks import check_runnable, unprocessable
from orchlive.limits import MAX_SUBMIT_RECORDS, Name
from orchlive.models import Task, TaskCreate, TaskPublic, TaskState
from orchlive.store import Store
from orchlive.submission import SubmissionError, build_tasks, new_id
from orchsim.scheduling.dependencies import CycleError, topological_order

router = APIRouter(prefix="/api/v1/dags", tags=["dags"])
DagId = Annotated[str, Path(max_length=253)]


class DagCreate(BaseModel):
    """A DAG submission: its tasks, which may name each other in ``after``."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    tasks: Annotated[list[TaskCreate], Field(min_length=1, max_length=MAX_SUBMIT_RECORDS)]


class DagPublic(BaseModel):
    """A DAG as served: its state, the count of its tasks per state, and the tasks.

    ``state``: FAILED once a task failed; COMPLETED when every task ended and none failed
    (skipped ones counted in ``counts``); RUNNING while any task was placed or ended;
    PENDING before.
    """

    id: str
    state: str
    counts: dict[str, int]
    tasks: list[TaskPublic]


def dag_state(tasks: list[Task]) -> str:
    """The DAG's state from its tasks' (see ``DagPublic``)."""
    states = {task.state for task in tasks}
    if TaskState.FAILED in states:
        return "FAILED"
    if all(state.terminal for state in states):
        return "COMPLETED"
    return "PENDING" if states == {TaskState.PENDING} else "RUNNING"


def dag_public(dag: str, tasks: list[Task]) -> DagPublic:
    """The DAG's served view."""
    counts: dict[str, int] = {}
    for task in tasks:
        counts[task.state.value] = counts.get(task.state.value, 0) + 1
    return DagPublic(id=dag, state=dag_state(tasks), counts=counts, tasks=[TaskPublic.of(t) for t in tasks])


async def read_dag(store: Store, dag: str) -> list[Task]:
    """Every task of DAG ``dag`` (``dag`` field, or the root whose id it is): parents first, else in creation order."""
    found: list[Task] = []
    async for page, _ in store.scan(store.keys.tasks(), by_creation=True):
        for entry in page:
            task = Task.model_validate_json(entry.value)
            if task.dag == dag or task.id == dag or (task.gang == dag and task.gang is not None):
                found.append(task)
    index = {task.id: i for i, task in enumerate(found)}
    try:
        order = topological_order([[index[p] for p in task.after if p in index] for task in found])
    except CycleError:  # refused at submission; kept readable whatever etcd holds
        return found
    return [found[i] for i in order]


async def _replayed_dag(store: Store, key: str, body: DagCreate) -> DagPublic | None:
    """The DAG a first POST with ``key`` created (its first task found under the key's id), or None."""
    if await replayed(store, keyed_id(key, 1), body.tasks[0]) is None:
        return None
    dag = keyed_id(key)
    return dag_public(dag, await read_dag(store, dag))


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_dag(
    body: DagCreate, store: StoreDep, response: Response, idempotency_key: IdempotencyKey = None
) -> DagPublic:
    """Submit a DAG's tasks in one transaction; each starts PENDING and waits for its parents.

    With an ``Idempotency-Key``, a POST resent with the same key answers the first one's DAG
    with 200 and creates nothing (``orchlive.api.idempotency``).
    """
    key = f"dag:{idempotency_key}" if idempotency_key else None  # never the id of a task POSTed with the same key
    if key and (first := await _replayed_dag(store, key, body)) is not None:
        response.status_code = status.HTTP_200_OK
        return first
    for task in body.tasks:
        await check_runnable(task, store)
    dag = keyed_id(key) if key else new_id()
    ids = [keyed_id(key, i + 1) for i in range(len(body.tasks))] if key else None
    try:
        made = await build_tasks(store, body.tasks, dag=dag, ids=ids)
    except SubmissionError as err:
        raise unprocessable(err) from None
    try:
        return dag_public(dag, await transitions.create_tasks(store, made.tasks, made.edges))
    except transitions.ConflictError:
        if not key or (first := await _replayed_dag(store, key, body)) is None:
            raise
        response.status_code = status.HTTP_200_OK
        return first


@router.get("/{dag_id}")
async def get_dag(dag_id: DagId, store: StoreDep) -> DagPublic:
    """A DAG's state and its tasks; 404 if no task belongs to it."""
    tasks = await read_dag(store, dag_id)
    if not tasks:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"dag {dag_id} not found")
    return dag_public(dag_id, tasks)


@router.delete("/{dag_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_dag(dag_id: DagId, store: StoreDep) -> Response:
    """Delete every task of the DAG (its roots' trees); running ones are stopped."""
    tasks = await read_dag(store, dag_id)
    if not tasks:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"dag {dag_id} not found")
    for task in tasks:
        await transitions.remove_tree(store, task.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
