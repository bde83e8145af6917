"""``/api/v1/tasks``: submit, list, inspect, delete tasks and read their logs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi.responses import PlainTextResponse

from orchlive import transitions
from orchlive.api.deps import StoreDep, require_token
from orchlive.models import Task, TaskCreate, TaskState, now
from orchlive.store import StoreUnavailableError

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


def _unavailable(err: StoreUnavailableError) -> HTTPException:
    return HTTPException(status_code=status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"etcd unavailable: {err}")


@router.post("", status_code=status.HTTP_201_CREATED, dependencies=[Depends(require_token)])
async def create_task(body: TaskCreate, store: StoreDep) -> Task:
    """Submit a task; it starts PENDING and the master places it."""
    task = Task(**body.model_dump(), creation_time=now())
    record = task.model_dump(mode="json")
    try:
        applied, _ = await (
            store.txn()
            .expect_absent(store.keys.task(task.id))
            .put_json(store.keys.task(task.id), record)
            .event("task.created", record, now().isoformat())
            .commit()
        )
    except StoreUnavailableError as err:
        raise _unavailable(err) from err
    if not applied:  # a 64-bit id collision: vanishingly rare, but never overwrite
        raise HTTPException(status_code=status.HTTP_409_CONFLICT, detail="task id collision; retry")
    return task


@router.get("")
async def list_tasks(
    store: StoreDep,
    state: Annotated[TaskState | None, Query(description="only tasks in this state")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> list[Task]:
    """Tasks in creation order, optionally filtered by state; ``[]`` when there are none."""
    try:
        entries, _ = await store.range(store.keys.tasks())
    except StoreUnavailableError as err:
        raise _unavailable(err) from err
    tasks = [Task.model_validate_json(e.value) for e in entries]
    if state is not None:
        tasks = [t for t in tasks if t.state == state]
    tasks.sort(key=lambda t: (t.creation_time, t.id))
    return tasks[offset : offset + limit]


@router.get("/{task_id}")
async def get_task(task_id: str, store: StoreDep) -> Task:
    """One task; 404 if unknown."""
    try:
        read = await transitions.read_task(store, task_id)
    except StoreUnavailableError as err:
        raise _unavailable(err) from err
    if read is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"task {task_id} not found")
    return read[0]


@router.delete("/{task_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[Depends(require_token)])
async def delete_task(task_id: str, store: StoreDep) -> Response:
    """Delete a task; a running one is stopped by its worker."""
    try:
        removed = await transitions.remove(store, task_id)
    except StoreUnavailableError as err:
        raise _unavailable(err) from err
    if not removed:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"task {task_id} not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{task_id}/logs", response_class=PlainTextResponse)
async def task_logs(task_id: str, store: StoreDep) -> str:
    """The tail of the task's output (stdout and stderr), once it has finished."""
    try:
        if await store.get(store.keys.task(task_id)) is None:
            raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"task {task_id} not found")
        entry = await store.get(store.keys.logs(task_id))
    except StoreUnavailableError as err:
        raise _unavailable(err) from err
    return "" if entry is None else entry.value.decode(errors="replace")
