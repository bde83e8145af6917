"""The what-if page of a replay: the live cluster beside each policy's replay of its recording.

``python -m orchsim replay DIR --policy a,b,c --report out.html`` writes it: what the live
cluster did and what each policy would have done on the very same tasks and node history
(waits, nodes in use, stranded capacity, the recorded failures' cost), the check of the
recorded policy's replay against the live placements with every divergence and its cause,
and the simulator's figures. Self-contained, as the scenario report (``orchsim.report.page``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from orchsim.report.page import _figures, _head

__all__ = ["build_replay_report"]

# Row key -> (header, digits); stranded columns are added per resource.
_COLUMNS = {
    "run": ("run", None),
    "done": ("completed", 0),
    "mean_wait": ("mean wait (s)", 3),
    "p95_wait": ("p95 wait (s)", 3),
    "mean_time_in_system": ("mean submission to end (s)", 3),
    "mean_nodes_used": ("nodes in use (mean)", 2),
    "tasks_lost": ("tasks lost with a node", 0),
    "failure_cost_wait": ("failures' cost: mean wait (s)", 3),
    "failure_cost_time_in_system": ("failures' cost: submission to end (s)", 3),
}


def _cell(value: Any, digits: int | None, *, signed: bool = False) -> str:
    if digits is None or isinstance(value, str):
        return html.escape(str(value))
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{value:+,.{digits}f}" if signed else f"{value:,.{digits}f}"


def _table(rows: Sequence[dict[str, Any]]) -> str:
    """The side-by-side table: a row per run, the columns any row has."""
    keys = [k for k in _COLUMNS if any(k in r for r in rows)]
    stranded = sorted({k for r in rows for k in r if k.startswith("mean_stranded_")})
    head = [*(_COLUMNS[k][0] for k in keys), *(f"stranded {k.removeprefix('mean_stranded_')} (%)" for k in stranded)]
    lines = ["<table><thead><tr>", *(f"<th>{html.escape(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        cells = [_cell(row.get(k, float("nan")), _COLUMNS[k][1], signed=k.startswith("failure_cost")) for k in keys]
        cells += [_cell(100 * row[k], 1) if k in row else "n/a" for k in stranded]
        lines.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "".join([*lines, "</tbody></table>"])


def _check(check: Any) -> list[str]:
    """The recorded policy's replay against the live cluster, and every divergence with its cause."""
    esc = html.escape
    head, waits = check.lines()[:2]
    parts = ["<h3>Recorded policy: replay vs the live cluster</h3>", f"<p>{esc(head)}</p>", f"<p>{esc(waits)}</p>"]
    parts += _decisions(check.decisions)
    if not check.divergences:
        return [*parts, "<p>No divergence: every task went to the node it went to live.</p>"]
    cells = [(d.task_id, d.recorded, d.replayed, d.cause) for d in check.divergences]
    table = _task_nodes_table(cells, "replayed node")
    return [*parts, f'<h4>Divergences ({len(check.divergences)})</h4><div class="table-wrap">{table}</div>']


def _task_nodes_table(cells: list[tuple[str, str, str, str]], other: str) -> str:
    """A table of (task, live node, ``other`` node, cause) rows: the replay's divergences or the core's differences."""
    esc = html.escape
    rows = "".join(
        f"<tr><td><code>{esc(task)}</code></td><td>{esc(live)}</td><td>{esc(node or '-')}</td>"
        f"<td>{esc(cause)}</td></tr>"
        for task, live, node, cause in cells
    )
    heads = "".join(f"<th>{h}</th>" for h in ("task", "live node", other, "cause"))
    return f"<table><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>"


def _decisions(decisions: Any) -> list[str]:
    """Every live placement decided again by the core (``orchsim.replay_decisions``), when the recording allows it."""
    if decisions is None:
        return ["<p>Decisions not checked: the recording has no event ids (before format 3).</p>"]
    parts = [f"<p>{html.escape(decisions.lines()[0])}</p>"]
    if decisions.differences:
        cells = [(d.task_id, d.recorded, d.decided, d.cause) for d in decisions.differences]
        table = _task_nodes_table(cells, "core's node")
        parts.append(f'<div class="table-wrap">{table}</div>')
    return parts


def _history(results: Any) -> list[str]:
    """The recorded node history the replay lived through (losses as the first policy's run had them)."""
    failures = results.failures
    first = failures[failures["policy"] == results.scenario.policies[0]]
    if first.empty:
        return ['<p class="facts">No node was lost in the recording.</p>']
    items = "".join(
        f"<li>node <code>{html.escape(str(f.node))}</code>: died at {f.failed_at:.3f} s (one lease before the live "
        f"master declared it lost), declared lost at {f.detected_at:.3f} s</li>"
        for f in first.itertuples()
    )
    return [f"<ul>{items}</ul>"]


def build_replay_report(
    recording: str,
    results: Any,
    check: Any,
    rows: Sequence[dict[str, Any]],
    *,
    command: str,
    generated: datetime | None = None,
) -> str:
    """The what-if page (see the module).

    Args:
        recording: The recording's folder, as given.
        results: The replay's ``Results`` (the recorded policy first, then the others).
        check: The recorded policy's ``ReplayCheck``.
        rows: ``orchsim.replay_metrics.side_by_side``'s rows (the live cluster first).
        command: The command line shown in the header.
        generated: The time shown (default now, UTC).
    """
    esc = html.escape
    scenario = results.scenario
    title = f"orchsim replay: {recording}"
    head = _head(title, [scenario.name], command, generated or datetime.now(UTC))
    notes = (
        "Each row is measured the same way, from when each task held which node: nodes in use and stranded "
        "capacity (free capacity on nodes running something, as a share of the nodes present) are exact "
        "time-weighted means over the run. Waits run from submission to the first placement. The failures' "
        "cost is the replay with the recorded node losses minus the same replay without them."
    )
    policies = ", ".join(scenario.policies)
    facts = f"{len(results.workload):,} tasks · recorded policy {scenario.policies[0]} · policies: {policies}"
    body = [
        f'<section id="s0-{esc(scenario.name)}">',
        f"<h2>{esc(scenario.name)}</h2>",
        f'<p class="facts">{esc(facts)}</p>',
        "<h3>Recorded vs replayed</h3>",
        f'<p class="facts">{esc(notes)}</p>',
        f'<div class="table-wrap">{_table(rows)}</div>',
        "<h3>Node history replayed</h3>",
        *_history(results),
        *_check(check),
        *_figures(results, f"s0-{scenario.name}", [scenario.seed]),
        "</section>",
    ]
    return "\n".join([*head, *body, "</main>", "</body>", "</html>", ""])
