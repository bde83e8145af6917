"""Trace loaders: the shipped openb and SWF files, CSV round trips, and one clear error per problem."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orchsim.traces import (
    MIN_POD_DURATION,
    TraceError,
    TraceTasks,
    load_csv_trace,
    load_openb_nodes,
    load_openb_pods,
    load_swf,
)

DATA = Path(__file__).resolve().parents[2] / "data"
OPENB = DATA / "openb"
SWF = DATA / "swf" / "NASA-iPSC-1993-3.1-cln.swf.gz"

# Counted from the files themselves (see data/*/SOURCE.txt).
SWF_JOBS = 18239  # job lines in the cleaned NASA iPSC/860 log
SWF_ZERO_RUNTIME = 173  # jobs with run time 0; no job has unknown processors or submit time


def assert_sorted_and_valid(tasks: TraceTasks) -> None:
    assert np.all(np.diff(tasks.submit_time) >= 0)
    assert np.all(tasks.submit_time >= 0)
    assert np.all(tasks.duration > 0)
    for name, values in tasks.resources.items():
        assert values.dtype == np.float64, name
        assert values.shape == (len(tasks),), name
        assert np.all(values >= 0), name


# ------------------------------------------------------------------ openb pods
def test_openb_default_pods() -> None:
    tasks = load_openb_pods(OPENB / "openb_pod_list_default.csv")
    assert len(tasks) == 8152
    assert_sorted_and_valid(tasks)
    assert set(tasks.resources) == {"cpu", "memory", "gpu"}
    assert np.all(np.isfinite(tasks.duration))
    assert tasks.submit_time[0] == 0.0
    # One pod (openb-pod-7285, Pending) is deleted at its creation time: clamped to 1 s.
    assert tasks.clamped == 1
    assert tasks.duration[list(tasks.names).index("openb-pod-7285")] == MIN_POD_DURATION
    assert tasks.skipped == 0


def test_openb_resources_match_an_independent_reading() -> None:
    path = OPENB / "openb_pod_list_default.csv"
    frame = pd.read_csv(path, keep_default_na=False)
    tasks = load_openb_pods(path, rebase=False)
    by_name = frame.set_index("name").loc[list(tasks.names)]
    np.testing.assert_array_equal(tasks.resources["cpu"], by_name.cpu_milli.to_numpy(float))
    np.testing.assert_array_equal(tasks.resources["memory"], by_name.memory_mib.to_numpy(float))
    expected_gpu = np.where(by_name.num_gpu == 1, by_name.gpu_milli, by_name.num_gpu * 1000)
    np.testing.assert_array_equal(tasks.resources["gpu"], expected_gpu.astype(float))
    np.testing.assert_array_equal(tasks.submit_time, by_name.creation_time.to_numpy(float))
    assert tasks.resources["gpu"].sum() == 6_086_800  # 6086.8 GPUs asked for in all


def test_openb_unsorted_file_is_sorted_stably_with_names_kept() -> None:
    # cpu250 lists the inflated CPU pods first, out of creation order.
    tasks = load_openb_pods(OPENB / "openb_pod_list_cpu250.csv")
    assert len(tasks) == 9420
    assert_sorted_and_valid(tasks)
    i = list(tasks.names).index("openb-pod-0000")
    assert tasks.submit_time[i] == 12627409 and tasks.duration[i] == 12629841 - 12627409
    assert tasks.resources["cpu"][i] == 16500 and tasks.resources["gpu"][i] == 0


def test_openb_gpushare_clamps_three_pods() -> None:
    tasks = load_openb_pods(OPENB / "openb_pod_list_gpushare100.csv")
    assert len(tasks) == 8152 and tasks.clamped == 3
    assert np.all(tasks.resources["gpu"] <= 1000)  # every GPU pod shares one GPU


def test_openb_arrival_only_file() -> None:
    tasks = load_openb_pods(OPENB / "openb_pod_list_multigpu50.csv")
    assert len(tasks) == 9061
    assert np.all(tasks.submit_time == 0) and np.all(np.isinf(tasks.duration))
    assert list(tasks.names[:3]) == ["openb-pod-0000", "openb-pod-0001", "openb-pod-0002"]  # file order
    assert tasks.resources["gpu"].max() == 8000


def test_openb_limit_and_whole_gpus() -> None:
    tasks = load_openb_pods(OPENB / "openb_pod_list_default.csv", limit=10, gpu_as_milli=False)
    assert len(tasks) == 10
    assert tasks.resources["gpu"][0] == 1.0 and tasks.resources["gpu"][1] == 0.46


def test_openb_gpu_rule_and_rebase(tmp_path: Path) -> None:
    path = tmp_path / "pods.csv"
    path.write_text(
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,creation_time,deletion_time\n"
        "a,1000,512,0,0,150,250\n"
        "b,1000,512,1,460,100,300\n"
        "c,1000,512,1,1000,120,120\n"
        "d,1000,512,2,1000,110,\n"
        "e,1000,512,8,1000,130,100\n"
    )
    tasks = load_openb_pods(path)
    assert list(tasks.names) == ["b", "d", "c", "e", "a"]
    np.testing.assert_array_equal(tasks.submit_time, [0, 10, 20, 30, 50])
    np.testing.assert_array_equal(tasks.duration, [200, np.inf, 1, 1, 100])
    np.testing.assert_array_equal(tasks.resources["gpu"], [460, 2000, 1000, 8000, 0])
    assert tasks.clamped == 2


# ------------------------------------------------------------------ openb nodes
def test_openb_all_nodes() -> None:
    ids, capacity, labels = load_openb_nodes(OPENB / "openb_node_list_all_node.csv")
    assert len(ids) == len(set(ids)) == 1523
    assert capacity["gpu"].sum() == 6_212_000  # 6212 GPUs
    assert set(capacity) == {"cpu", "memory", "gpu"}
    assert all(len(v) == 1523 for v in capacity.values())
    assert sum(1 for label in labels if not label) == 310  # CPU-only nodes carry no gpu_model
    assert all(capacity["gpu"][i] == 0 for i, label in enumerate(labels) if not label)
    assert {label["gpu_model"] for label in labels if label} == {"P100", "T4", "V100M16", "V100M32", "A10", "G2", "G3"}
    assert ids[0] == "openb-node-0000" and capacity["cpu"][0] == 32000 and capacity["memory"][0] == 262144


def test_openb_gpu_nodes() -> None:
    ids, capacity, labels = load_openb_nodes(OPENB / "openb_node_list_gpu_node.csv")
    assert len(ids) == 1213
    assert capacity["gpu"].sum() == 6_212_000
    assert all(label for label in labels) and labels[0] == {"gpu_model": "P100"}


# ------------------------------------------------------------------ SWF
def test_swf_nasa_ipsc() -> None:
    tasks = load_swf(SWF)
    assert len(tasks) + tasks.skipped == SWF_JOBS
    assert tasks.skipped == SWF_ZERO_RUNTIME and len(tasks) == 18066
    assert_sorted_and_valid(tasks)
    assert tasks.resources["cpu"].max() == 128 * 1000
    assert set(np.unique(tasks.resources["cpu"])) == {1000.0 * 2**k for k in range(8)}  # powers of two, 1..128
    assert np.all(tasks.resources["memory"] == 0)
    assert tasks.submit_time[0] == 0 and tasks.submit_time[-1] == 7948936
    assert tasks.names[0] == "1" and tasks.duration[0] == 1451


def test_swf_scaling_and_limit() -> None:
    tasks = load_swf(SWF, cpu_per_processor=250, memory_per_processor=64, limit=5)
    assert len(tasks) == 5 and tasks.skipped == SWF_ZERO_RUNTIME
    np.testing.assert_array_equal(tasks.resources["cpu"], [128 * 250] * 5)
    np.testing.assert_array_equal(tasks.resources["memory"], [128 * 64] * 5)


def swf_line(job: int, submit: int, run: int, allocated: int, requested: int = -1) -> str:
    fields = [job, submit, -1, run, allocated, -1, -1, requested] + [-1] * 10
    return " ".join(map(str, fields))


def test_swf_plain_text_requested_processors_and_skips(tmp_path: Path) -> None:
    path = tmp_path / "log.swf"
    lines = [
        "; header",
        "",
        swf_line(1, 100, 10, 4),
        swf_line(2, 90, 10, -1, 8),  # allocated unknown: requested is used
        swf_line(3, 110, 0, 4),  # no run time: skipped
        swf_line(4, 120, -1, 4),  # unknown run time: skipped
        swf_line(5, 130, 10, -1, -1),  # unknown size: skipped
        swf_line(6, -1, 10, 2),  # unknown submit time: skipped
    ]
    path.write_text("\n".join(lines) + "\n")
    tasks = load_swf(path)
    assert list(tasks.names) == ["2", "1"]
    np.testing.assert_array_equal(tasks.submit_time, [0, 10])
    np.testing.assert_array_equal(tasks.resources["cpu"], [8000, 4000])
    assert tasks.skipped == 4
    gz = tmp_path / "log.swf.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert list(load_swf(gz, rebase=False).submit_time) == [90, 100]


# ------------------------------------------------------------------ CSV traces
def test_csv_round_trip(tmp_path: Path) -> None:
    submit = np.array([5.0, 1.5, 3.0, 1.5])
    duration = np.array([10.0, np.inf, 2.5, 7.0])
    cpu = np.array([500.0, 250.0, 1000.0, 0.0])
    memory = np.array([256.0, 128.0, 1024.0, 64.0])
    gpu = np.array([0.0, 500.0, 1000.0, 0.0])
    names = ["w", "x", "y", "z"]
    frame = pd.DataFrame({"name": names, "submit_time": submit, "duration": duration, "cpu": cpu, "memory": memory})
    frame["gpu"] = gpu
    path = tmp_path / "jobs.csv"
    text = frame.to_csv(index=False)
    header, *rows = text.splitlines()
    path.write_text("# exported for a test\n" + header + "\n\n" + "\n# a comment\n".join(rows) + "\n")
    tasks = load_csv_trace(path)
    order = np.argsort(submit, kind="stable")
    assert list(tasks.names) == [names[i] for i in order] == ["x", "z", "y", "w"]
    np.testing.assert_array_equal(tasks.submit_time, submit[order])
    np.testing.assert_array_equal(tasks.duration, duration[order])
    assert list(tasks.resources) == ["cpu", "memory", "gpu"]
    for name, values in {"cpu": cpu, "memory": memory, "gpu": gpu}.items():
        np.testing.assert_array_equal(tasks.resources[name], values[order])
    rebased = load_csv_trace(path, rebase=True)
    np.testing.assert_array_equal(rebased.submit_time, submit[order] - 1.5)


def test_csv_minimal_and_header_only(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("cpu,memory,duration,submit_time\r\n100,64,1,0\r\n")
    tasks = load_csv_trace(path)
    assert len(tasks) == 1 and tasks.names is None and tasks.resources["cpu"][0] == 100
    path.write_text("submit_time,duration,cpu,memory\n")
    assert len(load_csv_trace(path)) == 0


# ------------------------------------------------------------------ errors
HEADER = "submit_time,duration,cpu,memory\n"
CSV_ERRORS = [
    ("non-numeric", HEADER + "0,10,500,256\n1,10,abc,256\n", "jobs.csv line 3, column 'cpu': 'abc' is not a number"),
    ("empty cell", HEADER + "0,10,,256\n", "jobs.csv line 2, column 'cpu': '' is not a number"),
    ("nan", HEADER + "0,10,500,nan\n", "jobs.csv line 2, column 'memory': 'nan' is not a number"),
    ("negative", HEADER + "0,10,500,256\n\n1,10,500,-4\n", "jobs.csv line 4, column 'memory': '-4' is negative"),
    ("negative submit", HEADER + "-1,10,500,256\n", "jobs.csv line 2, column 'submit_time': '-1' is negative"),
    ("infinite cpu", HEADER + "0,10,inf,256\n", "jobs.csv line 2, column 'cpu': 'inf' is not finite"),
    ("zero duration", HEADER + "0,10,1,1\n1,0,1,1\n", "jobs.csv line 3, column 'duration': '0' is not a positive"),
    ("negative duration", HEADER + "# c\n0,-5,1,1\n", "jobs.csv line 3, column 'duration': '-5' is negative"),
    ("too few fields", HEADER + "0,10,500,256\n0,10,500\n", "jobs.csv line 3: expected 4 fields"),
    ("too many fields", HEADER + "0,10,500,256,7\n", "jobs.csv line 2: expected 4 fields"),
    ("text resource", "submit_time,duration,cpu,memory,user\n0,1,1,1,bob\n", "line 2, column 'user': 'bob' is not"),
    ("duplicate column", "submit_time,duration,cpu,memory,cpu\n", "jobs.csv line 1: column 'cpu' appears twice"),
    ("empty file", "\n# only a comment\n", "jobs.csv: empty file"),
]


@pytest.mark.parametrize(("label", "text", "expected"), CSV_ERRORS, ids=[c[0] for c in CSV_ERRORS])
def test_csv_errors_name_file_line_and_column(tmp_path: Path, label: str, text: str, expected: str) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text(text)
    with pytest.raises(TraceError) as info:
        load_csv_trace(path)
    assert expected in str(info.value), label
    assert str(path) in str(info.value)


def test_csv_missing_column_is_named_with_the_columns_found(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text("# header is on line 2\nsubmit_time,duration,memory\n0,1,1\n")
    with pytest.raises(TraceError, match=re.escape("jobs.csv line 2: missing required column 'cpu'")) as info:
        load_csv_trace(path)
    assert "columns found: submit_time, duration, memory" in str(info.value)


def test_missing_files(tmp_path: Path) -> None:
    for loader in (load_csv_trace, load_openb_pods, load_openb_nodes, load_swf):
        with pytest.raises(TraceError, match=r"nope\.csv: file not found"):
            loader(tmp_path / "nope.csv")


def test_trace_error_is_a_value_error() -> None:
    assert issubclass(TraceError, ValueError)


def test_non_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_bytes(HEADER.encode() + b"0,1,1,1\n0,1,\xff,1\n")
    with pytest.raises(TraceError, match=r"jobs\.csv line 3: not UTF-8"):
        load_csv_trace(path)


OPENB_POD_HEADER = "name,cpu_milli,memory_mib,num_gpu,gpu_milli\n"
OPENB_ERRORS = [
    ("pods", "name,cpu_milli,memory_mib,gpu_milli\np,1,1,0\n", "pods.csv line 1: missing required column 'num_gpu'"),
    ("pods", OPENB_POD_HEADER + "p,1,1,0.5,0\n", "pods.csv line 2, column 'num_gpu': '0.5' is not a whole number"),
    ("pods", OPENB_POD_HEADER + "p,1,1,1,1500\n", "pods.csv line 2, column 'gpu_milli': '1500' exceeds 1000"),
    ("pods", OPENB_POD_HEADER + "p,x,1,0,0\n", "pods.csv line 2, column 'cpu_milli': 'x' is not a number"),
    ("pods", OPENB_POD_HEADER.strip() + ",creation_time\np,1,1,0,0,-3\n", "line 2, column 'creation_time': '-3'"),
    ("pods", OPENB_POD_HEADER.strip() + ",deletion_time\np,1,1,0,0,5\n", "missing required column 'creation_time'"),
    ("nodes", "sn,cpu_milli,memory_mib,gpu\nn1,1,1,0\nn1,1,1,0\n", "nodes.csv line 3, column 'sn': duplicate node id"),
    ("nodes", "sn,cpu_milli,memory_mib,gpu\nn1,1,1,1.5\n", "nodes.csv line 2, column 'gpu': '1.5' is not a whole"),
    ("nodes", "sn,cpu_milli,memory_mib\nn1,1,1\n", "nodes.csv line 1: missing required column 'gpu'"),
]


@pytest.mark.parametrize(("kind", "text", "expected"), OPENB_ERRORS)
def test_openb_errors(tmp_path: Path, kind: str, text: str, expected: str) -> None:
    path = tmp_path / f"{kind}.csv"
    path.write_text(text)
    loader = load_openb_pods if kind == "pods" else load_openb_nodes
    with pytest.raises(TraceError) as info:
        loader(path)
    assert expected in str(info.value)


SWF_ERRORS = [
    ("short line", [swf_line(1, 0, 10, 4), "2 5 -1 10 4"], "log.swf line 4: expected 18 whitespace-separated fields"),
    ("not a number", [swf_line(1, 0, 10, 4), swf_line(2, 5, 10, 4).replace(" 10 ", " ten ", 1)], "log.swf line 4"),
]


@pytest.mark.parametrize(("label", "lines", "expected"), SWF_ERRORS, ids=[c[0] for c in SWF_ERRORS])
def test_swf_errors_name_file_and_line(tmp_path: Path, label: str, lines: list[str], expected: str) -> None:
    path = tmp_path / "log.swf"
    path.write_text("; Version: 2.2\n;\n" + "\n".join(lines) + "\n")
    with pytest.raises(TraceError) as info:
        load_swf(path)
    assert expected in str(info.value), label


def test_swf_bad_field_is_named(tmp_path: Path) -> None:
    path = tmp_path / "log.swf"
    path.write_text(swf_line(1, 0, 10, 4) + "\n" + swf_line(2, 5, 10, 4).replace(" 10 ", " ten ", 1) + "\n")
    with pytest.raises(TraceError, match=re.escape("log.swf line 2, field 4 (run time): 'ten' is not a number")):
        load_swf(path)


def test_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "log.swf.gz"
    path.write_bytes(gzip.compress(b"1 2 3\n")[:12])
    with pytest.raises(TraceError, match=r"log\.swf\.gz: not a valid gzip file"):
        load_swf(path)


def test_bad_arguments_are_plain_value_errors() -> None:
    with pytest.raises(ValueError, match="cpu_per_processor"):
        load_swf(SWF, cpu_per_processor=0)
    with pytest.raises(ValueError, match="limit"):
        load_openb_pods(OPENB / "openb_pod_list_default.csv", limit=0)
