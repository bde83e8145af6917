"""Every live placement decided again by the core on the cluster rebuilt in commit order (format 3)."""

from __future__ import annotations

import json
from pathlib import Path

from orchsim.replay_decisions import check_decisions

HEADER = (
    "task_id,name,submit_time,node,devices,assigned_time,start_time,end_time,state,attempt,cpu_milli,memory_mib,"
    "reason,exit_code,gang,replica,replicas,min_replicas,after,on,if_parent_fails,assigned_event,end_event"
)
NODES = "node_id,labels,devices,joined,lost,drained,rejoined,cpu_milli,memory_mib\n" + "".join(
    f"{n},,,-1,,,,4000,4096\n" for n in "ab"
)


def attempt(
    task: str, submit: float, node: str, at: float, end: float, cpu: int, ids: tuple[int, int], gang: str = ""
) -> str:
    """One ``tasks.csv`` row: a completed attempt placed at ``at`` (event ``ids[0]``), ended at ``end`` (``ids[1]``)."""
    structure = f"{gang},0,2,," if gang else ",,,,"
    return f"{task},{task},{submit},{node},,{at},{at},{end},COMPLETED,1,{cpu},256,,0,{structure},,,{ids[0]},{ids[1]}"


def recording(tmp_path: Path, rows: list[str], *, nodes: str = NODES) -> Path:
    folder = tmp_path / "rec"
    folder.mkdir(exist_ok=True)
    (folder / "tasks.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    (folder / "nodes.csv").write_text(nodes)
    (folder / "policy.json").write_text(json.dumps({"policy": "bin_packing", "params": {}, "format": 3}))
    return folder


def rows(t2_end: float, t2_end_event: int, t4_node: str = "b") -> list[str]:
    """bin_packing on two equal nodes: t1..t3 (1000 millicores) fill a; t4 (1500) goes where it fits.

    t2's end is stamped at ``t2_end``; with ``t2_end_event`` above 6000 it was committed
    after t4's placement (event 6000, at 3.2 s): the master placed t4 with t2 still on a.
    """
    return [
        attempt("t1", 0.0, "a", 0.01, 9.0, 1000, (1000, 9000)),
        attempt("t2", 1.0, "a", 1.01, t2_end, 1000, (2000, t2_end_event)),
        attempt("t3", 2.0, "a", 2.01, 9.0, 1000, (3000, 9001)),
        attempt("t4", 3.19, t4_node, 3.2, 9.0, 1500, (6000, 9002)),
    ]


def test_the_cluster_is_rebuilt_in_commit_order_not_time_order(tmp_path: Path) -> None:
    # t2 ended at 3.0 by its stamp, before t4's placement at 3.2, but was committed after it:
    # a still held 3000 of 4000, so t4 (1500) could only go to b, as it did live.
    check = check_decisions(recording(tmp_path, rows(3.0, 7000)), "bin_packing")
    assert check is not None
    assert (check.compared, check.agreed, check.lag, check.unexplained) == (4, 4, 0, 0)
    assert not check.differences


def test_a_difference_is_lag_when_the_end_was_fresh_and_unexplained_otherwise(tmp_path: Path) -> None:
    # Committed before t4's placement (5500 < 6000): the core, counting it, puts t4 on a (fuller).
    # Stamped 0.2 s before the placement: the master's watch may not have had it -> lag.
    fresh = check_decisions(recording(tmp_path, rows(3.0, 5500)), "bin_packing")
    assert fresh is not None and (fresh.compared, fresh.agreed, fresh.lag) == (4, 3, 1)
    (difference,) = fresh.differences
    assert (difference.task_id, difference.recorded, difference.decided) == ("t4", "b", "a")
    assert difference.cause == "lag: the master had not yet seen the end of t2"
    # Ended 1.2 s before: the master knew; the core and the master disagree -> unexplained.
    old = check_decisions(recording(tmp_path, rows(2.0, 5500)), "bin_packing")
    assert old is not None and (old.agreed, old.lag, old.unexplained) == (3, 0, 1)
    assert old.differences[0].cause == "unexplained"
    assert "1 unexplained" in old.lines()[0]


def test_an_end_stamped_long_before_but_committed_just_before_is_lag(tmp_path: Path) -> None:
    """A loaded worker reports late: t2's end, stamped 1.2 s before t4's placement, was
    committed after t5's placement (stamped 3.1 s, 0.1 s before t4's): the master may not have
    seen it. Without t5 between them, the same end is unexplained (the test above)."""
    late = [*rows(2.0, 5500), attempt("t5", 3.09, "a", 3.1, 9.0, 100, (5000, 9003))]
    check = check_decisions(recording(tmp_path, late), "bin_packing")
    assert check is not None and (check.agreed, check.lag, check.unexplained) == (4, 1, 0)
    assert check.differences[0].cause == "lag: the master had not yet seen the end of t2"


def with_created(tmp_path: Path, rows: list[str], created: dict[str, int]) -> Path:
    """A format-4 recording: each row gains ``created_event`` (its task's ``task.created``)."""
    folder = recording(tmp_path, [f"{row},{created.get(row.split(',', 1)[0], '')}" for row in rows])
    tasks = folder / "tasks.csv"
    tasks.write_text(tasks.read_text().replace(HEADER, HEADER + ",created_event", 1))
    return folder


def test_with_the_tasks_creation_lag_is_what_was_committed_after_it(tmp_path: Path) -> None:
    """Format 4: the master had seen t4's creation (event 5000) when it placed t4 (event 6000).

    t2's end, stamped 1.2 s before t4's placement, was committed at 5500, after the creation:
    the master may not have seen it, whatever its stamp (lag). Committed at 4500, before the
    creation, it had seen it: the same difference is unexplained, although the stamp is recent.
    """
    late = check_decisions(with_created(tmp_path, rows(2.0, 5500), {"t4": 5000}), "bin_packing")
    assert late is not None and (late.agreed, late.lag, late.unexplained) == (3, 1, 0)
    assert late.differences[0].cause == "lag: the master had not yet seen the end of t2"
    seen = check_decisions(with_created(tmp_path, rows(3.1, 4500), {"t4": 5000}), "bin_packing")
    assert seen is not None and (seen.agreed, seen.lag, seen.unexplained) == (3, 0, 1)
    # A second attempt: what requeued it may be the master's own write, mirrored before its watch
    # had it, so its creation bounds nothing; the stamps do (t2's, 1.2 s old: unexplained).
    again = [*rows(2.0, 5500)[:3], attempt("t4", 0.5, "a", 0.6, 0.9, 1500, (1500, 1600))]
    again.append(attempt("t4", 0.5, "b", 3.2, 9.0, 1500, (6000, 9002)))
    second = check_decisions(with_created(tmp_path, again, {"t4": 500}), "bin_packing")
    assert second is not None and (second.lag, second.unexplained) == (0, 1)
    # Placed 1.7 s after its submission, although it fitted on b when created: the master was
    # that far behind (CI saw 0.42 s), and the creation still bounds what it had seen (lag).
    waited = [*rows(2.0, 5500)[:3], attempt("t4", 1.5, "b", 3.2, 9.0, 1500, (6000, 9002))]
    behind = check_decisions(with_created(tmp_path, waited, {"t4": 5000}), "bin_packing")
    assert behind is not None and (behind.lag, behind.unexplained) == (1, 0)


def test_a_task_that_waited_for_room_is_bounded_by_the_stamps(tmp_path: Path) -> None:
    """t4 (1500) fitted nowhere when created (a and b 1000 free each): it waited for an end the
    master had seen, so ends committed since its creation may be seconds old. t0 (b) and t2 (a)
    ended 1.1 and 1.2 s before its placement: the core puts t4 on a, the fuller, and the
    master's b is unexplained (as without the id)."""
    waited = [*rows(2.0, 5500)[:3], attempt("t4", 1.5, "b", 3.2, 9.0, 1500, (6000, 9002))]
    waited.append(attempt("t0", 2.04, "b", 2.05, 2.1, 3000, (3500, 5200)))
    check = check_decisions(with_created(tmp_path, waited, {"t4": 5000}), "bin_packing")
    assert check is not None and (check.compared, check.lag, check.unexplained) == (5, 0, 1)
    assert check.differences[0].task_id == "t4" and check.differences[0].decided == "a"


def test_lag_is_the_latest_committed_ends_the_master_had_not_seen(tmp_path: Path) -> None:
    """CI's case: a gang's replicas on a and b ended 20 ms apart, just before t3's placement.

    The master had seen a's end (committed first) but not b's: t3 went to b, the fuller then.
    Holding both ends gives a; only the latest committed one alone explains b.
    """
    nodes = "node_id,labels,devices,joined,lost,drained,rejoined,cpu_milli,memory_mib\na,,,-1,,,,4000,8192\n"
    nodes += "b,,,-1,,,,6000,16384\n"
    folder = recording(
        tmp_path,
        [
            attempt("g", 0.0, "a", 0.01, 2.90, 3000, (1000, 5000), gang="g"),
            attempt("g-1", 0.0, "b", 0.01, 2.92, 3000, (1001, 5500), gang="g"),
            attempt("t3", 2.91, "b", 2.93, 9.0, 100, (6000, 9000)),
        ],
        nodes=nodes,
    )
    check = check_decisions(folder, "bin_packing")
    assert check is not None and (check.compared, check.lag, check.unexplained) == (1, 1, 0)
    assert check.differences[0].cause == "lag: the master had not yet seen the end of g-1"


def test_another_policy_disagrees_and_stateful_gang_and_old_recordings_are_not_checked(tmp_path: Path) -> None:
    folder = recording(tmp_path, rows(3.0, 7000))
    spread = check_decisions(folder, "spread")  # fewest tasks: t2 and t3 would have gone to b
    assert spread is not None and spread.agreed < spread.compared and spread.unexplained >= 1
    robin = check_decisions(folder, "round_robin")  # its cursor is state the recording does not hold
    assert robin is not None and robin.compared == 0
    assert robin.not_checked == {"placements (the policy may keep state across decisions: not registered pure=True)": 4}
    gang = [*rows(3.0, 7000)[:3], attempt("t4", 3.19, "b", 3.2, 9.0, 1500, (6000, 9002), gang="t4")]
    ganged = check_decisions(recording(tmp_path, gang), "bin_packing")
    assert ganged is not None and ganged.compared == 3 and ganged.not_checked == {"gang replicas": 1}
    old = folder / "tasks.csv"
    old.write_text("\n".join(",".join(line.split(",")[:-2]) for line in old.read_text().splitlines()) + "\n")
    assert check_decisions(folder, "bin_packing") is None  # format 2: no event ids


def test_a_node_is_out_of_service_from_its_lease_expiry(tmp_path: Path) -> None:
    # spread (fewest tasks): t1 -> a, t2 -> b, t3 -> b (a has one); t2 and t3 end before t4.
    # b is declared lost at 5.0 with a 2 s grace: its lease expired at 3.0, so t4 (3.2) went to a...
    nodes = NODES.replace("b,,,-1,,,,", "b,,,-1,5.0,,,")
    spread = [
        attempt("t1", 0.0, "a", 0.01, 9.0, 1000, (1000, 9000)),
        attempt("t2", 1.0, "b", 1.01, 2.0, 1000, (2000, 2500)),
        attempt("t3", 2.0, "b", 2.01, 2.5, 1000, (3000, 3500)),
        attempt("t4", 3.19, "a", 3.2, 9.0, 1000, (6000, 9002)),
    ]
    check = check_decisions(recording(tmp_path, spread, nodes=nodes), "spread", lost_grace=2.0)
    assert check is not None and (check.compared, check.agreed) == (4, 4)
    # ...without the grace, b was in service at 3.2 and empty: spread would have chosen it.
    check = check_decisions(recording(tmp_path, spread, nodes=nodes), "spread", lost_grace=0.0)
    assert check is not None and [(d.task_id, d.decided) for d in check.differences] == [("t4", "b")]


def test_the_what_if_page_shows_the_decisions_and_each_difference(tmp_path: Path) -> None:
    from orchsim.report.replay_page import _decisions

    check = check_decisions(recording(tmp_path, rows(2.0, 5500)), "bin_packing")
    page = "".join(_decisions(check))
    assert "decisions: 3/4 live placements" in page and "<code>t4</code></td><td>b</td><td>a</td>" in page
    assert "unexplained" in page
    assert "no event ids" in "".join(_decisions(None))
