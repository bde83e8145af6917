"""A sweep's jobs as data: what one job is, the key that names its result, and running it.

A job is one simulation (every policy, one seed, one parameter value) as plain data: it
pickles cheaply and is re-validated by the schema wherever it runs, so a ``Scenario`` object
never crosses a process or machine boundary. Design choices, and why:

- Input files (traces, plugin files) are named by absolute path in the job's data, so a
  worker on another machine finds them on a shared mount at the same path. Where there is
  no shared mount, the executor ships their bytes once (``ship_inputs``) and ``run_job``
  writes each file once per worker machine into a local folder named by its content hash.
- The key is a hash of what decides the result: the scenario's content (its data with every
  input file replaced by the hash of its bytes, so moving a trace keeps the key and editing
  it changes it), the parameter and value, the seed, the policies and the orchsim version.
  ``orchsim.sweep_store`` files a finished job under it, so a rerun skips what is done.
- ``run_job`` returns plain Python values (what JSON keeps), so a result read back from
  the store and one just computed build byte-identical tables.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchsim.plugins import is_path

__all__ = [
    "Job",
    "Summaries",
    "absolute_inputs",
    "job_key",
    "plain",
    "read_inputs",
    "run_job",
    "run_job_scenario",
    "scenario_hash",
    "timed",
]

Summaries = list[dict[str, Any]]  # one summary row (a dict of columns) per policy


@dataclass(frozen=True)
class Job:
    """One simulation (all policies, one seed, one parameter value), as picklable plain data.

    Attributes:
        data: The scenario's data (input paths absolute), re-validated where the job runs.
        source: The scenario's file name, for error messages.
        base_dir: The scenario's folder (relative plugin specs resolve against it).
        policies: The policies run, in order.
        seed: The replication's seed.
        key: The result's content key (``job_key``); ``""`` when none is needed.
        inputs: Absolute paths of the input files that ``data`` names.
    """

    data: dict[str, Any]
    source: str
    base_dir: str
    policies: tuple[str, ...]
    seed: int
    key: str = ""
    inputs: tuple[str, ...] = field(default=())


def _input_slots(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The dicts of ``data`` whose ``path`` names an input file: node traces, trace workloads."""
    for node in data.get("cluster", {}).get("nodes", []):
        if isinstance(node, dict) and "trace" in node and "path" in node:
            yield node
    for source in data.get("workload", []):
        if isinstance(source, dict) and "path" in source:
            yield source


def absolute_inputs(data: dict[str, Any], base_dir: Path) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A copy of ``data`` with every input path absolute, and those paths (each once, in order)."""
    copied = json.loads(json.dumps(data))
    paths: list[str] = []
    for slot in _input_slots(copied):
        path = Path(slot["path"])
        slot["path"] = str(path if path.is_absolute() else (base_dir / path).resolve())
        paths.append(slot["path"])
    return copied, tuple(dict.fromkeys(paths))


def _file_digest(path: str | Path) -> str:
    """The sha256 of a file's bytes; of a folder's files (names and bytes, in name order): a recording."""
    digest = hashlib.sha256()
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    for file in files:
        if root.is_dir():
            digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _plugin_file(spec: str, base_dir: Path) -> Path | None:
    """The file a plugin's code comes from: its path, or the source of the module it names (None: not found)."""
    if is_path(spec):
        path = Path(spec).expanduser()
        return path if path.is_absolute() else base_dir / path
    try:
        found = importlib.util.find_spec(spec)
    except (ImportError, ValueError):
        return None
    return Path(found.origin) if found is not None and found.origin and found.has_location else None


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def scenario_hash(data: dict[str, Any], base_dir: Path) -> str:
    """The hash of a scenario's content: its data, with input and plugin files replaced by their bytes' hash."""
    hashed, _ = absolute_inputs(data, base_dir)
    for slot in _input_slots(hashed):
        slot["path"] = "sha256:" + _file_digest(slot["path"])
    plugins = []
    for spec in hashed.get("plugins", []):
        path = _plugin_file(spec, base_dir)
        plugins.append("sha256:" + _file_digest(path) if path is not None and path.is_file() else spec)
    hashed["plugins"] = plugins
    return hashlib.sha256(_canonical(hashed).encode()).hexdigest()


def job_key(scenario: str, parameter: str | None, value: Any, seed: int, policies: tuple[str, ...]) -> str:
    """The key of one job's result: (scenario content hash, parameter and value, seed, policies, version)."""
    from orchsim import __version__

    fields = {
        "scenario": scenario,
        "parameter": parameter,
        "value": value,
        "seed": seed,
        "policies": list(policies),
        "orchsim": __version__,
    }
    return hashlib.sha256(_canonical(fields).encode()).hexdigest()[:32]


def plain(records: Summaries) -> Summaries:
    """``records`` as plain Python values (numpy scalars unwrapped), exactly as JSON stores them."""

    def unwrap(value: Any) -> Any:
        if hasattr(value, "item"):
            return value.item()
        raise TypeError(f"cannot store a {type(value).__name__} in a sweep result")

    return json.loads(json.dumps(records, default=unwrap, allow_nan=True))


def read_inputs(jobs: list[Job]) -> dict[str, bytes]:
    """The bytes of every input the jobs name, each read once (to ship them to remote workers).

    A folder (a live cluster's recording) goes as a tar archive, under its path plus ``/``.
    """
    shipped: dict[str, bytes] = {}
    for path in dict.fromkeys(path for job in jobs for path in job.inputs):
        if Path(path).is_dir():
            archive = io.BytesIO()
            with tarfile.open(fileobj=archive, mode="w", dereference=True) as tar:  # a link goes as its file
                for file in sorted(p for p in Path(path).rglob("*") if p.is_file()):
                    tar.add(file, arcname=file.relative_to(path).as_posix())
            shipped[path + "/"] = archive.getvalue()
        else:
            shipped[path] = Path(path).read_bytes()
    return shipped


def _local_copy(path: str, content: bytes, *, folder: bool = False) -> str:
    """Write ``content`` once per machine under a folder named by its hash; returns the copy's path.

    ``folder``: ``content`` is a tar archive of a folder (``read_inputs``), unpacked there.
    """
    digest = hashlib.sha256(content).hexdigest()[:24]
    target = Path(tempfile.gettempdir()) / "orchsim-inputs" / digest / Path(path).name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")  # threads share a pid
        if folder:
            with tarfile.open(fileobj=io.BytesIO(content)) as tar:
                # Nothing outside the folder, no links out (the filter is in Python 3.11.4 on).
                tar.extractall(partial, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        else:
            partial.write_bytes(content)
        try:
            os.replace(partial, target)  # atomic
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
            if not target.exists():  # not a folder another worker unpacked first: a real failure
                raise
    return str(target)


def _with_local_inputs(data: dict[str, Any], shipped: Mapping[str, bytes]) -> dict[str, Any]:
    copied = json.loads(json.dumps(data))
    for slot in _input_slots(copied):
        if slot["path"] in shipped:
            slot["path"] = _local_copy(slot["path"], shipped[slot["path"]])
        elif slot["path"] + "/" in shipped:
            slot["path"] = _local_copy(slot["path"], shipped[slot["path"] + "/"], folder=True)
    return copied


def run_job(job: Job, shipped: Mapping[str, bytes] | None = None) -> Summaries:
    """Run one job; module-level so a process pool or Dask can pickle it. Returns the summary rows.

    Args:
        job: The simulation to run.
        shipped: Input files' bytes by their original path, when they were shipped rather
            than read from a shared path; written once per machine and read from there.
    """
    # Looked up at call time: tests replace orchsim.run.run to prove nothing ran.
    from orchsim.run import run

    scenario = run_job_scenario(job, shipped)
    return plain(run(scenario, policies=list(job.policies), seed=job.seed).summary.to_dict("records"))


def run_job_scenario(job: Job, shipped: Mapping[str, bytes] | None = None) -> Any:
    """The job's scenario, validated where the job runs; shipped input files read from local copies."""
    from orchsim.scenario import parse_scenario

    data = _with_local_inputs(job.data, shipped) if shipped else job.data
    return parse_scenario(data, source=job.source, base_dir=Path(job.base_dir))


def timed(fn: Any, job: Any, shipped: Mapping[str, bytes] | None) -> tuple[Any, float]:
    """``fn(job, shipped)`` and the seconds it took where it ran (the progress bar's ETA uses them)."""
    start = time.perf_counter()
    result = fn(job, shipped)
    return result, max(time.perf_counter() - start, 0.0)
