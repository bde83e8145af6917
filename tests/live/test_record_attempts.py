"""How the recorder turns a task's events into attempts (no cluster needed: events as the API gives them)."""

from __future__ import annotations

from orchlive.record_rows import attempts as _attempts


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
