"""The HTML report: one self-contained page, valid embedded PNGs, and a real browser renders them."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchsim.api import Results, run
from orchsim.report import build_report, figure_slugs, main, scenario_description, write_report
from orchsim.scenario import parse_scenario

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
    # tiny: cpu, memory; tiny_failures: cpu, memory, gpu; each + wait CDF, queue, nodes in use
    assert len(expected) == (2 + 3) + (3 + 3)
    assert {"utilisation_gpu", "wait_cdf", "queue", "nodes_used"} <= set(expected)
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
