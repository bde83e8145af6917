"""A submission turned into task records: a gang's replicas, a DAG's tasks and their parents resolved.

The API's ``POST /api/v1/tasks`` (one task, maybe a gang, maybe waiting for existing
tasks) and ``POST /api/v1/dags`` (several tasks that may wait for each other by name)
both come here, and ``transitions.create_tasks`` writes what this returns in one
transaction. Everything wrong with a submission is one ``SubmissionError`` naming the
field (the API's 422): an unknown parent, a name that matches several tasks, a cycle
(``orchsim.scheduling.dependencies``, the check scenario files get), too many records.

A gang of ``k`` replicas is ``k`` task records: replica 0 carries the gang's id (what the
client gets back and names in ``after`` or ``DELETE``), replica ``i`` the id
``<gang>-<i>``; each is an ordinary task to its worker, with ``ORCH_GANG``,
``ORCH_REPLICA`` and ``ORCH_REPLICAS`` in its environment.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from orchlive.limits import MAX_SUBMIT_RECORDS
from orchlive.models import Task, TaskCreate, now, replica_id
from orchlive.store import Store
from orchlive.transitions import read_task, record_size
from orchsim.scheduling.dependencies import CycleError, topological_order

__all__ = ["Submission", "SubmissionError", "build_tasks", "new_id"]

# Operations one create transaction may carry (etcd's default limit is 128):
# a put and an event per record, a put per dependency edge.
MAX_SUBMIT_OPS = 3 * MAX_SUBMIT_RECORDS
# Bytes of records and events one submission may write: a gang's placement carries them all
# again in one transaction, and etcd refuses a request over 1.5 MiB (the master's BATCH_BYTES).
MAX_SUBMIT_BYTES = 1024 * 1024


class SubmissionError(ValueError):
    """A submission that cannot be accepted; ``loc`` is the field's path (as in FastAPI's 422)."""

    def __init__(self, loc: Sequence[str | int], message: str) -> None:
        super().__init__(message)
        self.loc = list(loc)


class Submission:
    """The records to create: ``tasks`` (replicas expanded) and the ``(parent, child)`` edges to index."""

    def __init__(self, tasks: list[Task], edges: list[tuple[str, str]], leaders: list[str]) -> None:
        self.tasks = tasks
        self.edges = edges
        self.leaders = leaders  # per submitted body, its (replica 0's) id


def new_id() -> str:
    """A fresh task (or DAG) id, as ``Task`` makes them."""
    return uuid.uuid4().hex[:16]


class _Parents:
    """Resolves ``after`` entries: a name of the same submission, an existing task id, or a unique existing name."""

    def __init__(self, store: Store, names: dict[str, int]) -> None:
        self.store = store
        self.names = names
        self._by_name: dict[str, list[str]] | None = None

    async def existing(self, ref: str, loc: list[str | int]) -> Task:
        read = await read_task(self.store, ref)
        if read is None:
            ids = (await self._name_index()).get(ref, [])
            if len(ids) > 1:
                raise SubmissionError(loc, f"parent {ref!r} names {len(ids)} tasks; give its id")
            read = await read_task(self.store, ids[0]) if ids else None
        if read is None:
            raise SubmissionError(loc, f"unknown parent {ref!r}: no task has this id or name")
        return read[0]

    async def _name_index(self) -> dict[str, list[str]]:
        if self._by_name is None:
            self._by_name = {}
            async for page, _ in self.store.scan(self.store.keys.tasks()):
                for entry in page:
                    task = Task.model_validate_json(entry.value)
                    if task.replica == 0:
                        self._by_name.setdefault(task.name, []).append(task.id)
        return self._by_name


async def build_tasks(
    store: Store, bodies: list[TaskCreate], *, dag: str | None = None, ids: list[str] | None = None
) -> Submission:
    """The records of ``bodies`` (one submission); ``dag``: a DAG submission's id (names resolve within it).

    ``ids``: each body's (leader's) id, chosen by the caller (an ``Idempotency-Key``'s); fresh ones by default.

    Raises:
        SubmissionError: naming the field at fault.
    """
    prefix: list[str | int] = ["body", "tasks"] if dag is not None else ["body"]
    records = sum(body.replicas for body in bodies)
    edges_count = sum(len(body.after) for body in bodies)
    if 2 * records + edges_count > MAX_SUBMIT_OPS:
        message = f"{records} task records (replicas counted) and {edges_count} dependencies"
        raise SubmissionError(prefix, f"{message}: 2 x records + dependencies must be at most {MAX_SUBMIT_OPS}")
    names: dict[str, int] = {}
    if dag is not None:
        for i, body in enumerate(bodies):
            if body.name in names:
                raise SubmissionError([*prefix, i, "name"], f"{body.name!r} names two tasks of this DAG")
            names[body.name] = i
    leaders = list(ids) if ids is not None else [new_id() for _ in bodies]
    parents = await _resolve(store, bodies, names, leaders, prefix)
    _check_cycles(bodies, names, prefix)
    created = now()
    tasks: list[Task] = []
    edges: list[tuple[str, str]] = []
    for i, body in enumerate(bodies):
        ids, first = parents[i]
        edges += [(parent, leaders[i]) for parent in ids]
        tasks += _records(body, leaders[i], ids, dag or first, created)
    size = sum(2 * record_size(task) for task in tasks)
    if size > MAX_SUBMIT_BYTES:
        message = f"the submission's {len(tasks)} task records would take about {size} bytes in etcd"
        raise SubmissionError(prefix, f"{message}; at most {MAX_SUBMIT_BYTES} (fewer replicas, or a shorter command)")
    return Submission(tasks, edges, leaders)


async def _resolve(
    store: Store, bodies: list[TaskCreate], names: dict[str, int], leaders: list[str], prefix: list[str | int]
) -> list[tuple[list[str], str | None]]:
    """Per body: its parents' ids (a gang's as its id) and the DAG an outside parent belongs to."""
    lookup = _Parents(store, names)
    out = []
    for i, body in enumerate(bodies):
        ids: list[str] = []
        dag: str | None = None
        for j, ref in enumerate(body.after):
            loc = [*prefix, *([i] if len(prefix) > 1 else []), "after", j]
            if ref in names:
                ids.append(leaders[names[ref]])
                continue
            parent = await lookup.existing(ref, loc)
            ids.append(parent.gang or parent.id)
            dag = dag or parent.dag or parent.gang or parent.id
        out.append((list(dict.fromkeys(ids)), dag))
    return out


def _check_cycles(bodies: list[TaskCreate], names: dict[str, int], prefix: list[str | int]) -> None:
    """A cycle among the submission's own tasks (by name) is refused, naming it."""
    if not names:
        return
    inner = [[names[ref] for ref in body.after if ref in names] for body in bodies]
    try:
        topological_order(inner)
    except CycleError as err:
        path = " -> ".join(bodies[i].name for i in err.cycle)
        raise SubmissionError([*prefix, err.cycle[0], "after"], f"a cycle of dependencies: {path}") from None


def _records(body: TaskCreate, leader: str, parents: list[str], dag: str | None, created: datetime) -> list[Task]:
    """The task records of one body: one, or one per replica of a gang."""
    fields = body.model_dump() | {"after": parents, "dag": dag, "creation_time": created}
    if body.replicas == 1:
        return [Task(**fields, id=leader)]
    out = []
    for i in range(body.replicas):
        env = body.env | {"ORCH_GANG": leader, "ORCH_REPLICA": str(i), "ORCH_REPLICAS": str(body.replicas)}
        out.append(Task(**(fields | {"env": env}), id=replica_id(leader, i), gang=leader, replica=i))
    return out
