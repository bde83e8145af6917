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

Modules: ``write`` (run the scenarios, write the file), ``page`` (the HTML), ``tables`` and
``figures`` (its parts), ``cli`` (the command line).
"""

from __future__ import annotations

from orchsim.report.cli import main
from orchsim.report.figures import figure_slugs
from orchsim.report.page import build_report, replications_frame, scenario_description
from orchsim.report.write import REPORT_NAME, write_report

__all__ = [
    "REPORT_NAME",
    "build_report",
    "figure_slugs",
    "main",
    "replications_frame",
    "scenario_description",
    "write_report",
]
