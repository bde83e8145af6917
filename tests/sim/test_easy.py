"""EASY backfilling in the simulator: a later task may pass only if it does not delay the head."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchsim import run
from orchsim.scenario import parse_scenario


def job(at: float, cpu: int, duration: float) -> dict[str, Any]:
    return {"kind": "burst", "at": at, "count": 1, "resources": {"cpu": cpu}, "duration": duration}


# One node of 4000. A (3000) runs 0-100; B (4000, the head from t=1) can start when A ends;
# C (1000, 200 s) at t=2 fits now but would still run at 100 and delay B; D (1000, 50 s) at t=3
# ends at 53, before B's reservation.
WORKLOAD = [job(0, 3000, 100), job(1, 4000, 50), job(2, 1000, 200), job(3, 1000, 50)]


def starts(queue: str, workload: list[dict[str, Any]] = WORKLOAD, passes: str = "per_event") -> list[float]:
    s = parse_scenario(
        {
            "version": 1,
            "name": "easy",
            "policies": ["first_fit"],
            "scheduler": {"queue": queue, "passes": passes},
            "cluster": {"nodes": [{"count": 1, "capacity": {"cpu": 4000, "memory": 0}}]},
            "workload": workload,
        }
    )
    return run(s).tasks.start_time.tolist()


@pytest.mark.parametrize(
    ("queue", "expected"),
    [
        # fifo: B waits for A (100), C and D wait behind B (150).
        ("fifo", [0.0, 100.0, 150.0, 150.0]),
        # greedy backfill: C passes at 2 and delays B until C ends at 202; D starts when A ends.
        ("backfill", [0.0, 202.0, 2.0, 100.0]),
        # EASY: B keeps its reservation at 100; D (ends at 53) passes, C (ends at 202) does not.
        ("easy", [0.0, 100.0, 150.0, 3.0]),
    ],
)
def test_easy_protects_the_head_and_backfills_what_ends_before_it(queue: str, expected: list[float]) -> None:
    assert starts(queue) == pytest.approx(expected)


def test_a_task_may_pass_on_room_the_head_will_not_need() -> None:
    # Same, but B asks 2000: at 100 there are 4000 free, so C (1000 until 202) leaves B room: it
    # starts at 2 under EASY too, and B still starts at 100; D then has no room until 100.
    workload = [job(0, 3000, 100), job(1, 2000, 50), job(2, 1000, 200), job(3, 1000, 50)]
    assert starts("easy", workload) == pytest.approx([0.0, 100.0, 2.0, 100.0])


def test_the_shadow_counts_every_task_ending_at_the_shadow_time() -> None:
    # One node of 4000. A (2000) and B (1000) end at 100, C (500) at 300: 500 free now. H (2500,
    # t=1) fits at 100, when A and B have BOTH ended: 3500 free, 1000 extra. D (500 for 500 s,
    # t=2) fits now and uses 500 of the extra: it starts at 2, and H still starts at 100.
    # (Stopping at A, the first end that makes room for H, would see 2500 free, no extra, and
    # hold D back to 100: EASY's extra room depends on the shadow TIME, not on tie order.)
    workload = [job(0, 2000, 100), job(0, 1000, 100), job(0, 500, 300), job(1, 2500, 50), job(2, 500, 500)]
    assert starts("easy", workload) == pytest.approx([0.0, 0.0, 0.0, 100.0, 2.0])


def test_per_instant_passes_see_every_end_of_the_instant() -> None:
    # One node of 4000. A (2000) and B (2000) end at 100. H (4000, t=1) waits for both; X (2000
    # for 500 s, t=2) waits behind H. With passes per_instant both ends are in before the pass
    # at 100, so H (first in the queue) starts under greedy backfill too, and X after it; with
    # a pass per end, the pass after A's end lets X take A's room and holds H back to 600.
    workload = [job(0, 2000, 100), job(0, 2000, 100), job(1, 4000, 10), job(2, 2000, 500)]
    assert starts("backfill", workload, "per_instant") == pytest.approx([0.0, 0.0, 100.0, 110.0])
    assert starts("backfill", workload, "per_event") == pytest.approx([0.0, 0.0, 600.0, 100.0])
    assert starts("easy", workload, "per_instant") == pytest.approx([0.0, 0.0, 100.0, 110.0])


def swf_line(job_id: int, submit: int, run_time: int, processors: int) -> str:
    return " ".join(map(str, [job_id, submit, -1, run_time, processors, -1, -1, -1] + [-1] * 10))


def test_easy_with_swf_gangs_on_one_node_per_processor(tmp_path: Path) -> None:
    # 4 processors as 4 nodes. Job 1 (2 procs) 0-100; job 2 (4 procs) at 1 waits for 100;
    # job 3 (2 procs, 10 s) at 2 ends at 12: passes; job 4 (1 proc, 500 s) at 3 would hold a
    # node at 100: it must wait for job 2 (100-110) and starts at 110.
    log = tmp_path / "log.swf"
    lines = [swf_line(1, 0, 100, 2), swf_line(2, 1, 10, 4), swf_line(3, 2, 10, 2), swf_line(4, 3, 500, 1)]
    log.write_text("\n".join(lines) + "\n")
    s = parse_scenario(
        {
            "version": 1,
            "name": "swf",
            "policies": ["first_fit"],
            "scheduler": {"queue": "easy"},
            "cluster": {"nodes": [{"count": 4, "capacity": {"cpu": 1000, "memory": 0}}]},
            "workload": [{"kind": "swf", "path": str(log), "gangs": True}],
        }
    )
    tasks = run(s).tasks
    assert tasks.start_time.tolist() == pytest.approx([0.0, 100.0, 2.0, 110.0])
    assert (tasks.status == "completed").all()


NASA = Path(__file__).resolve().parents[2] / "data" / "swf" / "NASA-iPSC-1993-3.1-cln.swf.gz"


@pytest.mark.parametrize("queue", ["fifo", "backfill", "easy"])
def test_gangs_over_one_node_per_processor_match_the_space_shared_partition(queue: str) -> None:
    # The first 300 NASA jobs on 32 processors (crowded: most jobs wait): one partition of
    # 32,000 millicores, or 32 nodes of 1000 with each job a gang of its processors. A job fits
    # the partition exactly when as many nodes are free, so every start time must agree, under
    # each discipline (EASY's reservation included); jobs above 32 processors never run in either.
    def tasks(gangs: bool) -> Any:
        nodes = (
            {"count": 32, "capacity": {"cpu": 1000, "memory": 0}}
            if gangs
            else {"count": 1, "capacity": {"cpu": 32000, "memory": 0}}
        )
        s = parse_scenario(
            {
                "version": 1,
                "name": "nasa32",
                "policies": ["first_fit"],
                "scheduler": {"queue": queue},
                "cluster": {"nodes": [nodes]},
                "workload": [{"kind": "swf", "path": str(NASA), "limit": 300, "gangs": gangs}],
            }
        )
        return run(s).tasks

    partition, gangs = tasks(False), tasks(True)
    assert (partition.wait > 0).sum() > 100
    assert partition.status.tolist() == gangs.status.tolist()
    assert partition.start_time.fillna(-1).to_numpy() == pytest.approx(gangs.start_time.fillna(-1).to_numpy())
