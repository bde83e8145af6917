"""FCFS and EASY start times on the NASA iPSC/860 log against published and textbook references (issue 17).

Both simulators replay the same jobs (``tests/reference/swf_jobs.py``): the cleaned log's
18,066 jobs with a run time, as gangs on 128 one-processor nodes, estimates = run times.

- AccaSim 1.1.3 (``pip install accasim``): its start times are stored in ``tests/data/accasim``
  (see SOURCE.txt there); ``test_stored_reference_is_what_accasim_gives`` regenerates them
  when an AccaSim interpreter is at hand. Its FIFO is FCFS. Its EBF ("EASY backfilling") never
  enforces the reservation it computes (its fill step passes ``reserved_nodes=[]`` to the
  allocator), so it is greedy backfilling: it is compared with our ``backfill``, and with our
  ``easy`` only where EASY and greedy agree.
- pyss (the Hebrew University's Python scheduler simulator, Feitelson's group), a published EASY
  that enforces the head's reservation: its FCFS and EASY start times are stored in
  ``tests/data/pyss`` (see SOURCE.txt there; it runs under Python 2.7, out of tree), compared
  with our ``fifo`` and ``easy`` on every job.
- The textbook definitions (``tests/reference/textbook.py``, no code shared with orchsim)
  check our ``easy`` wherever it differs from greedy backfilling.

Both run ``scheduler.passes: per_instant`` (one pass after every arrival and end of a time, as
AccaSim and the textbook do). The log as recorded has almost no queueing (its submit times are
its start times: 11 jobs wait under FCFS), so the checks also run with submit times halved
(``compress 2``), which queues nearly every job. CI runs the first 1,000 jobs halved;
``ORCH_REFERENCE_FULL=1`` adds the whole log as is and the first 3,000 jobs halved (minutes).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reference.compare import NASA_LOG, PYSS_DIR, REFERENCE_DIR, ROOT, mismatches, our_starts, read_reference
from tests.reference.swf_jobs import rewrite_swf
from tests.reference.textbook import schedule

FULL = os.environ.get("ORCH_REFERENCE_FULL") == "1"

LONG = [pytest.mark.slow, pytest.mark.skipif(not FULL, reason="long form: set ORCH_REFERENCE_FULL=1")]
# (stored reference, compress, first N jobs or None). The first runs in CI.
CASES = [
    pytest.param("nasa_c2_first1000.csv.gz", 2, 1000, id="halved-first1000"),
    pytest.param("nasa_c1.csv.gz", 1, None, id="log", marks=LONG),
    pytest.param("nasa_c2_first3000.csv.gz", 2, 3000, id="halved-first3000", marks=LONG),
]


def jobs_of(swf: Path) -> list[tuple[str, tuple[int, int, int]]]:
    """(job id, (submit, run time, processors)) per line of a rewritten log."""
    out = []
    for line in swf.read_text().splitlines():
        f = line.split()
        out.append((f[0], (int(f[1]), int(f[3]), int(f[4]))))
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, int | None], dict[str, object]]:
    """Per case: the rewritten log, our starts per discipline, the textbook's per mode (computed once)."""
    cache: dict[tuple[int, int | None], dict[str, object]] = {}
    folder = tmp_path_factory.mktemp("reference")

    def get(compress: int, limit: int | None) -> dict[str, object]:
        key = (compress, limit)
        if key not in cache:
            swf = folder / f"c{compress}_{limit}.swf"
            rewrite_swf(os.fspath(NASA_LOG), os.fspath(swf), limit=limit, compress=compress)
            jobs = jobs_of(swf)
            textbook = {
                mode: dict(zip([j for j, _ in jobs], schedule([s for _, s in jobs], 128, mode), strict=True))
                for mode in ("fcfs", "easy", "greedy")
            }
            ours = {queue: our_starts(swf, queue) for queue in ("fifo", "easy", "backfill")}
            cache[key] = {"swf": swf, "ours": ours, "textbook": textbook}
        return cache[key]

    return get  # type: ignore[return-value]


def report(bad: list) -> str:
    return "\n".join(f"job {m.job} (submit {m.submit}): ours {m.ours}, reference {m.reference}" for m in bad[:20])


@pytest.mark.parametrize(("stored", "compress", "limit"), CASES)
def test_fcfs_starts_as_accasim_fifo(runs, stored: str, compress: int, limit: int | None) -> None:
    rows = read_reference(REFERENCE_DIR / stored)
    assert len(rows) == (limit or 18066)
    bad = mismatches(runs(compress, limit)["ours"]["fifo"], rows, "fifo")
    assert not bad, f"{len(bad)} of {len(rows)} jobs start elsewhere than under AccaSim's FIFO:\n{report(bad)}"


@pytest.mark.parametrize(("stored", "compress", "limit"), CASES)
def test_greedy_backfill_starts_as_accasim_ebf(runs, stored: str, compress: int, limit: int | None) -> None:
    rows = read_reference(REFERENCE_DIR / stored)
    bad = mismatches(runs(compress, limit)["ours"]["backfill"], rows, "ebf")
    assert not bad, f"{len(bad)} of {len(rows)} jobs start elsewhere than under AccaSim's EBF:\n{report(bad)}"


@pytest.mark.parametrize(("stored", "compress", "limit"), CASES)
def test_easy_starts_as_the_textbook_and_as_accasim_where_no_backfill_is_refused(
    runs, stored: str, compress: int, limit: int | None
) -> None:
    run = runs(compress, limit)
    rows = read_reference(REFERENCE_DIR / stored)
    textbook = [{"job": r["job"], "submit": r["submit"], "easy": run["textbook"]["easy"][r["job"]]} for r in rows]
    bad = mismatches(run["ours"]["easy"], textbook, "easy")
    assert not bad, f"{len(bad)} of {len(rows)} jobs start elsewhere than under textbook EASY:\n{report(bad)}"
    # Where textbook EASY and greedy backfilling agree on a job, AccaSim's EBF must agree too.
    agree = [r for r in rows if run["textbook"]["easy"][r["job"]] == run["textbook"]["greedy"][r["job"]]]
    bad = mismatches(run["ours"]["easy"], agree, "ebf")
    assert not bad, f"{len(bad)} jobs differ from AccaSim's EBF where EASY and greedy agree:\n{report(bad)}"


@pytest.mark.parametrize(("stored", "compress", "limit"), CASES)
def test_easy_and_fcfs_starts_as_pyss(runs, stored: str, compress: int, limit: int | None) -> None:
    run = runs(compress, limit)
    rows = read_reference(PYSS_DIR / stored)
    assert [r["job"] for r in rows] == [r["job"] for r in read_reference(REFERENCE_DIR / stored)]
    for queue, column in (("easy", "easy"), ("fifo", "fcfs")):
        bad = mismatches(run["ours"][queue], rows, column)
        assert not bad, f"{queue}: {len(bad)} of {len(rows)} jobs differ from pyss {column}:\n{report(bad)}"
    if compress > 1:
        # pyss's EASY refuses backfills that greedy makes (else this would not test EASY at all).
        assert mismatches(run["ours"]["backfill"], rows, "easy")


@pytest.mark.parametrize(("stored", "compress", "limit"), CASES)
def test_fcfs_and_greedy_as_the_textbook(runs, stored: str, compress: int, limit: int | None) -> None:
    run = runs(compress, limit)
    rows = read_reference(REFERENCE_DIR / stored)
    for queue, mode in (("fifo", "fcfs"), ("backfill", "greedy")):
        textbook = [{"job": r["job"], "submit": r["submit"], mode: run["textbook"][mode][r["job"]]} for r in rows]
        bad = mismatches(run["ours"][queue], textbook, mode)
        assert not bad, f"{queue}: {len(bad)} jobs differ from textbook {mode}:\n{report(bad)}"


def accasim_python() -> str | None:
    """An interpreter with accasim: ``ORCH_ACCASIM_PYTHON``, else this one if it has accasim."""
    python = os.environ.get("ORCH_ACCASIM_PYTHON")
    if python:
        return python if shutil.which(python) or Path(python).exists() else None
    probe = subprocess.run([sys.executable, "-c", "import accasim"], capture_output=True, check=False)
    return sys.executable if probe.returncode == 0 else None


@pytest.mark.skipif(accasim_python() is None, reason="no AccaSim: set ORCH_ACCASIM_PYTHON (see tests/data/accasim)")
def test_stored_reference_is_what_accasim_gives(tmp_path: Path) -> None:
    out = tmp_path / "starts.csv"
    command = [accasim_python(), "-m", "tests.reference.accasim_starts", os.fspath(NASA_LOG), os.fspath(out)]
    command += ["--compress", "2", "--limit", "1000"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    assert read_reference(out) == read_reference(REFERENCE_DIR / "nasa_c2_first1000.csv.gz")


def pyss_at_hand() -> tuple[str, str] | None:
    """(pyss's src directory, a Python 2.7) from ``ORCH_PYSS_SRC`` and ``ORCH_PYSS_PYTHON``, if both exist."""
    src, python = os.environ.get("ORCH_PYSS_SRC"), os.environ.get("ORCH_PYSS_PYTHON", "python2.7")
    if not src or not Path(src, "schedulers", "easy_scheduler.py").exists():
        return None
    return (src, python) if shutil.which(python) or Path(python).exists() else None


@pytest.mark.skipif(pyss_at_hand() is None, reason="no pyss: set ORCH_PYSS_SRC, ORCH_PYSS_PYTHON (tests/data/pyss)")
def test_stored_reference_is_what_pyss_gives(tmp_path: Path) -> None:
    src, python = pyss_at_hand()  # type: ignore[misc]
    out = tmp_path / "starts.csv"
    command = [sys.executable, "-m", "tests.reference.pyss_starts", os.fspath(NASA_LOG), os.fspath(out)]
    command += ["--pyss", src, "--python", python, "--compress", "2", "--limit", "1000"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    assert read_reference(out) == read_reference(PYSS_DIR / "nasa_c2_first1000.csv.gz")
