"""``python -m orchsim replay DIR [--policy NAME ...] [--out OUT]``: replay a live cluster's recording.

``DIR`` is what ``python -m orchlive record`` wrote. The scenario built from it has the
recorded nodes (``cluster.nodes: [{kind: orchlive, path: DIR}]``) and tasks (``workload:
[{kind: orchlive, path: DIR}]``), and runs the recorded policy (with its recorded
parameters) first, then every ``--policy``. After the policies' table comes the check of
the recorded policy's replay against what the live cluster did (``orchsim.replay_check``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from orchsim.cli import fail, format_number, print_table, user_error
from orchsim.plugins import absolute_specs, add_plugin_argument
from orchsim.recording_format import POLICY_FILE

__all__ = ["RecordingError", "main", "replay", "replay_scenario", "what_if", "write_what_if"]


class RecordingError(ValueError):
    """A recording's ``policy.json`` that is missing or malformed (the message names it)."""


_SHOWN_DIVERGENCES = 5  # printed; --out's replay_check.txt has them all
_SHOWN = ("policy", "tasks_completed", "mean_wait", "p95_wait", "mean_nodes_used")


def _recorded_policy(directory: Path) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The policy name, its parameters and the whole ``policy.json``; a missing or bad file is a ``RecordingError``."""
    path = directory / POLICY_FILE
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise RecordingError(f"{path}: file not found (is {directory} a recording?)") from None
    except (OSError, json.JSONDecodeError) as err:
        raise RecordingError(f"{path}: cannot be read as JSON ({err})") from None
    policy = meta.get("policy") if isinstance(meta, dict) else None
    if not isinstance(policy, str) or not policy:
        raise RecordingError(f"{path}: field 'policy' must name the recorded policy")
    params = meta.get("params") or {}
    if not isinstance(params, dict):
        raise RecordingError(f"{path}: field 'params' must be a mapping")
    return policy, params, meta


#: How ``replay`` models the live master's decision latency (``--latency``): the mean of what the
#: recording shows, a draw per pass from it, or none (the simulator's default: zero).
LATENCY_MODELS = ("mean", "distribution", "none")


def _recorded_scheduler(meta: dict[str, Any], latency: str = "mean") -> dict[str, Any]:
    """The ``scheduler`` and ``cluster`` settings a recording carries (older ones carry none).

    The queue discipline (and backfill window) and preemption decide which task goes
    first, the filters and node sampling where it may go; the decision latency is the live
    master's, measured from the recording (``latency``: its mean, a draw per pass, or none),
    so that the replay's waits include it; the workers' lease plus the master's grace
    (``lost_grace``) is the failure timeout: a node the live master declared lost at
    ``lost`` stopped heartbeating that long before (``orchsim.cluster``).
    """
    scheduler = {k: meta[k] for k in ("queue", "backfill_window", "preemption", "sampling") if meta.get(k) is not None}
    if meta.get("filters"):
        scheduler["filters"] = meta["filters"]
    if latency != "none":  # the master's own, measured from the recording (orchsim.traces.decision_latencies)
        scheduler["decision_latency"] = {"recording": ".", "use": latency}
    cluster: dict[str, Any] = {}
    if meta.get("lease_ttl"):
        lease = float(meta["lease_ttl"])
        # The master declares a node lost its grace after the lease expired (--lost-grace).
        timeout = lease + float(meta.get("lost_grace") or 0.0)
        cluster = {"failure_timeout": timeout, "heartbeat_interval": max(lease / 4, 0.2)}  # as the worker renews
    return {"scheduler": scheduler, "cluster": cluster}


def replay_scenario(
    directory: str | Path,
    policies: Sequence[str] = (),
    *,
    seed: int | None = None,
    latency: str = "mean",
    plugins: Sequence[str] | None = None,
) -> Any:
    """The scenario that replays the recording in ``directory``: the recorded policy first, then ``policies``.

    ``seed``: the simulator's seed; default the live master's, as recorded (0 if not).
    ``latency``: the master's decision latency, one of ``LATENCY_MODELS`` (see the README).
    ``plugins``: modules or ``.py`` files with the policies and filters the replay needs;
    None: the live master's, as recorded (``--plugin`` there).

    Raises:
        RecordingError: ``policy.json`` is missing or malformed (one line naming it).
        ScenarioError: a policy name or parameter the simulator does not know.
    """
    from orchsim.scenario import parse_scenario

    folder = Path(directory)
    recorded, params, meta = _recorded_policy(folder)
    names = list(dict.fromkeys([recorded, *policies]))
    settings = _recorded_scheduler(meta, latency)
    data = {
        "version": 1,
        "name": f"replay_{folder.resolve().name}".replace(" ", "_"),
        "seed": seed if seed is not None else int(meta.get("seed") or 0),
        "policies": names,
        "policy_params": {recorded: params} if params else {},
        "plugins": absolute_specs(plugins) if plugins is not None else list(meta.get("plugins") or []),
        "scheduler": settings["scheduler"],
        "cluster": {"nodes": [{"kind": "orchlive", "path": "."}], **settings["cluster"]},
        "workload": [{"kind": "orchlive", "path": "."}],
    }
    return parse_scenario(data, source=str(folder / POLICY_FILE), base_dir=folder)


def replay(
    directory: str | Path,
    policies: Sequence[str] = (),
    *,
    seed: int | None = None,
    latency: str = "mean",
    plugins: Sequence[str] | None = None,
) -> tuple[Any, Any]:
    """Run the replay; returns the ``Results`` and the recorded policy's ``ReplayCheck``.

    The arguments are ``replay_scenario``'s.
    """
    from orchsim.replay_check import compare_replay
    from orchsim.replay_decisions import check_decisions
    from orchsim.run import run
    from orchsim.traces import load_orchlive_node_history, load_orchlive_tasks

    scenario = replay_scenario(directory, policies, seed=seed, latency=latency, plugins=plugins)
    results = run(scenario)
    _, recorded = load_orchlive_tasks(directory)
    tasks = results.table("tasks")
    mine = tasks["policy"] == scenario.policies[0]
    history = load_orchlive_node_history(directory)
    losses = {node: [t for t, kind in seen if kind == "lost"] for node, seen in history.items()}
    joins = [(node, t) for node, seen in history.items() for t, kind in seen if kind == "joined" and t > 0]
    mine_tasks = {name: np.asarray(values)[mine] for name, values in tasks.items()}
    lease = scenario.cluster.failure_timeout
    described = _latency_text(directory, latency)
    check = compare_replay(recorded, mine_tasks, losses=losses, lease=lease, joins=joins, latency=described)
    name, params, meta = _recorded_policy(Path(directory))
    decisions = check_decisions(
        directory,
        name,
        params,
        lost_grace=float(meta.get("lost_grace") or 0.0),
        filters=scenario.scheduler.filters,
        sample=scenario.scheduler.sampling,
    )
    return results, dataclasses.replace(check, decisions=decisions)


def _latency_text(directory: str | Path, latency: str) -> str:
    """How the replay modelled the master's decision latency, in a few words for the check's report."""
    from orchsim.traces import decision_latencies

    if latency == "none":
        return "none"
    measured = decision_latencies(directory)
    what = f"of {measured.size} placements at once in the recording"
    if latency == "mean":
        return f"{measured.mean():.3f} s each pass, the mean {what}"
    return f"a draw per pass from the {measured.size} latencies {what[3:]} (median {np.median(measured):.3f} s)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m orchsim replay",
        description="Replay a live cluster's recording (python -m orchlive record) under its policy and others.",
    )
    parser.add_argument("recording", type=Path, help="the recording's folder (tasks.csv, nodes.csv, policy.json)")
    parser.add_argument(
        "--policy",
        action="append",
        default=[],
        dest="policies",
        metavar="NAME[,NAME...]",
        help="another policy to replay under (repeatable, or a comma-separated list)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="FILE.html",
        help="write the what-if page: the live cluster beside every policy's replay (also the cost of the "
        "recorded failures: each policy replayed again without them), the check, the figures",
    )
    parser.add_argument("--out", type=Path, help="write tasks, summary, timeseries and replay_check.txt here")
    parser.add_argument("--seed", type=int, help="the simulator's seed (random policies; default: the recorded one)")
    add_plugin_argument(parser, where=" (instead of the plugins the live master loaded, as recorded)")
    parser.add_argument(
        "--latency",
        choices=LATENCY_MODELS,
        default="mean",
        help="the master's decision latency, measured from the recording: each pass waits its mean (default), "
        "or a draw from it per pass, or none (passes in zero time)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m orchsim replay``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    args.policies = [name.strip() for given in args.policies for name in given.split(",") if name.strip()]
    if not args.recording.is_dir():
        return fail(f"{args.recording}: not a folder (a recording is a folder of tasks.csv, nodes.csv, policy.json)")
    plugins = args.plugins or None  # none given: the recorded ones
    try:
        if args.report is None:
            results, check = replay(
                args.recording, args.policies, seed=args.seed, latency=args.latency, plugins=plugins
            )
        else:
            table, check, results = what_if(
                args.recording, args.policies, seed=args.seed, latency=args.latency, plugins=plugins
            )
            command = shlex.join(["python", "-m", "orchsim", "replay", *argv])
            write_what_if(args.recording, results, check, table, args.report, command=command)
        if args.out is not None:
            results.write(args.out, plots=False)
            (args.out / "replay_check.txt").write_text("\n".join(check.lines()) + "\n")
    except RecordingError as err:
        return fail(str(err))
    except Exception as err:  # a mistake is one line (user_error), a bug keeps its traceback
        return user_error(err, out=args.out)
    rows = [[format_number(row.get(c, "")) if c != "policy" else str(row[c]) for c in _SHOWN] for row in _rows(results)]
    print_table(["policy", "done", "wait mean", "wait p95", "nodes"], rows, title="replay (wait in s)")
    print(f"recorded policy {results.scenario.policies[0]}, replay vs the live cluster:")
    for line in check.lines(limit=_SHOWN_DIVERGENCES):
        print(line)
    if args.report is not None:
        print(f"what-if report: {args.report}")
    return 0


def what_if(
    directory: str | Path,
    policies: Sequence[str] = (),
    *,
    seed: int | None = None,
    latency: str = "mean",
    plugins: Sequence[str] | None = None,
) -> tuple[Any, Any, Any]:
    """The recording replayed under its policy and ``policies``, side by side with the live cluster.

    The replay runs once more without the recorded node losses, for what they cost each
    policy (only when the recording has some).

    Returns:
        A DataFrame (``orchsim.replay_metrics.side_by_side``'s rows: the live cluster, then
        each policy), the recorded policy's ``ReplayCheck``, and the replay's ``Results``.
    """
    import pandas as pd

    from orchsim.replay_metrics import side_by_side
    from orchsim.run import run
    from orchsim.traces import load_orchlive_tasks

    results, check = replay(directory, policies, seed=seed, latency=latency, plugins=plugins)
    _, recorded = load_orchlive_tasks(directory)
    without = None
    if not results.failures.empty:
        scenario = results.scenario
        plain = type(scenario.cluster.nodes[0])(kind="orchlive", path=".", failures=False)
        cluster = scenario.cluster.model_copy(update={"nodes": [plain]})
        without = run(scenario.model_copy(update={"cluster": cluster}))
    return pd.DataFrame(side_by_side(directory, recorded, results, without)), check, results


def write_what_if(
    directory: str | Path, results: Any, check: Any, table: Any, path: str | Path, *, command: str
) -> Path:
    """Write the what-if page (``orchsim.report.replay_page``) of ``what_if``'s outputs to ``path``."""
    from orchsim.report.replay_page import build_replay_report

    page = build_replay_report(str(directory), results, check, table.to_dict("records"), command=command)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out


def _rows(results: Any) -> list[dict[str, Any]]:
    """Summary rows with the mean number of nodes in use (from the time series)."""
    series = results.table("timeseries")
    rows = []
    for row in results.summary_rows:
        used = np.asarray(series["nodes_used"])[np.asarray(series["policy"]) == row["policy"]].astype(float)
        rows.append({**row, "mean_nodes_used": float(used.mean()) if used.size else 0.0})
    return rows
