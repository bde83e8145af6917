"""How the recorder turns a task's events into attempts (no cluster needed: events as the API gives them)."""

from __future__ import annotations

from datetime import datetime

from orchlive.record_rows import attempts as _attempts
from orchlive.record_rows import node_event_rows, task_rows


def event(kind: str, stamp: str, **obj: object) -> dict[str, object]:
    return {"type": kind, "timestamp": stamp, "object": {"id": "t1", **obj}}


def test_a_preempted_attempt_ends_and_the_next_one_is_recorded() -> None:
    events = [
        event("task.assigned", "2026-12-02T10:00:00+00:00", attempts=1, node_id="w1"),
        event("task.running", "2026-12-02T10:00:01+00:00", start_time="2026-12-02T10:00:01+00:00"),
        event("task.preempted", "2026-12-02T10:00:05+00:00", reason="preempted by t9"),
        event("task.assigned", "2026-12-02T10:00:06+00:00", attempts=2, node_id="w2"),
        event("task.running", "2026-12-02T10:00:06+00:00", start_time="2026-12-02T10:00:06+00:00"),
        event("task.completed", "2026-12-02T10:00:09+00:00", end_time="2026-12-02T10:00:09+00:00", exit_code=0),
    ]
    first, second = _attempts(events)["t1"]
    assert (first["node"], first["state"], first["reason"], first["exit_code"]) == (
        "w1",
        "PREEMPTED",
        "preempted by t9",
        None,
    )
    assert first["end"].second == 5
    assert (second["node"], second["state"], second["exit_code"]) == ("w2", "COMPLETED", 0)


def test_every_node_event_is_a_row_in_time_order() -> None:
    def node(kind: str, second: int, node_id: str, state: str) -> dict[str, object]:
        stamp = f"2026-12-02T10:00:{second:02d}+00:00"
        return {"type": f"node.{kind}", "timestamp": stamp, "object": {"id": node_id, "state": state}}

    events = [
        node("joined", 1, "w1", "READY"),
        node("lost", 5, "w1", "NOT_READY"),
        {"type": "task.assigned", "timestamp": "2026-12-02T10:00:06+00:00", "object": {"id": "t1"}},
        node("joined", 7, "w1", "READY"),
        node("drained", 8, "w2", "DRAINING"),
        node("lost", 9, "w1", "NOT_READY"),
        node("joined", 3, "w2", "READY"),  # the stream's order is not always time order
    ]
    epoch = datetime.fromisoformat("2026-12-02T10:00:02+00:00")
    assert node_event_rows(events, epoch) == [
        ["w1", "-1.000000", "joined", "READY"],
        ["w2", "1.000000", "joined", "READY"],
        ["w1", "3.000000", "lost", "NOT_READY"],
        ["w1", "5.000000", "joined", "READY"],
        ["w2", "6.000000", "drained", "DRAINING"],
        ["w1", "7.000000", "lost", "NOT_READY"],
    ]


def test_a_gang_replica_and_a_dag_child_carry_their_structure() -> None:
    base = {"name": "t", "creation_time": "2026-12-02T10:00:00+00:00", "resources": {"cpu": 500}, "state": "PENDING"}
    replica = {**base, "id": "g-1", "gang": "g", "replica": 1, "replicas": 3, "min_replicas": 2}
    child = {**base, "id": "c", "after": ["p", "q"], "on": "completion", "if_parent_fails": "skip"}
    single = {**base, "id": "s"}
    epoch = datetime.fromisoformat("2026-12-02T10:00:00+00:00")
    rows = task_rows([replica, child, single], {}, ["cpu"], epoch)
    # TASK_COLUMNS (10), cpu_milli, reason, exit_code, then TASK_OPTIONAL (gang ... if_parent_fails)
    assert [r[13:20] for r in rows] == [
        ["g", "1", "3", "2", "", "", ""],
        ["", "", "", "", "p;q", "completion", "skip"],
        ["", "", "", "", "", "", ""],
    ]


def test_each_attempt_keeps_the_ids_of_the_events_that_opened_and_ended_it() -> None:
    """The ids compare in commit order: a time is stamped before its transaction commits."""
    stamps = [f"2026-12-02T10:00:0{s}+00:00" for s in range(5)]
    events = [
        event("task.created", stamps[0]) | {"id": 5000},
        event("task.assigned", stamps[0], attempts=1, node_id="w1") | {"id": 7001},
        event("task.rescheduled", stamps[1], reason="node w1 lost") | {"id": 9000},
        event("task.assigned", stamps[2], attempts=2, node_id="w2") | {"id": 9003},
        event("task.running", stamps[2], start_time=stamps[2]) | {"id": 9500},
        event("task.completed", stamps[3], end_time=stamps[3], exit_code=0) | {"id": 12002},
    ]
    tried = _attempts(events)
    assert [(a["assigned_event"], a["end_event"]) for a in tried["t1"]] == [(7001, 9000), (9003, 12002)]
    task = {"id": "t1", "name": "t", "creation_time": stamps[0], "resources": {"cpu": 500}, "state": "COMPLETED"}
    epoch = datetime.fromisoformat(stamps[0])
    rows = task_rows([task], tried, ["cpu"], epoch)
    # assigned, ended, and the task's creation (format 4)
    assert [r[-3:] for r in rows] == [["7001", "9000", "5000"], ["9003", "12002", "5000"]]
    # Events without ids (a stream that gave none): empty cells, and the reader sees nan.
    bare = task_rows([task], _attempts([{k: v for k, v in e.items() if k != "id"} for e in events]), ["cpu"], epoch)
    assert [r[-3:] for r in bare] == [["", "", ""], ["", "", ""]]
