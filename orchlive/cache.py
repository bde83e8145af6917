"""The cluster as mirrored from etcd: what the master schedules from and what the API shows of nodes.

The master keeps one ``ClusterCache`` up to date through a watch; the API builds one from
a single consistent read (``read_nodes``). Both derive a node's public view through the
same ``ClusterCache.node_view`` (and so through ``models.node_public``): they cannot
disagree on a node's state, allocation or tasks.
"""

from __future__ import annotations

import json
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, KeysView
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from orchlive.models import (
    STANDARD_RESOURCES,
    Ledger,
    NodePublic,
    NodeRecord,
    Task,
    TaskState,
    node_public,
    resource_order,
)
from orchlive.releases import Release, Released, allocation
from orchlive.store import Entry, Keys, Store, WatchEvent

__all__ = ["ClusterCache", "TaskTable", "queue_key", "read_cache", "read_nodes"]


def _beat_time(raw: bytes) -> datetime | None:
    """The time an ``alive`` key carries (its last heartbeat), or None if unreadable."""
    try:
        return datetime.fromisoformat(raw.decode())
    except ValueError:
        return None


def queue_key(task: Task) -> tuple[int, datetime, str]:
    """A pending task's place in the queue: highest priority first, then by ``queue_time`` (the simulator's order).

    ``queue_time`` is its creation, or its eviction for a higher priority (``Task.queued_since``).
    """
    return (-task.priority, task.queue_time, task.id)


class TaskTable(dict[str, tuple[Task, int]]):
    """Tasks by id (task, mod revision) that also keep the PENDING ones in queue order.

    The master's pass reads only the pending tasks; finished ones stay in the table (the
    API's ``/metrics`` counts them) but cost the pass nothing, so its cost follows the
    queue, not every task the cluster ever ran. The queue is kept sorted as tasks enter
    and leave it (``queue_key``; a binary search each), so a pass does not sort the whole
    queue again: what each change costs no longer grows with the backlog's sort.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__()
        self._keys: dict[str, tuple[int, datetime, str]] = {}  # each pending task's queue_key
        self._order: list[tuple[int, datetime, str]] = []  # the pending tasks' keys, sorted
        for task_id, value in dict(*args, **kwargs).items():  # type: ignore[arg-type]
            self[task_id] = value

    def __setitem__(self, task_id: str, value: tuple[Task, int]) -> None:
        super().__setitem__(task_id, value)
        if value[0].state == TaskState.PENDING:
            key = queue_key(value[0])
            if self._keys.get(task_id) != key:
                self._leave(task_id)
                self._keys[task_id] = key
                insort(self._order, key)
        else:
            self._leave(task_id)

    def __delitem__(self, task_id: str) -> None:
        super().__delitem__(task_id)
        self._leave(task_id)

    def pop(self, task_id: str, *default: object) -> object:  # type: ignore[override]
        self._leave(task_id)
        return super().pop(task_id, *default)

    def _leave(self, task_id: str) -> None:
        """``task_id`` is no longer pending (or its key changed): out of the queue."""
        key = self._keys.pop(task_id, None)
        if key is not None:
            del self._order[bisect_left(self._order, key)]

    @property
    def pending_ids(self) -> KeysView[str]:
        """The ids of the PENDING tasks (those with a queue key)."""
        return self._keys.keys()

    def queue(self) -> list[tuple[Task, int]]:
        """The PENDING tasks (task, mod revision) in queue order."""
        return [self[key[2]] for key in self._order]


def _older(cached: tuple[object, int] | None, event: WatchEvent) -> bool:
    """Whether the cache already holds ``event``'s change or a later one: nothing to apply, nothing to wake.

    The master puts what its transactions wrote into the cache before the watch brings
    them. The watch then echoes those writes (same revision: the same value), and may
    still be delivering changes from before them (a worker's release of a ledger the
    master has since written over). Applied, an older change would roll the cache back
    and the next placement would compare a stale revision and lose; an echo would only
    wake a pass with nothing new to decide.
    """
    return cached is not None and cached[1] >= event.mod_revision


T = TypeVar("T")


def _mirror_totals(table: dict[str, tuple[T, int]], ident: str, event: WatchEvent, parse: Callable[..., T]) -> bool:
    """Apply a node's totals key (its ledger or its releases) to ``table``; False if already held or older."""
    if _older(table.get(ident), event):
        return False
    if event.kind == "put":
        table[ident] = (parse(json.loads(event.value)), event.mod_revision)
    else:
        table.pop(ident, None)
    return True


@dataclass
class ClusterCache:
    """Values and mod revisions mirrored from etcd.

    ``alive`` maps every node whose heartbeat key exists to the time of its last beat.
    """

    tasks: TaskTable = field(default_factory=TaskTable)
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    alive: dict[str, datetime | None] = field(default_factory=dict)
    # The last beat seen of every node, kept when its lease goes: a lost node's last heartbeat.
    last_beat: dict[str, datetime] = field(default_factory=dict)
    ledgers: dict[str, tuple[Ledger, int]] = field(default_factory=dict)  # what was placed: placements compare it
    released: dict[str, tuple[Released, int]] = field(default_factory=dict)  # what was given back (``releases``)
    gangs: set[str] = field(default_factory=set)  # gangs that may still need keeping whole (``orchlive.gangs``)
    # The tasks placed on each node, in the order seen: its inbox keys (the ledger only counts them).
    placed: dict[str, dict[str, None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.tasks, TaskTable):
            self.tasks = TaskTable(self.tasks)

    @classmethod
    def from_entries(cls, keys: Keys, entries: Iterable[Entry]) -> ClusterCache:
        """A cache of what one read returned (a range over the cluster prefix)."""
        cache = cls()
        for entry in entries:
            cache.apply(keys, WatchEvent("put", entry.key, entry.value, entry.mod_revision, entry.create_revision))
        return cache

    def apply(self, keys: Keys, event: WatchEvent) -> bool:
        """Apply one watch event; True if it may change what can be scheduled."""
        key, put = event.key, event.kind == "put"
        ident = Keys.last(key)
        if key.startswith(keys.tasks()):
            if _older(self.tasks.get(ident), event):
                return False
            if put:
                task = Task.model_validate_json(event.value)
                self.tasks[ident] = (task, event.mod_revision)
                if task.gang is not None:
                    self.gangs.add(task.gang)
            else:
                self.tasks.pop(ident, None)
        elif key.startswith(keys.nodes()):
            if put:
                self.nodes[ident] = NodeRecord.model_validate_json(event.value)
            else:
                self.nodes.pop(ident, None)
                self.last_beat.pop(ident, None)  # removed: a worker joining under its name starts afresh
        elif key.startswith(keys.alive_all()):
            joined = ident not in self.alive
            if put:
                self.alive[ident] = beat = _beat_time(event.value)
                if beat is not None:
                    self.last_beat[ident] = beat
                return joined  # a heartbeat's refresh changes nothing to schedule
            self.alive.pop(ident, None)
        elif key.startswith(keys.assignments()):
            self._inbox(key, put)
            return False  # the ledger, changed in the same transaction, is what wakes a pass
        elif key.startswith(keys.allocs()):
            return _mirror_totals(self.ledgers, ident, event, Ledger.from_json)
        elif key.startswith(keys.released_all()):
            return _mirror_totals(self.released, ident, event, Released.from_json)
        else:
            return False
        return True

    def _inbox(self, key: str, put: bool) -> None:
        node_id, task_id = key.rsplit("/", 2)[-2:]
        if put:
            self.placed.setdefault(node_id, {})[task_id] = None
        elif node_id in self.placed:
            self.placed[node_id].pop(task_id, None)
            if not self.placed[node_id]:
                del self.placed[node_id]

    def note_placed(self, node_id: str, task_id: str, *, put: bool = True) -> None:
        """The master's own placement or release, before the watch brings its inbox key."""
        self._inbox(f"{node_id}/{task_id}", put)

    def on_node(self, node_id: str) -> list[str]:
        """The ids of the tasks placed on ``node_id`` (ASSIGNED or RUNNING there), oldest first."""
        return list(self.placed.get(node_id, ()))

    def ledger(self, node_id: str) -> Ledger:
        """What the node holds: its ledger of placements minus its releases (empty if it has none yet).

        A view (``releases.allocation``): change ``ledgers`` or ``released``, never this.
        """
        entry, released = self.ledgers.get(node_id), self.released.get(node_id)
        return allocation(entry[0] if entry is not None else Ledger(), released[0] if released is not None else None)

    def note_release(self, node_id: str, release: Release, revision: int) -> None:
        """Keep what one of this process's releases wrote (``transitions.Release``), before the watch brings it."""
        self.released[node_id] = (release.released, revision)
        if release.ledger is not None:
            self.ledgers[node_id] = (release.ledger, revision)

    def node_view(self, node_id: str) -> NodePublic:
        """The node as the API, the events and the metrics show it."""
        return node_public(
            self.nodes[node_id],
            self.ledger(node_id),
            self.on_node(node_id),
            alive=node_id in self.alive,
            heartbeat=self.alive.get(node_id) or self.last_beat.get(node_id),
        )

    def schedulable(self, node_id: str) -> bool:
        node = self.nodes.get(node_id)
        return node is not None and node_id in self.alive and not node.cordoned

    def pending(self) -> list[tuple[Task, int]]:
        """The PENDING tasks in queue order: highest priority first, then by creation (the simulator's order)."""
        return self.tasks.queue()  # kept sorted as tasks come and go: not every task, and no sort per pass

    def resource_names(self, pending: list[tuple[Task, int]]) -> tuple[str, ...]:
        """Matrix rows: cpu, memory, gpu, and every other resource a node offers or ``pending`` asks for.

        gpu stays even on a cluster without GPUs, as it always has: policy parameters may
        weight it (``--policy-param weights.gpu=1`` is checked against cpu, memory and gpu).
        """
        names = set(STANDARD_RESOURCES)
        for node in self.nodes.values():
            names.update(node.capacity)
        for task, _ in pending:
            names.update(name for name, amount in task.resources.items() if amount)
        return resource_order(names)


async def read_cache(store: Store, prefixes: Iterable[str]) -> tuple[ClusterCache, int]:
    """A cache of what is under ``prefixes``, all read at one revision; and that revision.

    Only the prefixes named are read (in pages): never events or logs, which grow with the
    cluster's history, so that what a read costs does not grow with it.
    """
    keys = store.keys
    cache, revision = ClusterCache(), 0
    for prefix in prefixes:
        # An inbox key's value (the task as placed, for its worker) is not the cache's: its key says all.
        entries, revision = await store.range(prefix, revision=revision, keys_only=prefix == keys.assignments())
        for entry in entries:
            cache.apply(keys, WatchEvent("put", entry.key, entry.value, entry.mod_revision, entry.create_revision))
    return cache, revision


async def read_nodes(store: Store) -> dict[str, NodePublic]:
    """Every node that ever registered, by id, as ``ClusterCache.node_view`` shows it, from one snapshot.

    Records, heartbeats, ledgers, releases and inboxes, read at one revision; no task is read (a
    node's task list is its inbox).
    """
    keys = store.keys
    prefixes = (keys.nodes(), keys.alive_all(), keys.allocs(), keys.released_all(), keys.assignments())
    cache, _ = await read_cache(store, prefixes)
    return {node_id: cache.node_view(node_id) for node_id in sorted(cache.nodes)}
