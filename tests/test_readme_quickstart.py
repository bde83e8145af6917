"""The README's quick starts, walked from the README itself: the test fails when the README drifts.

Two places are read: "The two commands" at the top (set up and run the main job; run the
tests) and section 3's "Quick start" (a dev cluster in one terminal, a client in another).
The commands are taken from the fenced ``bash`` blocks under those headings and run as
written, with three allowances: ``pip install`` is checked present but not run (the package
is installed already), ``python -m pytest`` is this very suite, and the dev cluster's port
(8080 in the README) becomes a free one, everywhere it appears. Everything runs in a
temporary folder that links the repository's ``scenarios/``, as a fresh clone would have it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchlive.etcd_server import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)


def section(text: str, heading: str) -> str:
    """The text under the first heading ``heading`` (any level), up to the next heading of any level."""
    match = re.search(rf"^#+ {re.escape(heading)}\n(.*?)(?=^#+ )", text, re.S | re.M)
    assert match, f"README.md has no heading '{heading}'"
    return match.group(1)


def commands(block: str) -> list[str]:
    """The shell commands of a block: continuation lines joined, comments and blank lines dropped."""
    joined = block.replace("\\\n", " ")
    return [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def blocks(heading: str) -> list[list[str]]:
    return [commands(b) for b in FENCE.findall(section(README.read_text(), heading))]


def test_the_readme_sections_parse_into_commands() -> None:
    """The extraction itself: what the walks below run is what the README shows."""
    (setup,), (tests,) = blocks("The two commands")
    assert setup.startswith("pip install -e '.[dev]' && python -m orchsim ")
    assert tests == "python -m pytest -q -n 2 --dist loadfile"
    dev, client = blocks("Quick start")
    assert len(dev) == 1 and dev[0].startswith("python -m orchlive dev ")
    assert client[0].startswith("export ORCH_MASTER=") and any(c.startswith("curl ") for c in client)


def environment(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    # ``python`` in the README is this interpreter (a venv need not be activated to run the tests).
    path = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env | {"PYTHONPATH": str(ROOT), "TMPDIR": str(folder), "COLUMNS": "100", "PATH": path}


def fresh_clone(tmp_path: Path) -> Path:
    """A folder where the README's relative paths resolve, as in a clone (the code is on PYTHONPATH)."""
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")
    return tmp_path


@pytest.mark.slow
def test_the_two_commands_at_the_top(tmp_path: Path) -> None:
    (setup,), _ = blocks("The two commands")
    install, _, run = setup.partition(" && ")
    assert install.startswith("pip install -e ")  # present, not run: the package is installed already
    folder = fresh_clone(tmp_path)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", run],
        cwd=folder,
        env=environment(folder),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for policy in ("bin_packing", "spread", "round_robin"):
        assert re.search(rf"^{policy} ", result.stdout, re.M), result.stdout
    assert (folder / "results" / "burst" / "summary.csv").is_file()


def _start_dev(command: str, folder: Path) -> subprocess.Popen[str]:
    """The README's dev command, as its own process (``exec``: signals reach ``dev`` itself)."""
    with open(folder / "dev.out", "w") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=folder,
            env=environment(folder),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )


@pytest.mark.live
def test_the_live_quick_start(tmp_path: Path) -> None:
    if shutil.which("etcd") is None:
        pytest.skip("no 'etcd' binary on PATH: install Debian's etcd-server")
    (dev_command,), client = blocks("Quick start")
    port = str(free_port())
    readme_port = re.search(r"--port (\d+)", dev_command)
    assert readme_port, dev_command
    dev_command = dev_command.replace(readme_port.group(1), port)
    client = [line.replace(readme_port.group(1), port) for line in client]
    folder = fresh_clone(tmp_path)
    dev = _start_dev(dev_command, folder)
    try:
        deadline = time.monotonic() + 60
        while "Ctrl-C" not in (folder / "dev.out").read_text():
            assert dev.poll() is None and time.monotonic() < deadline, (folder / "dev.out").read_text()
            time.sleep(0.2)
        banner = (folder / "dev.out").read_text()
        assert f"export ORCH_MASTER=http://127.0.0.1:{port}" in banner  # what the README's client block sets
        walk = subprocess.run(
            ["bash", "-euxo", "pipefail", "-c", "\n".join(client)],
            cwd=folder,
            env=environment(folder),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        dev.send_signal(signal.SIGINT)
        status = dev.wait(timeout=40)
    assert walk.returncode == 0, walk.stderr[-3000:]
    out = walk.stdout
    assert re.search(r"^NAME +STATE +TASKS", out, re.M) and len(re.findall(r"^w\d +READY", out, re.M)) == 3
    assert re.search(r"^hello world$", out, re.M)  # logs -f
    assert re.search(r"^[0-9a-f]{16} +hello +COMPLETED +w\d +0 ", out, re.M)  # tasks
    assert re.search(r"^State: +COMPLETED \(exit 0\)$", out, re.M)  # describe
    assert re.search(r"task\.completed +task/[0-9a-f]{16} +exit 0$", out, re.M)  # events
    assert '"name":"test-task"' in out.replace(" ", "")  # curl: the API's answer
    assert status == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("orch-dev-")] == []
