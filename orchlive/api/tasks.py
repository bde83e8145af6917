"""``/api/v1/tasks``: submit, list, inspect, delete tasks and read their logs.

Store errors (503) and conflicts (409) are answered by the app's exception handlers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from fastapi.responses import PlainTextResponse

from orchlive import transitions
from orchlive.api.deps import CreatesDep, StoreDep
from orchlive.api.errors import UNPROCESSABLE
from orchlive.api.idempotency import IdempotencyKey, keyed_id, replayed
from orchlive.models import NodeRecord, Task, TaskCreate, TaskPublic, TaskState
from orchlive.store import Store
from orchlive.submission import Submission, SubmissionError, build_tasks
from orchlive.transitions import ConflictError, CreateBatcher

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])
MAX_OFFSET = 10**9
TaskId = Annotated[str, Path(max_length=253)]


def _not_found(task_id: str) -> HTTPException:
    return HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"task {task_id} not found")


async def check_runnable(body: TaskCreate, store: Store) -> None:
    """Refuse a task without a command when every registered worker runs processes (422 naming ``command``).

    A container has its image's default command; a process has none, so such a task
    could only fail once placed. With no worker registered yet, or any docker worker,
    the task may still run and is accepted. Node records say their worker's runtime.
    """
    if body.command:
        return
    runtimes: set[str] = set()
    async for page, _ in store.scan(store.keys.nodes()):
        runtimes.update(NodeRecord.model_validate_json(entry.value).runtime for entry in page)
    if runtimes and runtimes <= {"process"}:
        message = "a command is required: every worker of this cluster runs processes, which have no default command"
        error = {"type": "missing", "loc": ["body", "command"], "msg": message, "input": body.command}
        raise HTTPException(status_code=UNPROCESSABLE, detail=[error])


def unprocessable(err: SubmissionError) -> HTTPException:
    """A submission's error as FastAPI's 422 shape (one item naming the field)."""
    error = {"type": "value_error", "loc": err.loc, "msg": str(err)}
    return HTTPException(status_code=UNPROCESSABLE, detail=[error])


def _answer(task: Task, status_code: int = status.HTTP_201_CREATED) -> Response:
    """``task`` as ``TaskPublic`` JSON, serialised once (FastAPI would dump, validate and dump a returned model)."""
    return Response(TaskPublic.of(task).model_dump_json(), status_code=status_code, media_type="application/json")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TaskPublic)
async def create_task(
    body: TaskCreate,
    store: StoreDep,
    creates: CreatesDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Submit a task; it starts PENDING and the master places it. The answer names its env, without values.

    A task without a command is refused (422) when every registered worker runs processes.
    A gang (``replicas`` > 1) is answered with its replica 0, whose id is the gang's; a task
    with ``after`` waits for those tasks (ids, or names that match one task), 422 if unknown.
    With an ``Idempotency-Key``, a POST resent with the same key answers the first one's
    task with 200 and creates nothing (``orchlive.api.idempotency``).
    """
    task_id = keyed_id(idempotency_key) if idempotency_key else None
    if task_id and (first := await replayed(store, task_id, body)) is not None:
        return _answer(first, status.HTTP_200_OK)
    await check_runnable(body, store)
    try:
        made = await build_tasks(store, [body], ids=[task_id] if task_id else None)
    except SubmissionError as err:
        raise unprocessable(err) from None
    try:
        return _answer(await _create(store, creates, made))
    except ConflictError:
        if not task_id or (first := await replayed(store, task_id, body)) is None:
            raise
        return _answer(first, status.HTTP_200_OK)  # a resent POST raced the first one, and lost


async def _create(store: Store, creates: CreateBatcher, made: Submission) -> Task:
    if len(made.tasks) == 1 and not made.edges:  # shares a transaction with the posts arriving meanwhile
        return await creates.create(made.tasks[0])
    return (await transitions.create_tasks(store, made.tasks, made.edges))[0]


@router.get("")
async def list_tasks(
    store: StoreDep,
    state: Annotated[TaskState | None, Query(description="only tasks in this state")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> list[TaskPublic]:
    """Tasks in creation order (as etcd recorded them), optionally filtered by state; ``[]`` when none.

    Read a page at a time, in creation order, and only as far as ``offset + limit``
    matching tasks: what one request costs is bounded by what it asks for, not by the
    number of tasks the cluster ever kept.
    """
    found: list[TaskPublic] = []
    skipped = 0
    async for page, _ in store.scan(store.keys.tasks(), by_creation=True):
        for entry in page:
            task = Task.model_validate_json(entry.value)
            if state is not None and task.state != state:
                continue
            if skipped < offset:
                skipped += 1
                continue
            found.append(TaskPublic.of(task))
            if len(found) == limit:
                return found
    return found


@router.get("/{task_id}")
async def get_task(task_id: TaskId, store: StoreDep) -> TaskPublic:
    """One task; 404 if unknown."""
    read = await transitions.read_task(store, task_id)
    if read is None:
        raise _not_found(task_id)
    return TaskPublic.of(read[0])


@router.delete("/{task_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_task(task_id: TaskId, store: StoreDep) -> Response:
    """Delete a task, the rest of its gang and every task waiting for it; running ones are stopped."""
    if not await transitions.remove_tree(store, task_id):
        raise _not_found(task_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{task_id}/logs", response_class=PlainTextResponse)
async def task_logs(task_id: TaskId, store: StoreDep) -> str:
    """The tail of the task's output (stdout and stderr), once it has finished."""
    if await store.get(store.keys.task(task_id)) is None:
        raise _not_found(task_id)
    entry = await store.get(store.keys.logs(task_id))
    return "" if entry is None else entry.value.decode(errors="replace")
