"""The HTML page: a header, then one section per scenario with its tables and figures.

The page loads nothing: no scripts, no external CSS, the figures are inline
``data:image/png;base64`` images, and a Content-Security-Policy forbids anything else, so it
can be mailed, attached to a CI run or opened offline.
"""

from __future__ import annotations

import html
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from orchsim.intervals import ReplicationError
from orchsim.report.figures import figures, png_data_uri
from orchsim.report.tables import full_table, paired_table, replicated_table, summary_table

if TYPE_CHECKING:
    from orchsim.run import Results
    from orchsim.scenario import Scenario

__all__ = ["build_report", "default_command", "replications_frame", "scenario_description"]

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


def level_label(confidence: float) -> str:
    return f"{confidence:.0%}" if confidence * 100 == round(confidence * 100) else str(confidence)


_NOTES = (
    "Waits are over the tasks that started; utilisation is the exact time-weighted "
    "allocated share of live capacity; stranded is the mean share of capacity left free on nodes "
    "that run something; fragmented is the mean share of free capacity on nodes too full for the "
    "median request."
)


def _summary(results: Results, raw: pd.DataFrame, seeds: list[int], confidence: float) -> tuple[str, str]:
    """The summary table of a section (over the seeds when there are several), and its notes."""
    notes = _NOTES
    if "mean_wait_censored" in raw.columns:
        notes += (
            " The censored mean wait also counts each task that never started, with its wait up to the "
            "end of the run: a lower bound of the true mean, which those tasks would only raise."
        )
    if len(seeds) == 1:
        return summary_table(results.summary, results.workload.resources), notes
    table, clipped = replicated_table(raw, results.workload.resources, confidence)
    notes += (
        f" Each cell: mean over seeds {', '.join(map(str, seeds))} ± the half-width of its "
        f"{level_label(confidence)} Student-t interval (n - 1 degrees of freedom)."
    )
    if clipped:
        notes += (
            " Intervals clipped at 0 (and at 100% for shares), the metric's natural bound: a cell shown "
            "as mean [low, high] had a t interval crossing it."
        )
    return table, notes


def _paired(results: Results, raw: pd.DataFrame, seeds: list[int], baseline: str, confidence: float) -> list[str]:
    """The paired-differences part of a section: heading, how to read it, the table."""
    if len(seeds) > 1:
        how = (
            f"Mean difference over seeds {', '.join(map(str, seeds))} ± the half-width of the "
            f"{level_label(confidence)} Student-t interval of the per-seed differences; * the interval excludes 0"
        )
    else:
        how = "One seed: the difference of that run, no interval (--seeds gives one)"
    paired_note = (
        f"Each policy minus {baseline}, seed by seed: both ran on the same tasks, so the difference "
        f"is free of the noise they share. {how}. Differences are not clipped (they can be negative); "
        "those of percentages are in percentage points."
    )
    table = paired_table(raw, results.workload.resources, baseline, confidence)
    return [
        f"<h3>Paired differences against {html.escape(baseline)}</h3>",
        f'<p class="facts">{html.escape(paired_note)}</p>',
        f'<div class="table-wrap">{table}</div>',
    ]


def _figures(results: Results, anchor: str, seeds: list[int]) -> list[str]:
    """The figures part of a section: every figure as an inline PNG with its caption."""
    esc = html.escape
    parts = ["<h3>Figures</h3>"]
    if len(seeds) > 1:
        parts.append(f'<p class="facts">{esc(f"Drawn from seed {seeds[0]}, the first of the seeds.")}</p>')
    parts.append('<div class="figures">')
    for figure in figures(results):
        uri, width, height = png_data_uri(figure.draw)
        parts.append(
            f'<figure id="{esc(anchor)}-{esc(figure.slug)}">'
            f'<img src="{uri}" alt="{esc(figure.alt)}" width="{width}" height="{height}" '
            f'data-figure="{esc(figure.slug)}">'
            f"<figcaption><strong>{esc(figure.title)}</strong>: {esc(figure.caption)}</figcaption></figure>"
        )
    return [*parts, "</div>"]


def _section(index: int, results: Results, raw: pd.DataFrame, *, baseline: str | None, confidence: float) -> str:
    """One scenario's section: description, facts, summary table(s), paired differences, figures."""
    scenario = results.scenario
    esc = html.escape
    anchor = f"s{index}-{scenario.name}"
    seeds = list(dict.fromkeys(raw["seed"].tolist()))
    replicated = len(seeds) > 1
    facts = [
        f"seeds {', '.join(map(str, seeds))}" if replicated else f"seed {scenario.seed}",
        f"{len(results.workload):,} tasks",
        f"policies: {', '.join(scenario.policies)}",
    ]
    if scenario.source != "<scenario>":
        facts.append(f"file: {scenario.source}")
    table, notes = _summary(results, raw, seeds, confidence)
    parts = [
        f'<section id="{esc(anchor)}">',
        f"<h2>{esc(scenario.name)}</h2>",
        f"<p>{esc(scenario_description(scenario))}</p>",
        f'<p class="facts">{esc(" · ".join(facts))}</p>',
        "<h3>Summary</h3>",
        f'<p class="facts">{esc(notes)}</p>',
        f'<div class="table-wrap">{table}</div>',
        f"<details><summary>All summary columns{', per seed' if replicated else ''}</summary>",
        f'<div class="table-wrap">{full_table(raw if replicated else results.summary)}</div>',
        "</details>",
    ]
    if baseline is not None:
        parts += _paired(results, raw, seeds, baseline, confidence)
    parts += _figures(results, anchor, seeds)
    parts.append("</section>")
    return "\n".join(parts)


def default_command(results: Sequence[Results]) -> str:
    """The ``python -m orchsim report`` call that runs ``results``' scenarios (their files)."""
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


def _head(title: str, names: list[str], command: str, generated: datetime) -> list[str]:
    """The page up to its first section: the document head, the title, when, what version, which command."""
    from orchsim import __version__

    esc = html.escape
    toc = "".join(f'<li><a href="#s{i}-{esc(name)}">{esc(name)}</a></li>' for i, name in enumerate(names))
    return [
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
    generated = generated or datetime.now(UTC)
    if replications is None:
        replications = [replications_frame([r]) for r in results]
    if len(replications) != len(results):
        raise ReplicationError(f"replications: {len(replications)} frames for {len(results)} results")
    if not 0 < confidence < 1:
        raise ReplicationError(f"confidence: must be between 0 and 1, got {confidence}")
    command = command if command is not None else default_command(results)
    names = [r.scenario.name for r in results]
    title = "orchsim report: " + (", ".join(names) if names else "no scenarios")
    body = [
        _section(i, r, raw, baseline=baseline, confidence=confidence)
        for i, (r, raw) in enumerate(zip(results, replications, strict=True))
    ]
    head = _head(title, names, command, generated)
    return "\n".join([*head, *body, "</main>", "</body>", "</html>", ""])
