"""What a node's finished tasks gave back, kept apart from its ledger (issue 13's lost placements).

A placement batch compares the revision of each node's ledger (``PREFIX/alloc/<node>``), so
that two masters can never both fill the same room. When finish reports wrote that ledger
too, every task ending on a node made the master's next batch for that node lose its
compare-and-swap: the batch was re-read and the pass decided again over the whole queue.
So the two directions live in two keys:

* the ledger (``Ledger``) counts what was **placed**: only placements add to it (a release
  takes out a task's device grants, the one thing a difference cannot express);
* ``PREFIX/released/<node>`` (``Released``) counts what was **given back**: releases
  (finish, requeue, preemption, delete) add to it, under their own compare-and-swap.

The allocation is their difference (``allocation``). Both only grow, so a placement decided
on an older ``Released`` saw less room than there is, never more: it needs no compare on it,
and a finish report can no longer make a placement lose. The ledger's rule that nothing goes
below 0 holds as before: a release gives back nothing when every placed task was already
released (a task written ASSIGNED without its ledger, by a faulty writer), and never more of
a resource than was placed (``Released.release``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchlive.models import Ledger, Task

__all__ = ["DRIFT", "KnownTotals", "Release", "Released", "allocation", "drop_grants"]

# Float amounts are summed on both sides by the very same numbers; what drift is left
# between the two sums is a few ulps, read as 0 (as ``Ledger.remove`` does).
DRIFT = 1e-9


@dataclass
class Released:
    """The totals given back on one node: an amount per resource name, and how many tasks.

    Stored as ``{"allocated": {"cpu": 500, "memory": 256}, "count": 3}`` (the ledger's layout).
    A node without the key has released nothing (ledgers written before this key load as
    they were: their totals were already net).
    """

    allocated: dict[str, int | float] = field(default_factory=dict)
    count: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Released:
        return cls(dict(data.get("allocated", {})), int(data.get("count", 0)))

    def to_json(self) -> dict[str, Any]:
        return {"allocated": dict(self.allocated), "count": self.count}

    def copy(self) -> Released:
        return Released(dict(self.allocated), self.count)

    def release(self, task: Task, placed: Ledger) -> bool:
        """Count ``task``'s request as given back, against ``placed`` (the node's ledger as read).

        Returns False, changing nothing, when ``placed`` counts no task beyond those already
        released: there is nothing to give back. No amount passes what was placed, so the
        allocation never goes below 0. ``placed`` may be older than the ledger (it only grows):
        then the bound is tighter, never looser.
        """
        if self.count >= placed.count:
            return False
        for name, amount in task.resources.items():
            if amount:
                self.allocated[name] = min(self.allocated.get(name, 0) + amount, placed.allocated.get(name, 0))
        self.count += 1
        return True

    def within(self, task: Task, placed: Ledger) -> bool:
        """Whether ``release(task, placed)`` gives back all of ``task``'s request, reaching no bound of ``placed``.

        Then it gives back the same against any newer ledger (a ledger only grows).
        """
        if self.count >= placed.count:
            return False
        have, bound = self.allocated, placed.allocated
        asked = ((name, amount) for name, amount in task.resources.items() if amount)
        return all(have.get(name, 0) + amount <= bound.get(name, 0) for name, amount in asked)


@dataclass
class KnownTotals:
    """A node's ledger and releases as this process last read or wrote them, kept between its releases.

    A worker keeps its own node's (``transitions.keep_totals``): it is the one that releases
    there, so a report can release against what it knows without reading both keys first.
    That is exact when no bound is reached (``Released.within``): the ledger kept is a lower
    bound of the current one, since only placements add to it, and the release compares the
    ``released`` key's revision as before, so a release by anyone else makes it lose and
    forget (the next one reads). A task with devices, or a node whose ledger holds device
    grants, is always read: releasing a device's share writes the ledger itself.
    """

    placed: Ledger | None = None
    released: Released | None = None
    revision: int = 0

    def usable(self, tasks: list[Task]) -> tuple[Ledger, Released, int] | None:
        """The ledger, a copy of the releases and their revision to release ``tasks`` against; None: read them."""
        if self.placed is None or self.released is None or self.placed.devices:
            return None
        if any(task.devices for task in tasks):  # placed after what was kept: its grants are not in it
            return None
        trial = self.released.copy()
        for task in tasks:
            if not trial.within(task, self.placed):
                return None
            trial.release(task, self.placed)
        return self.placed, self.released.copy(), self.revision

    def keep(self, placed: Ledger | None, released: Released, revision: int) -> None:
        """After a release that applied: the ledger it used (None: it wrote the ledger) and what it wrote."""
        self.placed, self.released, self.revision = placed, released.copy(), revision

    def forget(self) -> None:
        self.placed = self.released = None


@dataclass(frozen=True)
class Release:
    """What one release wrote: the node's ``released`` totals, and its ledger when devices left it (else None)."""

    released: Released
    ledger: Ledger | None = None


def allocation(placed: Ledger, released: Released | None) -> Ledger:
    """What the node holds now: ``placed`` minus ``released``, never below 0; the devices are ``placed``'s.

    The result is a view (its devices are ``placed``'s own mapping): read it, do not change it.
    """
    if released is None or (not released.count and not released.allocated):
        return placed
    amounts: dict[str, int | float] = {}
    for name, amount in placed.allocated.items():
        left = amount - released.allocated.get(name, 0)
        amounts[name] = 0 if left < DRIFT else left
    return Ledger(amounts, max(placed.count - released.count, 0), placed.devices)


def drop_grants(placed: Ledger, task_id: str) -> bool:
    """Take ``task_id``'s device grants out of ``placed`` (in place); True if it held any.

    A release must then write the ledger too, comparing its revision: a device's share
    is per task, not a total a difference can give back.
    """
    held = [kind for kind, grants in placed.devices.items() if task_id in grants]
    for kind in held:
        del placed.devices[kind][task_id]
        if not placed.devices[kind]:
            del placed.devices[kind]
    return bool(held)
