"""The key layout of one cluster in etcd, in one place (see ``orchlive.store`` for what each key holds).

Kept apart from ``store`` so that the layout can be read, and used to build keys, without
the etcd client.
"""

from __future__ import annotations

import uuid

__all__ = ["Keys"]


class Keys:
    """The key layout, in one place."""

    def __init__(self, prefix: str = "/orch") -> None:
        self.prefix = prefix.rstrip("/")

    def tasks(self) -> str:
        return f"{self.prefix}/tasks/"

    def task(self, task_id: str) -> str:
        return f"{self.prefix}/tasks/{task_id}"

    def nodes(self) -> str:
        return f"{self.prefix}/nodes/"

    def node(self, node_id: str) -> str:
        return f"{self.prefix}/nodes/{node_id}"

    def alive_all(self) -> str:
        return f"{self.prefix}/alive/"

    def alive(self, node_id: str) -> str:
        return f"{self.prefix}/alive/{node_id}"

    def allocs(self) -> str:
        return f"{self.prefix}/alloc/"

    def alloc(self, node_id: str) -> str:
        return f"{self.prefix}/alloc/{node_id}"

    def released_all(self) -> str:
        return f"{self.prefix}/released/"

    def released(self, node_id: str) -> str:
        """What the node's tasks gave back (``orchlive.releases``): the allocation is ``alloc`` minus this."""
        return f"{self.prefix}/released/{node_id}"

    def assignments(self, node_id: str | None = None) -> str:
        return f"{self.prefix}/assign/" if node_id is None else f"{self.prefix}/assign/{node_id}/"

    def assignment(self, node_id: str, task_id: str) -> str:
        return f"{self.prefix}/assign/{node_id}/{task_id}"

    def children(self, parent_id: str) -> str:
        """The dependency index: ``children(p) + child`` exists while ``child`` waits on (or waited on) ``p``."""
        return f"{self.prefix}/deps/{parent_id}/"

    def child(self, parent_id: str, child_id: str) -> str:
        return f"{self.prefix}/deps/{parent_id}/{child_id}"

    def events(self) -> str:
        return f"{self.prefix}/events/"

    def new_event(self) -> str:
        return f"{self.prefix}/events/{uuid.uuid4().hex}"

    def logs(self, task_id: str) -> str:
        return f"{self.prefix}/logs/{task_id}"

    def leader(self) -> str:
        return f"{self.prefix}/leader"

    def root(self) -> str:
        return f"{self.prefix}/"

    def mirrored(self) -> tuple[str, ...]:
        """The prefixes a master mirrors (never events or logs: they grow with history, not with the cluster)."""
        return (self.tasks(), self.nodes(), self.alive_all(), self.allocs(), self.released_all(), self.assignments())

    @staticmethod
    def last(key: str) -> str:
        """The last path segment of a key (an id)."""
        return key.rsplit("/", 1)[-1]
