"""Gangs, DAGs and recorded failures of a live cluster's recording, as the simulator replays them.

A live gang of k replicas is k task records (replica 0's id is the gang's), each a row of
``tasks.csv`` with ``gang``, ``replica``, ``replicas`` and ``min_replicas``; the simulator's
gang is one task asking ``replicas`` x its request, all placed at once or none
(``Workload.gang``). So the replay keeps replica 0 of each gang and leaves the other
replicas out; the gang holds its nodes from its assignment to its last replica's end.

A DAG is each task's ``after`` (parent task ids), ``on`` and ``if_parent_fails``: the
simulator's ``Dependencies``. A parent that is a gang's replica stands for its gang; a
parent the replay left out (never placed, never ended) is dropped, with its edge.

A task that failed live (``FAILED`` with an exit code: the process failed) fails in the
replay too, after its recorded run: otherwise its children would run in the replay where
live they were failed or skipped. A task failed for lack of a parent fails there by the
same rule, not because it is told to.

Format-1 recordings have none of these columns: every task is a single one and no task
waits for another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orchsim.recording_format import TASK_OPTIONAL
from orchsim.traces.table import Table, text_column

__all__ = ["RecordedStructure", "gang_replica_rows", "recorded_structure", "structure_cells"]


@dataclass(frozen=True)
class RecordedStructure:
    """Per replayed task (``load_orchlive_tasks``' order): its gang, its parents, whether it fails.

    Attributes:
        gang: int32 ``(T, 2)``: replicas and min_replicas, or None (no gang recorded).
        parents: Per task, the indices of its parents (sorted), or None (no DAG recorded).
        on_success: bool ``(T,)``: waits for its parents to complete (else: to end at all).
        skip: bool ``(T,)``: a failed parent skips it (else: fails it).
        fails: bool ``(T,)``: its process failed live, so its replay fails after its run.
    """

    gang: np.ndarray | None
    parents: list[tuple[int, ...]] | None
    on_success: np.ndarray
    skip: np.ndarray
    fails: np.ndarray


def structure_cells(table: Table) -> dict[str, np.ndarray]:
    """``TASK_OPTIONAL``'s columns as text (all empty for a recording written before them)."""
    empty = np.full(len(table), "", dtype=object)
    return {c: text_column(table, c) if c in table.columns else empty for c in TASK_OPTIONAL}


def gang_replica_rows(table: Table) -> np.ndarray:
    """Per row (bool): a gang replica other than replica 0 (the replay keeps the gang as its replica 0)."""
    gang = structure_cells(table)["gang"]
    return (gang != "") & (gang != text_column(table, "task_id"))


def _sizes(cells: dict[str, np.ndarray], order: np.ndarray, table: Table) -> np.ndarray | None:
    """``(replicas, min_replicas)`` of the chosen rows, or None if no row is a gang."""
    if not (cells["gang"][order] != "").any():
        return None
    sizes = np.ones((len(order), 2), dtype=np.int32)
    for k, row in enumerate(order):
        if cells["gang"][row]:
            try:
                replicas = int(cells["replicas"][row])
                least = int(cells["min_replicas"][row] or replicas)
            except ValueError:
                problem = "a gang's replicas and min_replicas must be whole numbers"
                raise table.error(int(row), "replicas", problem) from None
            sizes[k] = (replicas, least)
    return sizes


def _parents(cells: dict[str, np.ndarray], order: np.ndarray, ids: np.ndarray) -> list[tuple[int, ...]] | None:
    """Per chosen row, its parents' positions in ``order`` (a replica's id stands for its gang)."""
    if not (cells["after"][order] != "").any():
        return None
    position = {str(ids[row]): k for k, row in enumerate(order)}
    gang_of = {str(t): str(g) for t, g in zip(ids, cells["gang"], strict=True) if g}
    parents = []
    for row in order:
        named = [p for p in str(cells["after"][row]).split(";") if p]
        found = {position.get(gang_of.get(p, p)) for p in named}
        parents.append(tuple(sorted(k for k in found if k is not None)))
    return parents


def recorded_structure(table: Table, order: np.ndarray) -> RecordedStructure:
    """The structure of the rows ``order`` (the replayed tasks, sorted as replayed) of ``tasks.csv``."""
    cells = structure_cells(table)
    ids = text_column(table, "task_id")
    states = text_column(table, "state")[order]
    codes = text_column(table, "exit_code")[order] if "exit_code" in table.columns else np.full(len(order), "")
    return RecordedStructure(
        gang=_sizes(cells, order, table),
        parents=_parents(cells, order, ids),
        on_success=cells["on"][order] != "completion",
        skip=cells["if_parent_fails"][order] == "skip",
        fails=(states == "FAILED") & (codes != "") & (codes != "0"),
    )
