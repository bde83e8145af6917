"""The HTML report: one self-contained page, valid embedded PNGs, and a real browser renders them."""

from __future__ import annotations

import base64
import dataclasses
import html
import importlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchsim.report import (
    build_report,
    figure_slugs,
    main,
    replications_frame,
    scenario_description,
    write_report,
)
from orchsim.run import Results, run
from orchsim.scenario import parse_scenario

from .conftest import PAIRED_YAML, ROOT
from .test_sweep_resume import wait_for

run_module = importlib.import_module("orchsim.run")  # the module: `orchsim.run` is the function

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROMIUM = shutil.which("chromium")
NEEDS_CHROMIUM = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH: install Debian's chromium (apt-get install -y chromium)"
)

TINY = """\
# A tiny <test> scenario & friends: two policies,
# three nodes.

version: 1
name: tiny
seed: 1
policies: [bin_packing, spread]
cluster:
  nodes:
    - {count: 3, capacity: {cpu: 4000, memory: 8192}}
workload:
  - {kind: poisson, rate: 1.0, count: 60, resources: {cpu: 500, memory: 256}, duration: {dist: exponential, mean: 5}}
"""

FAILING = """\
# Small failures: two of six nodes die at t=20.
version: 1
name: tiny_failures
seed: 2
policies: [bin_packing, spread, round_robin]
cluster:
  heartbeat_interval: 1
  failure_timeout: 3
  nodes:
    - {count: 4, capacity: {cpu: 4000, memory: 8192}}
    - {count: 2, capacity: {cpu: 8000, memory: 16384, gpu: 2000}}
workload:
  - {kind: poisson, rate: 2.0, count: 120, resources: {cpu: 1000, memory: 512}, duration: 10}
events:
  - {at: 20, kind: node_failure, count: 2}
"""

PAIRED = "# Paired: bin_packing against spread on the same tasks.\n" + PAIRED_YAML
PAIRED_SEEDS = [10, 11, 12]
T2 = 4.302652729911275  # t(0.975, 2 dof)

IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"[^>]*data-figure="([^"]+)"')


@pytest.fixture(scope="module")
def scenario_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("scenarios")
    paths = [folder / "tiny.yaml", folder / "tiny_failures.yaml"]
    for path, text in zip(paths, (TINY, FAILING), strict=True):
        path.write_text(text)
    return paths


@pytest.fixture(scope="module")
def results(scenario_files: list[Path]) -> list[Results]:
    return [run(path) for path in scenario_files]


@pytest.fixture(scope="module")
def page(results: list[Results]) -> str:
    return build_report(results, command="python -m orchsim report tiny.yaml tiny_failures.yaml --out x")


@pytest.fixture(scope="module")
def report_file(scenario_files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(scenario_files, tmp_path_factory.mktemp("report"))


def expected_figures(results: list[Results]) -> list[str]:
    return [slug for r in results for slug in figure_slugs(r)]


def test_one_valid_png_per_expected_figure(page: str, results: list[Results]) -> None:
    expected = expected_figures(results)
    # Each: nodes in use, stranded and utilisation of cpu and memory, wait CDF, queue; tiny_failures'
    # nodes have GPUs, but no task asks for one: no flat-0 GPU figures (issue 18).
    assert len(expected) == (1 + 2 * 2 + 2) * 2
    assert {"stranded_cpu", "utilisation_memory", "wait_cdf", "queue", "nodes_used"} <= set(expected)
    assert "utilisation_gpu" not in expected
    images = IMG.findall(page)
    assert [slug for _, _, slug in images] == expected
    assert page.count("<img ") == len(expected)
    for payload, alt, slug in images:
        png = base64.b64decode(payload, validate=True)
        assert png[:8] == PNG_MAGIC, slug
        assert png[12:16] == b"IHDR"
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert (width, height) == (720, 360), slug
        assert len(png) > 5_000, slug  # axes, labels and lines, not a blank canvas
        assert len(alt) > 30 and "(s)" in alt, alt


def test_page_is_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://", page, flags=re.IGNORECASE)
    assert "<script" not in page.lower() and "<link" not in page.lower() and "@import" not in page
    assert "url(" not in page  # no CSS fetches either
    for attribute, value in re.findall(r'\s(src|href|srcset|action|poster)="([^"]*)"', page):
        assert value.startswith("data:image/png;base64,") or value.startswith("#"), (attribute, value[:60])
    assert "default-src 'none'" in page  # the browser would refuse anything external anyway


def test_tables_header_and_descriptions(page: str, results: list[Results]) -> None:
    for policy in ("bin_packing", "spread", "round_robin"):
        assert f"<td>{policy}</td>" in page
    for header in ("mean wait (s)", "p95 wait (s)", "mean cpu util (%)", "mean gpu util (%)", "peak nodes used"):
        assert f"<th>{header}</th>" in page
    assert page.count('<table class="dataframe summary">') == 2
    assert page.count("<details>") == 2 and "<th>tasks_submitted</th>" in page
    # the YAML's leading comments, escaped
    assert "A tiny &lt;test&gt; scenario &amp; friends: two policies, three nodes." in page
    assert "<test>" not in page
    assert "Small failures: two of six nodes die at t=20." in page
    assert "orchsim</dt><dd>0.1.0</dd>" in page.replace("\n", "")
    assert "python -m orchsim report tiny.yaml tiny_failures.yaml --out x" in page
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT', page)
    assert '<a href="#s0-tiny">tiny</a>' in page and 'id="s1-tiny_failures"' in page
    assert scenario_description(results[0].scenario).startswith("A tiny <test> scenario")


def test_inline_scenario_is_described_by_its_name(tmp_path: Path) -> None:
    scenario = parse_scenario(
        {
            "version": 1,
            "name": "inline",
            "policies": ["first_fit"],
            "cluster": {"nodes": [{"count": 2, "capacity": {"cpu": 1000, "memory": 1024}}]},
            "workload": [{"kind": "burst", "at": 0, "count": 5, "resources": {"cpu": 1000}, "duration": 1}],
        }
    )
    assert scenario_description(scenario) == "inline"
    path = write_report([scenario], tmp_path / "out", seed=5)
    assert path == tmp_path / "out" / "report.html"
    text = path.read_text()
    assert "<h2>inline</h2>" in text and "<p>inline</p>" in text and "seed 5" in text
    assert text.count("data:image/png;base64,") == 2 + 3


def test_cli_writes_the_report_and_prints_its_path(scenario_files: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    flags = ["--out", str(out), "--policy", "spread", "--policy", "first_fit", "--seed", "3"]
    result = subprocess.run(
        [sys.executable, "-m", "orchsim", "report", *map(str, scenario_files), *flags],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out / "report.html")
    text = (out / "report.html").read_text()
    assert "<td>spread</td>" in text and "<td>first_fit</td>" in text and "<td>bin_packing</td>" not in text
    assert "--policy spread --policy first_fit --seed 3" in text
    assert text.count("seed 3 · ") == 2  # both scenarios' facts lines


@pytest.mark.parametrize(
    ("label", "make_args", "expected"),
    [
        ("missing file", lambda d: [str(d / "absent.yaml")], "absent.yaml: cannot read"),
        ("unknown policy", lambda d: [str(d / "tiny.yaml"), "--policy", "tetris"], "unknown policy 'tetris'"),
        ("bad scenario", lambda d: [str(d / "tiny.yaml"), str(d / "bad.yaml")], "bad.yaml: colour: unknown field"),
        ("bad trace", lambda d: [str(d / "trace.yaml")], "jobs.csv line 3"),
    ],
    ids=["missing file", "unknown policy", "bad scenario", "bad trace"],
)
def test_user_mistakes_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], label: str, make_args, expected: str
) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY)
    (tmp_path / "bad.yaml").write_text(TINY.replace("seed: 1", "seed: 1\ncolour: blue"))
    (tmp_path / "jobs.csv").write_text("submit_time,duration,cpu,memory\n0,10,500,256\n1,ten,500,256\n")
    (tmp_path / "trace.yaml").write_text(TINY + "  - {kind: trace, path: jobs.csv}\n")
    out = tmp_path / "out"
    status = main([*make_args(tmp_path), "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 2, (label, captured)
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    assert expected in captured.err
    assert not (out / "report.html").exists()


def test_unwritable_out_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY)
    (tmp_path / "file").write_text("not a folder")
    assert main([str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "file" / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write ") and "file/out" in err and err.count("\n") == 1, err


def _chromium(*args: str, user_data: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    flags = [
        "--headless",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-breakpad",
        "--hide-scrollbars",
        f"--user-data-dir={user_data}",
        "--virtual-time-budget=5000",
    ]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=90)


CHECK_SCRIPT = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const result = {
    total: images.length,
    loaded: images.filter((img) => img.complete && img.naturalWidth > 0).length,
    sizes: images.map((img) => [img.naturalWidth, img.naturalHeight]),
    figures: images.map((img) => img.dataset.figure),
  };
  const pre = document.createElement("pre");
  pre.id = "img-check";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>
"""


@NEEDS_CHROMIUM
def test_headless_chromium_renders_every_figure(report_file: Path, results: list[Results], tmp_path: Path) -> None:
    page = report_file.read_text()
    assert "<script" not in page
    # A copy with a checking script; the CSP is widened for inline scripts only (images stay data:-only).
    checked = page.replace("default-src 'none'", "default-src 'none'; script-src 'unsafe-inline'", 1)
    checked = checked.replace("</body>", CHECK_SCRIPT + "</body>", 1)
    copy = tmp_path / "checked.html"
    copy.write_text(checked)

    dom = _chromium("--dump-dom", copy.as_uri(), user_data=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    match = re.search(r'<pre id="img-check">(.*?)</pre>', dom.stdout, flags=re.DOTALL)
    assert match, f"the load handler did not run; stderr: {dom.stderr[-2000:]}"
    check = json.loads(html.unescape(match.group(1)))
    expected = expected_figures(results)
    assert check["figures"] == expected
    assert check["total"] == len(expected)
    assert check["loaded"] == check["total"], check
    assert all(size == [720, 360] for size in check["sizes"]), check["sizes"]

    shot = tmp_path / "shot.png"
    taken = _chromium(
        f"--screenshot={shot}", "--window-size=1280,2000", report_file.as_uri(), user_data=tmp_path / "profile-shot"
    )
    assert taken.returncode == 0, taken.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) == (1280, 2000)
    import numpy as np
    from PIL import Image

    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    assert (pixels.min(axis=1) < 235).mean() > 0.03, "the screenshot is (nearly) blank"
    assert len(np.unique(pixels @ [1 << 16, 1 << 8, 1])) > 200, "the screenshot has too few colours to hold the figures"
    # the first two policies' line colours (matplotlib's C0, C1) are on screen: the figures were painted
    for colour in ((31, 119, 180), (255, 127, 14)):
        assert (np.abs(pixels - colour).max(axis=1) < 40).sum() > 500, colour


# --------------------------------------------------------------------- never-started tasks
def cells_of(page: str, policy: str, table: str = "summary") -> list[str]:
    body = page.split(f'<table class="dataframe {table}">', 1)[1].split("</table>", 1)[0]
    row = re.search(rf"<tr>\s*<td>{policy}</td>(.*?)</tr>", body, flags=re.DOTALL)
    assert row, (policy, body[:500])
    return re.findall(r"<td>(.*?)</td>", row.group(1))


def headers_of(page: str, table: str = "summary") -> list[str]:
    body = page.split(f'<table class="dataframe {table}">', 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<th>(.*?)</th>", body)


def test_summary_shows_never_started_tasks_and_the_censored_mean_beside_the_wait(results: list[Results]) -> None:
    extra = {"tasks_never_started": [3, 0], "mean_wait_censored": [12.3, 2.0], "prob_wait": [0.5, 0.0]}
    summary = results[0].summary.assign(**extra)
    page = build_report([dataclasses.replace(results[0], summary=summary)])
    headers = headers_of(page)
    wait = headers.index("mean wait (s)")
    assert headers[wait + 1 : wait + 3] == [
        "mean wait counting never-started tasks (s, a lower bound)",
        "never started",
    ]
    assert headers[wait + 4] == "p95 wait (s)"
    cells = ["bin_packing", *cells_of(page, "bin_packing")]
    assert cells[wait : wait + 4] == [f"{summary.mean_wait[0]:,.1f}", "12.3", "3", "50.0"]
    assert "a lower bound of the true mean" in page


def test_without_the_new_columns_the_table_is_as_before(results: list[Results]) -> None:
    gone = ["tasks_never_started", "mean_wait_censored", "prob_wait"]
    summary = results[0].summary.drop(columns=gone, errors="ignore")
    page = build_report([dataclasses.replace(results[0], summary=summary)])
    assert "never started" not in page and "lower bound" not in page
    headers = headers_of(page)
    assert headers[headers.index("mean wait (s)") + 1] == "p95 wait (s)"


# --------------------------------------------------------------------- several seeds, paired differences
@pytest.fixture(scope="module")
def paired_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("paired") / "paired.yaml"
    path.write_text(PAIRED)
    return path


@pytest.fixture(scope="module")
def paired_runs(paired_file: Path) -> list[Results]:
    return [run(paired_file, seed=seed) for seed in PAIRED_SEEDS]


@pytest.fixture(scope="module")
def paired_page(paired_runs: list[Results]) -> str:
    raw = replications_frame(paired_runs)
    return build_report(paired_runs[:1], replications=[raw], baseline="spread", command="x")


def test_replications_frame_has_a_row_per_policy_and_seed(paired_runs: list[Results]) -> None:
    raw = replications_frame(paired_runs)
    assert list(raw.columns[:3]) == ["policy", "seed", "tasks_submitted"]
    assert list(zip(raw.policy, raw.seed, strict=True)) == [
        (p, s) for s in PAIRED_SEEDS for p in ("bin_packing", "spread")
    ]


def test_several_seeds_give_mean_and_half_width_clipped_at_0(paired_page: str, paired_runs: list[Results]) -> None:
    raw = replications_frame(paired_runs)
    headers = headers_of(paired_page)
    assert "seeds 10, 11, 12 · 200 tasks" in paired_page
    for policy in ("bin_packing", "spread"):
        cells = dict(zip(headers[1:], cells_of(paired_page, policy), strict=True))
        makespan = raw[raw.policy == policy].makespan.to_numpy()
        half = T2 * makespan.std(ddof=1) / math.sqrt(3)
        assert cells["makespan (s)"] == f"{makespan.mean():,.0f} ± {half:,.0f}"
        # The wait's t interval reaches below 0: shown clipped, as [low, high].
        waits = raw[raw.policy == policy].mean_wait.to_numpy()
        half = T2 * waits.std(ddof=1) / math.sqrt(3)
        assert waits.mean() - half < 0
        assert cells["mean wait (s)"] == f"{waits.mean():,.1f} [0.0, {waits.mean() + half:,.1f}]"
        assert cells["completed"] == "200.0 ± 0.0"  # a mean of counts keeps a decimal
    assert "Intervals clipped at 0 (and at 100% for shares)" in paired_page
    assert "mean over seeds 10, 11, 12 ± the half-width of its 95% Student-t interval" in paired_page
    # The full table lists every seed; the figures are drawn once, from the first seed.
    assert "All summary columns, per seed" in paired_page
    assert paired_page.count("data:image/png;base64,") == len(figure_slugs(paired_runs[0]))
    assert "Drawn from seed 10, the first of the seeds." in paired_page


def test_paired_table_against_the_baseline(paired_page: str, paired_runs: list[Results]) -> None:
    raw = replications_frame(paired_runs)
    assert "<h3>Paired differences against spread</h3>" in paired_page
    headers = headers_of(paired_page, "paired")
    assert headers[:3] == ["policy", "seeds", "Δ completed"] and "Δ mean wait (s)" in headers
    assert "<td>spread</td>" not in paired_page.split('<table class="dataframe paired">')[1].split("</table>")[0]
    cells = dict(zip(headers[1:], cells_of(paired_page, "bin_packing", "paired"), strict=True))
    assert cells["seeds"] == "3"
    per_seed = raw.pivot(index="seed", columns="policy", values="mean_wait")
    diffs = (per_seed.bin_packing - per_seed.spread).to_numpy()
    half = T2 * diffs.std(ddof=1) / math.sqrt(3)
    assert diffs.mean() + half < 0  # bin_packing waits less, seed by seed
    assert cells["Δ mean wait (s)"] == f"{diffs.mean():,.1f} ± {half:,.1f} *"
    assert cells["Δ makespan (s)"].count("*") == 0  # the same makespan within noise
    assert "* the interval excludes 0" in paired_page and "Differences are not clipped" in paired_page


def test_one_seed_with_a_baseline_shows_the_difference_without_interval(paired_runs: list[Results]) -> None:
    page = build_report(paired_runs[:1], baseline="spread")
    assert "seed 10 · " in page and "One seed: the difference of that run" in page
    summary = paired_runs[0].summary.set_index("policy")
    cells = dict(zip(headers_of(page, "paired")[1:], cells_of(page, "bin_packing", "paired"), strict=True))
    assert cells["Δ mean wait (s)"] == f"{summary.mean_wait['bin_packing'] - summary.mean_wait['spread']:,.1f}"
    assert "±" not in page.split('<table class="dataframe summary">')[1].split("</table>")[0]


def test_write_report_runs_every_seed_and_passes_the_window(
    paired_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, object]] = []
    real_run = run_module.run

    def spy(scenario, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs)
        return real_run(scenario, **kwargs)

    monkeypatch.setattr(run_module, "run", spy)
    path = write_report([paired_file], tmp_path, seeds=2, baseline="spread", warmup=20.0, until=300.0)
    assert [(c["seed"], c["warmup"], c["until"]) for c in calls] == [(10, 20.0, 300.0), (11, 20.0, 300.0)]
    page = path.read_text()
    assert "seeds 10, 11 · " in page and "Paired differences against spread" in page
    assert "--seeds 2 --baseline spread --warmup 20 --until 300" in page


def test_cli_seeds_list(paired_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert (
        main([str(paired_file), "--seeds", "12,10", "--policy", "spread", "--policy", "first_fit", "--out", str(out)])
        == 0
    )
    assert capsys.readouterr().out.strip() == str(out / "report.html")
    page = (out / "report.html").read_text()
    assert "seeds 12, 10 · " in page and "Drawn from seed 12" in page and "<td>first_fit</td>" in page


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--seeds", "2", "--seed", "3"], "seed and seeds: give one or the other"),
        (["--seeds", "x"], "--seeds: 'x' is neither a count"),
        (["--seeds=-2"], "seeds: need at least 1 replication, got -2"),
        (["--seeds=-2,"], "paired.yaml: seed: Input should be greater than or equal to 0 (got -2)"),
        (["--baseline", "nope"], "baseline: unknown policy 'nope'"),
        (["--baseline", "first_fit"], "baseline: 'first_fit' is not among the policies run (bin_packing, spread)"),
        (["--baseline", "spread", "--policy", "spread"], "baseline: 'spread' is the only policy run"),
        (["--warmup", "-1"], "paired.yaml: metrics.warmup: Input should be greater than or equal to 0"),
        (["--warmup", "9", "--until", "5"], "paired.yaml: metrics: until (5.0) must be after warmup (9.0)"),
    ],
)
def test_seed_baseline_and_window_mistakes_exit_2_before_any_run(
    paired_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    expected: str,
) -> None:
    monkeypatch.setattr(run_module, "run", lambda *a, **k: pytest.fail("a run started"))
    out = tmp_path / "out"
    assert main([str(paired_file), *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and expected in err, err
    assert not out.exists()


def test_cli_negative_seed_exits_2_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", "orchsim", "report", "scenarios/burst.yaml", "--seed", "-1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == "error: scenarios/burst.yaml: seed: Input should be greater than or equal to 0 (got -1)\n"
    assert not (tmp_path / "results").exists()


def test_cli_shows_progress_while_the_runs_go(
    paired_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real = run_module.run

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        # The first run waits until the progress line is out (a timer prints it), or gives up.
        seen.append(wait_for(capsys, "report: 0/2 runs") if not seen else capsys.readouterr().err)
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "run", spy)
    assert main([str(paired_file), "--seeds", "2", "--out", str(tmp_path)]) == 0
    assert "report: 0/2 runs, 1 at a time" in seen[0]  # drawn before the first run ends
    assert "report: 1/2 runs" in seen[1] and "ETA" in seen[1]
    captured = capsys.readouterr()
    assert "report: 2/2 runs" in captured.err and captured.out.strip() == str(tmp_path / "report.html")
    assert main([str(paired_file), "--seeds", "2", "--out", str(tmp_path), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
