"""A recording as an SWF log (``orchlive record --swf``): no cluster needed, a hand-written recording."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from orchlive.record_swf import swf_lines, write_swf
from orchsim.traces import load_swf

TASKS = (
    "task_id,name,submit_time,node,devices,assigned_time,start_time,end_time,state,attempt,cpu_milli,memory_mib,"
    "reason,exit_code\n"
    # t1: lost with a, completed on b (held b 6 -> 11); its wait runs to its FIRST placement (0.5 s).
    "t1,one,0,a,,0.5,0.6,6.0,RESCHEDULED,1,1000,256,node a lost,\n"
    "t1,one,0,b,,6.0,6.1,11.0,COMPLETED,2,1000,256,,0\n"
    # t2: 2500 millicores -> 3 processors; failed after 1.25 s; 3072 MiB -> 1048576 KB per processor.
    "t2,two,1.5,c,,3.0,3.1,4.25,FAILED,1,2500,3072,exit code 3,3\n"
    # t3: never placed.
    "t3,three,2,,,,,,PENDING,0,500,64,,\n"
)


def test_each_task_is_one_swf_job_with_its_wait_run_processors_and_status(tmp_path: Path) -> None:
    (tmp_path / "tasks.csv").write_text(TASKS)
    jobs = [line.split() for line in swf_lines(tmp_path) if not line.startswith(";")]
    assert all(len(job) == 18 for job in jobs)
    # job, submit, wait, run, processors, avg cpu, memory KB/proc, requested procs, req time, req memory, status
    assert jobs[0][:11] == ["1", "0.000", "0.500", "5.000", "1", "-1", "262144", "1", "-1", "262144", "1"]
    assert jobs[1][:11] == ["2", "1.500", "1.500", "1.250", "3", "-1", "1048576", "3", "-1", "1048576", "0"]
    assert jobs[2][:5] == ["3", "2.000", "-1", "-1", "1"] and jobs[2][10] == "5"


def test_orchsims_swf_reader_reads_the_export(tmp_path: Path) -> None:
    (tmp_path / "tasks.csv").write_text(TASKS)
    assert write_swf(tmp_path, tmp_path / "out.swf") == 3
    tasks = load_swf(tmp_path / "out.swf", rebase=False)
    assert tasks.skipped == 1  # t3 never ran: no run time
    np.testing.assert_allclose(tasks.submit_time, [0.0, 1.5])
    np.testing.assert_allclose(tasks.duration, [5.0, 1.25])
    np.testing.assert_allclose(tasks.resources["cpu"], [1000.0, 3000.0])
