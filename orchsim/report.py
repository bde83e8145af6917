"""One self-contained HTML page comparing the policies of one or more scenarios.

``python -m orchsim report SCENARIO... [--out DIR] [--policy NAME ...] [--seed N | --seeds N|LIST]
[--baseline POLICY] [--warmup S] [--until S]`` runs each scenario (every policy on identical
tasks) and writes ``DIR/report.html``: a header (time, orchsim version, command), then per
scenario its description, the summary table and the figures (utilisation per resource,
wait-time CDF, queue length, nodes in use).

With several seeds the summary table shows each metric's mean over the seeds ± the half-width
of its Student-t interval (clipped for display at the metric's natural bounds, see
``orchsim.intervals``), and the figures are drawn from the first seed. With a baseline, a
second table gives each other policy minus the baseline, paired by seed: every policy of
one seed ran on the same tasks, so that difference is the honest comparison.

The page loads nothing: no scripts, no external CSS, the figures are inline
``data:image/png;base64`` images, and a Content-Security-Policy forbids anything else, so it
can be mailed, attached to a CI run or opened offline.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import shlex
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from orchsim import plots
from orchsim.cli import parse_seeds, user_error
from orchsim.intervals import ReplicationError, display_bounds, paired_differences, summarize
from orchsim.plugins import add_plugin_argument
from orchsim.scenario import Scenario, load_scenario

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

    from orchsim.run import Results

__all__ = ["build_report", "figure_slugs", "main", "replications_frame", "scenario_description", "write_report"]

DPI = 90
FIGSIZE = plots.FIGSIZE  # 8 x 4 inches: 720 x 360 px at DPI
REPORT_NAME = "report.html"
NA = "n/a"  # a statistic with no data, e.g. the wait of tasks that never started

# Allows the page's own inline CSS and data: images, nothing else (no scripts, no fetches).
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1f23;
       max-width: 1500px; margin: 0 auto; padding: 0 1.5em 3em; }
header dl { display: grid; grid-template-columns: max-content 1fr; gap: .15em 1em; font-size: 13px; }
header dt { color: #57606a; }
header dd { margin: 0; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f6f8fa;
       padding: .1em .3em; border-radius: 3px; word-break: break-all; }
section { border-top: 2px solid #d0d7de; margin-top: 2em; }
.facts { color: #57606a; font-size: 13px; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; margin: .5em 0; }
th, td { border-bottom: 1px solid #d8dee4; padding: .3em .5em; text-align: right; white-space: nowrap; }
th { background: #f6f8fa; white-space: normal; vertical-align: bottom; }
td:first-child, th:first-child { text-align: left; }
tbody tr:hover { background: #f3f6fa; }
details { margin: .5em 0 1em; }
summary { cursor: pointer; color: #0969da; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 1em; }
figure { margin: 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { font-size: 13px; color: #57606a; }
"""


# Summary column -> (header, formatter) for the main table; util_* columns are added per resource.
def _fixed(digits: int) -> Callable[[float], str]:
    return lambda value: NA if pd.isna(value) else f"{value:,.{digits}f}"


_INT = _fixed(0)


def _percent(value: float) -> str:
    return NA if pd.isna(value) else f"{100 * value:.1f}"


_COLUMNS: dict[str, tuple[str, Callable[[float], str]]] = {
    "tasks_completed": ("completed", _INT),
    "tasks_failed": ("failed", _INT),
    "tasks_pending": ("pending", _INT),
    "unschedulable": ("unschedulable", _INT),
    "rescheduled": ("rescheduled", _INT),
    "mean_wait": ("mean wait (s)", _fixed(1)),
    "mean_wait_censored": ("mean wait counting never-started tasks (s, a lower bound)", _fixed(1)),
    "tasks_never_started": ("never started", _INT),
    "prob_wait": ("waited (%)", _percent),
    "p95_wait": ("p95 wait (s)", _fixed(1)),
    "p99_wait": ("p99 wait (s)", _fixed(1)),
    "makespan": ("makespan (s)", _fixed(0)),
    "throughput": ("throughput (tasks/s)", _fixed(3)),
}
_TAIL_COLUMNS: dict[str, tuple[str, Callable[[float], str]]] = {
    "peak_nodes_used": ("peak nodes used", _INT),
    "fragmentation": ("fragmented free capacity (%)", _percent),
    "wall_seconds": ("engine wall time (s)", _fixed(3)),
}


@dataclass(frozen=True)
class _Figure:
    slug: str
    title: str
    caption: str
    alt: str
    draw: Callable[[plt.Axes], object]


def _png_data_uri(draw: Callable[[plt.Axes], object]) -> tuple[str, int, int]:
    """Draw on a fresh Agg figure; returns the PNG as a data URI, and its pixel size."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    with warnings.catch_warnings():
        # An empty figure (e.g. no task ever started) is shown empty, not warned about.
        warnings.filterwarnings("ignore", message="No artists with labels found")
        draw(ax)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    width, height = (round(v) for v in fig.get_size_inches() * DPI)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), width, height


def _figures(results: Results) -> list[_Figure]:
    name = results.scenario.name
    lines = f"one line per policy ({', '.join(results.scenario.policies)})"
    timeseries, tasks = results.timeseries, results.tasks
    figures = [
        _Figure(
            f"utilisation_{resource}",
            f"{resource} utilisation",
            f"allocated {resource} as a share of the live nodes' capacity (%) against simulated time (s)",
            f"{name}: {resource} utilisation (% of live capacity) over simulated time (s), {lines}",
            lambda ax, r=resource: plots.plot_utilisation(timeseries, r, ax),
        )
        for resource in results.workload.resources
    ]
    figures += [
        _Figure(
            "wait_cdf",
            "wait-time CDF",
            "share of the started tasks that waited at most x seconds in the queue",
            f"{name}: cumulative share of started tasks against wait before start (s), {lines}",
            lambda ax: plots.plot_wait_cdf(tasks, ax),
        ),
        _Figure(
            "queue",
            "queue length",
            "tasks waiting in the queue against simulated time (s)",
            f"{name}: queued tasks over simulated time (s), {lines}",
            lambda ax: plots.plot_queue(timeseries, ax),
        ),
        _Figure(
            "nodes_used",
            "nodes in use",
            "nodes running at least one task against simulated time (s); dotted: nodes up, where that changes",
            f"{name}: nodes running at least one task over simulated time (s), {lines}",
            lambda ax: plots.plot_nodes_used(timeseries, ax),
        ),
    ]
    return figures


def figure_slugs(results: Results) -> list[str]:
    """The figures the page shows for ``results``, in order (``utilisation_<resource>``, ...)."""
    return [figure.slug for figure in _figures(results)]


def scenario_description(scenario: Scenario) -> str:
    """The YAML file's leading comment lines as one paragraph; the scenario's name otherwise."""
    path = Path(scenario.source)
    lines: list[str] = []
    if scenario.source != "<scenario>" and path.is_file():
        try:
            text = path.read_text(errors="replace")
        except OSError:
            text = ""
        for line in text.splitlines():
            stripped = line.strip()
            if not stripped and not lines:
                continue
            if not stripped.startswith("#"):
                break
            lines.append(stripped.lstrip("#").strip())
    return " ".join(line for line in lines if line) or scenario.name


def _columns(frame: pd.DataFrame, resources: Sequence[str]) -> dict[str, tuple[str, Callable[[float], str]]]:
    """The summary table's metric columns present in ``frame``, in order: column -> (header, formatter)."""
    columns = dict(_COLUMNS)
    for resource in resources:
        columns[f"mean_util_{resource}"] = (f"mean {resource} util (%)", _percent)
    for resource in resources:
        columns[f"mean_stranded_{resource}"] = (f"stranded {resource} (%)", _percent)
    columns |= _TAIL_COLUMNS
    return {c: spec for c, spec in columns.items() if c in frame.columns}


def _summary_table(summary: pd.DataFrame, resources: Sequence[str]) -> str:
    columns = {"policy": ("policy", str)} | _columns(summary, resources)
    table = summary[list(columns)].rename(columns={c: header for c, (header, _) in columns.items()})
    formatters = dict(columns.values())
    return table.to_html(index=False, border=0, na_rep=NA, formatters=formatters, classes="summary", escape=True)


def _over_seeds(formatter: Callable[[float], str]) -> Callable[[float], str]:
    # A mean of counts over seeds has a fraction worth showing.
    return _fixed(1) if formatter is _INT else formatter


def _interval_cell(metric: str, fmt: Callable[[float], str], mean: float, low: float, high: float) -> tuple[str, bool]:
    """``mean ± half-width``, or ``mean [low, high]`` when clipped at a natural bound; and whether."""
    if pd.isna(mean):
        return NA, False
    if pd.isna(low):
        return fmt(mean), False
    shown_low, shown_high, clipped = display_bounds(metric, low, high)
    if clipped:
        return f"{fmt(mean)} [{fmt(shown_low)}, {fmt(shown_high)}]", True
    return f"{fmt(mean)} ± {fmt((high - low) / 2)}", False


def _replicated_table(raw: pd.DataFrame, resources: Sequence[str], confidence: float) -> tuple[str, bool]:
    """The summary table over seeds (mean ± half-width per cell); and whether any interval was clipped."""
    columns = _columns(raw, resources)
    table = summarize(raw, metrics=list(columns), confidence=confidence)
    rows, any_clipped = [], False
    for _, row in table.iterrows():
        cells = {"policy": row["policy"]}
        for metric, (header, formatter) in columns.items():
            bounds = (row[f"{metric}_mean"], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"])
            cells[header], clipped = _interval_cell(metric, _over_seeds(formatter), *bounds)
            any_clipped |= clipped
        rows.append(cells)
    headers = ["policy"] + [header for header, _ in columns.values()]
    frame = pd.DataFrame(rows, columns=headers)
    return frame.to_html(index=False, border=0, classes="summary", escape=True), any_clipped


def _paired_table(raw: pd.DataFrame, resources: Sequence[str], baseline: str, confidence: float) -> str:
    columns = _columns(raw, resources)
    paired = paired_differences(raw, baseline, metrics=list(columns), confidence=confidence)
    rows = []
    for _, row in paired.iterrows():
        cells: dict[str, object] = {"policy": row["policy"], "seeds": row["pairs"]}
        for metric, (header, formatter) in columns.items():
            fmt = _over_seeds(formatter)
            diff, low, high = (row[f"{metric}_{s}"] for s in ("diff", "diff_ci_low", "diff_ci_high"))
            if pd.isna(diff):
                text = NA
            elif pd.isna(low):
                text = fmt(diff)
            else:
                text = f"{fmt(diff)} ± {fmt((high - low) / 2)}" + (" *" if row[f"{metric}_excludes_0"] else "")
            cells[f"Δ {header}"] = text
        rows.append(cells)
    frame = pd.DataFrame(rows)
    return frame.to_html(index=False, border=0, classes="paired", escape=True)


def _full_table(summary: pd.DataFrame) -> str:
    return summary.to_html(
        index=False, border=0, na_rep=NA, float_format=lambda v: f"{v:.6g}", classes="full", escape=True
    )


def _level(confidence: float) -> str:
    return f"{confidence:.0%}" if confidence * 100 == round(confidence * 100) else str(confidence)


def _section(index: int, results: Results, raw: pd.DataFrame, *, baseline: str | None, confidence: float) -> str:
    scenario = results.scenario
    esc = html.escape
    anchor = f"s{index}-{scenario.name}"
    seeds = list(dict.fromkeys(raw["seed"].tolist()))
    replicated = len(seeds) > 1
    seeds_text = ", ".join(map(str, seeds))
    facts = [
        f"seeds {seeds_text}" if replicated else f"seed {scenario.seed}",
        f"{len(results.workload):,} tasks",
        f"policies: {', '.join(scenario.policies)}",
    ]
    if scenario.source != "<scenario>":
        facts.append(f"file: {scenario.source}")
    notes = (
        "Waits are over the tasks that started; utilisation is the exact time-weighted "
        "allocated share of live capacity; stranded is the mean share of capacity left free on nodes "
        "that run something; fragmented is the mean share of free capacity on nodes too full for the "
        "median request."
    )
    if "mean_wait_censored" in raw.columns:
        notes += (
            " The censored mean wait also counts each task that never started, with its wait up to the "
            "end of the run: a lower bound of the true mean, which those tasks would only raise."
        )
    if replicated:
        table, clipped = _replicated_table(raw, results.workload.resources, confidence)
        notes += (
            f" Each cell: mean over seeds {seeds_text} ± the half-width of its {_level(confidence)} "
            "Student-t interval (n - 1 degrees of freedom)."
        )
        if clipped:
            notes += (
                " Intervals clipped at 0 (and at 100% for shares), the metric's natural bound: a cell shown "
                "as mean [low, high] had a t interval crossing it."
            )
    else:
        table = _summary_table(results.summary, results.workload.resources)
    parts = [
        f'<section id="{esc(anchor)}">',
        f"<h2>{esc(scenario.name)}</h2>",
        f"<p>{esc(scenario_description(scenario))}</p>",
        f'<p class="facts">{esc(" · ".join(facts))}</p>',
        "<h3>Summary</h3>",
        f'<p class="facts">{esc(notes)}</p>',
        f'<div class="table-wrap">{table}</div>',
        f"<details><summary>All summary columns{', per seed' if replicated else ''}</summary>",
        f'<div class="table-wrap">{_full_table(raw if replicated else results.summary)}</div>',
        "</details>",
    ]
    if baseline is not None:
        if replicated:
            how = (
                f"Mean difference over seeds {seeds_text} ± the half-width of the {_level(confidence)} "
                "Student-t interval of the per-seed differences; * the interval excludes 0"
            )
        else:
            how = "One seed: the difference of that run, no interval (--seeds gives one)"
        paired_note = (
            f"Each policy minus {baseline}, seed by seed: both ran on the same tasks, so the difference "
            f"is free of the noise they share. {how}. Differences are not clipped (they can be negative); "
            "those of percentages are in percentage points."
        )
        parts += [
            f"<h3>Paired differences against {esc(baseline)}</h3>",
            f'<p class="facts">{esc(paired_note)}</p>',
            f'<div class="table-wrap">{_paired_table(raw, results.workload.resources, baseline, confidence)}</div>',
        ]
    parts.append("<h3>Figures</h3>")
    if replicated:
        parts.append(f'<p class="facts">{esc(f"Drawn from seed {seeds[0]}, the first of the seeds.")}</p>')
    parts.append('<div class="figures">')
    for figure in _figures(results):
        uri, width, height = _png_data_uri(figure.draw)
        parts.append(
            f'<figure id="{esc(anchor)}-{esc(figure.slug)}">'
            f'<img src="{uri}" alt="{esc(figure.alt)}" width="{width}" height="{height}" '
            f'data-figure="{esc(figure.slug)}">'
            f"<figcaption><strong>{esc(figure.title)}</strong>: {esc(figure.caption)}</figcaption></figure>"
        )
    parts += ["</div>", "</section>"]
    return "\n".join(parts)


def _default_command(results: Sequence[Results]) -> str:
    args = ["python", "-m", "orchsim", "report"]
    args += [r.scenario.source if r.scenario.source != "<scenario>" else f"<{r.scenario.name}>" for r in results]
    return shlex.join(args)


def replications_frame(runs: Sequence[Results]) -> pd.DataFrame:
    """The summaries of one scenario's runs (one per seed) as one replications frame.

    Returns:
        ``policy``, ``seed``, then the summary columns: the layout ``orchsim.intervals``
        aggregates, one row per (policy, seed) in run order.
    """
    frames = []
    for results in runs:
        summary = results.summary.copy()
        summary.insert(summary.columns.get_loc("policy") + 1, "seed", results.scenario.seed)
        frames.append(summary)
    return pd.concat(frames, ignore_index=True)


def build_report(
    results: Sequence[Results],
    *,
    command: str | None = None,
    generated: datetime | None = None,
    replications: Sequence[pd.DataFrame] | None = None,
    baseline: str | None = None,
    confidence: float = 0.95,
) -> str:
    """The HTML page comparing the policies of each run in ``results``.

    Args:
        results: One ``orchsim.run`` result per scenario, in page order; its figures
            are drawn.
        command: The command line shown in the header (default: the equivalent
            ``python -m orchsim report`` call).
        generated: The time shown in the header (default: now, UTC).
        replications: Per scenario, its runs over several seeds as a replications frame
            (``replications_frame``); the summary table then shows intervals over the
            seeds. Default: each result's own summary (one seed).
        baseline: A policy to subtract from the others, seed by seed, in a second table.
        confidence: Level of the two-sided Student-t intervals.

    Returns:
        A complete, self-contained HTML document (no scripts, no external resources).

    Raises:
        ReplicationError: ``replications`` does not match ``results``, ``baseline`` is not
            among a scenario's policies, or a confidence outside (0, 1).
    """
    from orchsim import __version__

    if replications is None:
        replications = [replications_frame([r]) for r in results]
    if len(replications) != len(results):
        raise ReplicationError(f"replications: {len(replications)} frames for {len(results)} results")
    if not 0 < confidence < 1:
        raise ReplicationError(f"confidence: must be between 0 and 1, got {confidence}")
    esc = html.escape
    generated = generated or datetime.now(UTC)
    command = command if command is not None else _default_command(results)
    names = [r.scenario.name for r in results]
    title = "orchsim report: " + (", ".join(names) if names else "no scenarios")
    toc = "".join(f'<li><a href="#s{i}-{esc(name)}">{esc(name)}</a></li>' for i, name in enumerate(names))
    head = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{esc(title)}</h1>",
        "<dl>",
        f'<dt>generated</dt><dd><time datetime="{esc(generated.isoformat())}">'
        f"{esc(generated.strftime('%Y-%m-%d %H:%M:%S %Z').strip())}</time></dd>",
        f"<dt>orchsim</dt><dd>{esc(__version__)}</dd>",
        f"<dt>command</dt><dd><code>{esc(command)}</code></dd>",
        "</dl>",
        f"<nav><ul>{toc}</ul></nav>" if len(names) > 1 else "",
        "<p>Every policy of a scenario runs on identical tasks (common random numbers). "
        "Units: CPU in millicores, memory in MiB, GPU in milli-GPU, time in simulated seconds.</p>",
        "</header>",
        "<main>",
    ]
    body = [
        _section(i, r, raw, baseline=baseline, confidence=confidence)
        for i, (r, raw) in enumerate(zip(results, replications, strict=True))
    ]
    return "\n".join([*head, *body, "</main>", "</body>", "</html>", ""])


def _seeds_flag(seeds: Sequence[int] | int) -> str:
    if isinstance(seeds, int):
        return str(seeds)
    return ",".join(map(str, seeds)) + ("," if len(seeds) == 1 else "")


def write_report(
    scenarios: Sequence[str | Path | Scenario],
    out_dir: str | Path,
    *,
    policies: Sequence[str] | None = None,
    seed: int | None = None,
    seeds: Sequence[int] | int | None = None,
    baseline: str | None = None,
    warmup: float | None = None,
    until: float | None = None,
    confidence: float = 0.95,
    command: str | None = None,
    plugins: Sequence[str] = (),
) -> Path:
    """Run each scenario (every policy, every seed) and write ``out_dir/report.html``; returns its path.

    Args:
        scenarios: Scenario objects or YAML paths, in page order.
        out_dir: Folder for ``report.html`` (created).
        policies: Override every scenario's policies.
        seed: Override every scenario's seed (one run each).
        seeds: Several runs per scenario instead: a count (the scenario's seed and the
            next ones) or the explicit seeds. The table then shows intervals over them;
            the figures come from the first.
        baseline: A policy of every scenario to subtract from the others, seed by seed.
        warmup: Override ``metrics.warmup`` (simulated seconds left out at the start).
        until: Override ``metrics.until`` (end of the measurement window, seconds).
        confidence: Level of the two-sided Student-t intervals.
        command: The command line shown in the header (default: the equivalent call).
        plugins: Modules or ``.py`` files registering policies, loaded before the scenarios.

    Raises:
        ScenarioError, TraceError, UnknownPolicyError: for a bad scenario, trace, seed,
            window or policy name; every file and override is checked before anything runs.
        ReplicationError: ``seed`` and ``seeds`` together, malformed seeds, a baseline that
            is unknown or not among a scenario's policies, a confidence outside (0, 1).
        OSError: ``out_dir`` cannot be created or written.
        PluginError: a plugin that cannot be loaded.
    """
    from orchsim.plugins import load_plugins
    from orchsim.run import run
    from orchsim.scenario_edit import with_overrides
    from orchsim.scheduling import POLICIES
    from orchsim.sweep import check_baseline, check_seeds, seed_list

    load_plugins(plugins)
    for name in policies or ():
        POLICIES.spec(name)  # fail before anything runs
    if seed is not None and seeds is not None:
        raise ReplicationError("seed and seeds: give one or the other")
    if not 0 < confidence < 1:
        raise ReplicationError(f"confidence: must be between 0 and 1, got {confidence}")
    loaded = [s if isinstance(s, Scenario) else load_scenario(s) for s in scenarios]
    plans = []
    for scenario in loaded:
        checked = with_overrides(scenario, policies=policies, warmup=warmup, until=until)
        single = checked.seed if seed is None else seed
        chosen = seed_list(seeds, checked.seed) if seeds is not None else [single]
        check_seeds(checked, chosen)
        if baseline is not None:
            check_baseline(baseline, checked.policies)
        plans.append((scenario, chosen))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)  # an unwritable folder fails before the runs
    firsts, replications = [], []
    for scenario, chosen in plans:
        frames = []
        for k in chosen:
            results = run(scenario, policies=policies, seed=k, warmup=warmup, until=until)
            if not frames:
                firsts.append(results)  # the figures' run; the others keep only their summary
            frames.append(replications_frame([results]))
        replications.append(pd.concat(frames, ignore_index=True))
    if command is None:
        command = _default_command(firsts)
        if policies:
            command += "".join(f" --policy {shlex.quote(p)}" for p in policies)
        if seed is not None:
            command += f" --seed {seed}"
        if seeds is not None:
            command += f" --seeds {_seeds_flag(seeds)}"
        if baseline is not None:
            command += f" --baseline {shlex.quote(baseline)}"
        if warmup is not None:
            command += f" --warmup {warmup:g}"
        if until is not None:
            command += f" --until {until:g}"
        command += f" --out {shlex.quote(str(out_dir))}"
    page = build_report(firsts, command=command, replications=replications, baseline=baseline, confidence=confidence)
    path = out / REPORT_NAME
    path.write_text(page, encoding="utf-8")
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m orchsim report",
        description="Run scenarios under each policy and write one self-contained HTML page "
        "(tables and embedded PNG figures) comparing the policies.",
    )
    parser.add_argument("scenarios", nargs="+", type=Path, metavar="SCENARIO", help="scenario YAML file(s)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("results") / "report",
        metavar="DIR",
        help="output folder for report.html (default results/report/)",
    )
    parser.add_argument("--policy", action="append", dest="policies", metavar="NAME", help="policy to run (repeatable)")
    parser.add_argument("--seed", type=int, metavar="N", help="override every scenario's seed")
    parser.add_argument(
        "--seeds",
        metavar="N|LIST",
        help="several runs per scenario: a count (each scenario's seed and the next ones) or seeds (1,2,3; 7,); "
        "the table shows mean ± half-width of the Student-t interval, the figures the first seed",
    )
    parser.add_argument(
        "--baseline", metavar="POLICY", help="add a table of each other policy minus this one, paired by seed"
    )
    parser.add_argument("--warmup", type=float, metavar="SECONDS", help="simulated seconds left out at the start")
    parser.add_argument("--until", type=float, metavar="SECONDS", help="end of the measurement window (s)")
    add_plugin_argument(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m orchsim report ...``; returns the exit status (2 for user mistakes)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    policies = list(dict.fromkeys(args.policies)) if args.policies else None
    command = shlex.join(["python", "-m", "orchsim", "report", *argv])
    try:
        seeds = parse_seeds(args.seeds) if args.seeds is not None else None
        path = write_report(
            args.scenarios,
            args.out,
            policies=policies,
            seed=args.seed,
            seeds=seeds,
            baseline=args.baseline,
            warmup=args.warmup,
            until=args.until,
            command=command,
            plugins=args.plugins,
        )
    except Exception as err:
        return user_error(err, out=args.out)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
