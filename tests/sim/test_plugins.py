"""A user's policy, written once in a file outside the package, reaches every entry point.

The README's own example (``fewest_tasks_then_emptiest``) is loaded from a temporary
folder: through a scenario's ``plugins:`` field, ``python -m orchsim --plugin``, a module
name on ``PYTHONPATH``, and an installed ``orchsim.policies`` entry point. Every way a
plugin can be wrong exits 2 with one line naming it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from orchsim.policy_params import (
    PolicyParamError,
    check_policy_params,
    merge_params,
    parse_assignment,
    parse_params_text,
)

from .conftest import ROOT

README_POLICY = '''\
from orchsim.scheduling import policy


@policy("fewest_tasks_then_emptiest", pure=True)
def fewest_tasks_then_emptiest(nodes, request):
    """Higher is better; computed as if the task were placed; never mutate nodes."""
    cpu = nodes.row("cpu")
    return -nodes.tasks - (nodes.allocated[cpu] + request[cpu]) * nodes.inv_capacity[cpu]
'''


def test_the_readme_shows_this_very_policy() -> None:
    """The copy tested here is the README's, word for word (the live test uses the same text)."""
    assert README_POLICY in (ROOT / "README.md").read_text()


SCENARIO = """\
version: 1
name: custom
{plugins}policies: [fewest_tasks_then_emptiest, bin_packing]
cluster:
  nodes:
    - {{count: 3, capacity: {{cpu: 4000, memory: 8192}}}}
workload:
  - {{kind: burst, at: 0, count: 6, resources: {{cpu: 500, memory: 256}}, duration: 10}}
"""


def run_cli(
    *args: str, cwd: Path, pythonpath: list[Path] | None = None, tool: str = "orchsim"
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in [ROOT, *(pythonpath or [])])
    return subprocess.run(
        [sys.executable, "-m", tool, *args], capture_output=True, text=True, cwd=cwd, timeout=120, env=env
    )


def placements(out: Path) -> pd.DataFrame:
    tasks = pd.read_csv(out / "tasks.csv")
    return tasks.pivot(index="task_id", columns="policy", values="node")


def assert_spreads_by_task_count(out: Path) -> None:
    # Six equal tasks at t=0 on three empty nodes: the custom policy puts each on the node
    # with the fewest tasks (node-0, node-1, node-2, node-0, ...); bin_packing fills node-0 first.
    table = placements(out)
    custom = table["fewest_tasks_then_emptiest"].tolist()
    assert [n.rsplit("-", 1)[1] for n in custom] == ["0", "1", "2", "0", "1", "2"], custom
    assert table["bin_packing"].nunique() == 1


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "custom.py").write_text(README_POLICY)
    return tmp_path


def test_scenario_plugins_field_resolves_relative_to_the_file(user_dir: Path) -> None:
    (user_dir / "custom.yaml").write_text(SCENARIO.format(plugins="plugins: [policies/custom.py]\n"))
    elsewhere = user_dir / "elsewhere"
    elsewhere.mkdir()
    result = run_cli(str(user_dir / "custom.yaml"), "--quiet", "--no-plots", "--out", "out", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert_spreads_by_task_count(elsewhere / "out")


def test_plugin_flag_with_a_file(user_dir: Path) -> None:
    (user_dir / "custom.yaml").write_text(SCENARIO.format(plugins=""))
    result = run_cli(
        "custom.yaml", "--plugin", "policies/custom.py", "--quiet", "--no-plots", "--out", "o", cwd=user_dir
    )
    assert result.returncode == 0, result.stderr
    assert_spreads_by_task_count(user_dir / "o")


def test_plugin_flag_with_a_module_name(user_dir: Path) -> None:
    (user_dir / "custom.yaml").write_text(SCENARIO.format(plugins=""))
    result = run_cli(
        "custom.yaml",
        "--plugin",
        "custom",
        "--quiet",
        "--no-plots",
        "--out",
        "o",
        cwd=user_dir,
        pythonpath=[user_dir / "policies"],
    )
    assert result.returncode == 0, result.stderr
    assert_spreads_by_task_count(user_dir / "o")


def test_installed_entry_point_needs_no_flag(user_dir: Path) -> None:
    # What `pip install my-policies` leaves behind: a module and a dist-info declaring it.
    site = user_dir / "site"
    site.mkdir()
    (site / "my_policies.py").write_text(README_POLICY)
    dist = site / "my_policies-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-policies\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[orchsim.policies]\nmine = my_policies\n")
    (user_dir / "custom.yaml").write_text(SCENARIO.format(plugins=""))
    result = run_cli("custom.yaml", "--quiet", "--no-plots", "--out", "o", cwd=user_dir, pythonpath=[site])
    assert result.returncode == 0, result.stderr
    assert_spreads_by_task_count(user_dir / "o")


BAD_PLUGINS = [
    ("missing file", "nope.py", None, "error: --plugin: plugin nope.py: file not found: "),
    (
        "import error",
        "bad.py",
        "import numpy\nraise RuntimeError('boom')\n",
        "plugin bad.py: line 2: RuntimeError: boom",
    ),
    ("syntax error", "bad.py", "def (:\n", "plugin bad.py: line 1: SyntaxError: "),
    ("no module", "no_such_module_here", None, "plugin no_such_module_here: no module named 'no_such_module_here'"),
    (
        "duplicate name",
        "dup.py",
        README_POLICY,
        "plugin dup.py: line 4: ValueError: policy 'fewest_tasks_then_emptiest' is already registered",
    ),
]


@pytest.mark.parametrize(("label", "name", "text", "expected"), BAD_PLUGINS, ids=[c[0] for c in BAD_PLUGINS])
def test_bad_plugins_exit_2_with_one_line(
    user_dir: Path, label: str, name: str, text: str | None, expected: str
) -> None:
    (user_dir / "custom.yaml").write_text(SCENARIO.format(plugins=""))
    if text is not None:
        (user_dir / name).write_text(text)
    result = run_cli("custom.yaml", "--plugin", "policies/custom.py", "--plugin", name, cwd=user_dir)
    assert result.returncode == 2, (label, result.stderr)
    assert expected in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_bad_plugin_in_a_scenario_names_the_field(user_dir: Path) -> None:
    (user_dir / "custom.yaml").write_text(SCENARIO.format(plugins="plugins: [policies/absent.py]\n"))
    result = run_cli("custom.yaml", cwd=user_dir)
    assert result.returncode == 2
    assert "custom.yaml: plugins.0: plugin policies/absent.py: file not found" in result.stderr


def test_master_refuses_a_bad_plugin_or_parameter_before_connecting(user_dir: Path) -> None:
    # No etcd is running at this address: the checks come first, exit 2, one line.
    common = ["master", "--etcd", "127.0.0.1:1", "--port", "1"]
    cases = [
        (["--plugin", "policies/absent.py"], "error: --plugin: plugin policies/absent.py: file not found"),
        (["--policy", "fewest_tasks_then_emptiest"], "error: --policy: unknown policy 'fewest_tasks_then_emptiest'"),
        (
            ["--policy-param", "wieghts.cpu=1"],
            "error: policy 'bin_packing' has no parameter wieghts; it takes: weights",
        ),
        (["--policy-param", "weights=7"], "error: policy 'bin_packing' with {'weights': 7}: "),
        (["--policy-params", "[1, 2]"], "error: --policy-params: expected a mapping"),
    ]
    for flags, expected in cases:
        result = run_cli(*common, *flags, cwd=user_dir, tool="orchlive")
        assert result.returncode == 2, (flags, result.stderr)
        assert result.stderr.startswith(expected), (flags, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr


def test_policy_param_parsing_and_merging() -> None:
    assert parse_assignment("weights.cpu=0.5") == {"weights": {"cpu": 0.5}}
    assert parse_assignment("threshold=true") == {"threshold": True}
    assert parse_params_text('{"weights": {"cpu": 1, "memory": 2}}') == {"weights": {"cpu": 1, "memory": 2}}
    assert parse_params_text("weights: {gpu: 1}") == {"weights": {"gpu": 1}}
    merged = merge_params({"weights": {"cpu": 1, "memory": 2}}, {"weights": {"cpu": 0.5}})
    assert merged == {"weights": {"cpu": 0.5, "memory": 2}}
    with pytest.raises(PolicyParamError, match="expected name=value"):
        parse_assignment("weights.cpu")
    check_policy_params("bin_packing", {"weights": {"cpu": 0.5, "memory": 0.5}})
    with pytest.raises(PolicyParamError, match="no parameter nope"):
        check_policy_params("bin_packing", {"nope": 1})


def test_params_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("weights: {cpu: 0.2, memory: 0.8}\n")
    assert parse_params_text(f"@{tmp_path / 'p.yaml'}") == {"weights": {"cpu": 0.2, "memory": 0.8}}
    with pytest.raises(PolicyParamError, match="cannot read"):
        parse_params_text(f"@{tmp_path / 'absent.yaml'}")


def test_sweep_loads_the_plugin_in_its_worker_processes(user_dir: Path) -> None:
    # Two worker processes: forked ones inherit the plugin; spawned ones (macOS, Windows) load it
    # from the scenario data each job carries, where the sweep put its absolute path.
    (user_dir / "custom.yaml").write_text(SCENARIO.format(plugins=""))
    result = run_cli(
        "sweep",
        "custom.yaml",
        "--plugin",
        "policies/custom.py",
        "--seeds",
        "1,2",
        "--processes",
        "2",
        "--quiet",
        "--out",
        "sw",
        "--baseline",
        "bin_packing",
        cwd=user_dir,
    )
    assert result.returncode == 0, result.stderr
    raw = pd.read_csv(user_dir / "sw" / "sweep_replications.csv")
    assert sorted(raw.policy.unique()) == ["bin_packing", "fewest_tasks_then_emptiest"]
    # Spreading six tasks over three nodes uses all three; packing them uses one.
    peak = raw.groupby("policy").peak_nodes_used.max()
    assert (peak["fewest_tasks_then_emptiest"], peak["bin_packing"]) == (3, 1)
    assert "paired differences" in result.stdout


def test_sweep_and_report_refuse_a_bad_plugin(user_dir: Path) -> None:
    (user_dir / "custom.yaml").write_text(SCENARIO.format(plugins=""))
    for command in ("sweep", "report"):
        result = run_cli(command, "custom.yaml", "--plugin", "absent.py", cwd=user_dir)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.startswith("error: --plugin: plugin absent.py: file not found"), result.stderr
        assert result.stderr.count("\n") == 1


def test_report_with_a_plugin(user_dir: Path) -> None:
    (user_dir / "custom.yaml").write_text(SCENARIO.format(plugins=""))
    result = run_cli("report", "custom.yaml", "--plugin", "policies/custom.py", "--out", "rep", cwd=user_dir)
    assert result.returncode == 0, result.stderr
    page = (user_dir / "rep" / "report.html").read_text()
    assert "fewest_tasks_then_emptiest" in page


FILTER_PLUGIN = """\
from orchsim.scheduling import filter


@filter("not_on_node_0", reason="node 0 is reserved", static=True)
def not_on_node_0(nodes, request, task):
    return nodes.index_range != 0
"""


def test_a_plugin_filter_named_in_the_scenario_constrains_the_simulator(tmp_path: Path) -> None:
    from orchsim import run
    from orchsim.scenario import parse_scenario
    from orchsim.scheduling import FILTERS

    (tmp_path / "reserve.py").write_text(FILTER_PLUGIN)
    data = {
        "version": 1,
        "name": "f",
        "plugins": ["reserve.py"],
        "policies": ["first_fit"],
        "scheduler": {"filters": {"not_on_node_0": {}, "max_tasks_per_node": {"limit": 2}}},
        "cluster": {"nodes": [{"count": 3, "capacity": {"cpu": 1000, "memory": 1000}}]},
        "workload": [
            # Five small tasks: first_fit would use node 0; the plugin filter forbids it and the
            # task limit puts two on each of nodes 1 and 2; the fifth waits for the first to end.
            {"kind": "burst", "at": 0, "count": 5, "resources": {"cpu": 100, "memory": 1}, "duration": 10},
            # Needs 1500 cpu: no node ever has it: unschedulable, with the filters' verdicts.
            {"kind": "burst", "at": 1, "count": 1, "resources": {"cpu": 1500, "memory": 1}, "duration": 1},
        ],
    }
    try:
        tasks = run(parse_scenario(data, base_dir=tmp_path)).tasks
    finally:
        FILTERS.unregister("not_on_node_0")
    assert tasks.node.tolist()[:5] == ["g0-1", "g0-1", "g0-2", "g0-2", "g0-1"]
    assert tasks.start_time.tolist()[:5] == [0.0, 0.0, 0.0, 0.0, 10.0]
    assert tasks.status[5] == "unschedulable"
    assert tasks.reason[5] == "never fits: 0/3 nodes could hold it even when empty: 3 insufficient cpu"


def test_a_weight_on_any_resource_is_accepted() -> None:
    # A live cluster may offer disk: the start-up check must not refuse weighting it.
    check_policy_params("least_allocated", {"weights": {"cpu": 1, "disk": 2}})


BROKEN_POLICIES = """\
import numpy as np
from orchsim.scheduling import policy


@policy("wrong_shape")
def wrong_shape(nodes, request):
    return np.zeros(2)


@policy("raises")
def raises(nodes, request):
    return nodes.tasks[nodes.n_nodes + 5]


@policy("not_a_number")
def not_a_number(nodes, request):
    return np.full(nodes.n_nodes, np.nan)
"""


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("wrong_shape", "error: policy 'wrong_shape' returned shape (2,), expected (3,)"),
        ("raises", "error: plugin broken.py, line 12 (in raises): IndexError: index 8 is out of bounds"),
        ("not_a_number", "error: policy 'not_a_number' scored node 'g0-0' NaN"),
    ],
)
def test_a_broken_policy_is_named_on_one_line(user_dir: Path, name: str, expected: str) -> None:
    """A user's policy that raises or breaks its contract is the user's bug: one line, exit 2."""
    (user_dir / "broken.py").write_text(BROKEN_POLICIES)
    (user_dir / "custom.yaml").write_text(SCENARIO.format(plugins=""))
    plugins = ["--plugin", "policies/custom.py", "--plugin", "broken.py"]
    result = run_cli("custom.yaml", *plugins, "--policy", name, "--no-plots", cwd=user_dir)
    assert result.returncode == 2 and result.stderr.startswith(expected), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def test_a_policy_raising_in_a_sweeps_worker_process_is_named_too(user_dir: Path) -> None:
    (user_dir / "broken.py").write_text(BROKEN_POLICIES)
    (user_dir / "custom.yaml").write_text(SCENARIO.format(plugins=""))
    flags = ["--param", "workload.0.count", "--values", "4,6", "--processes", "2", "--policy", "raises"]
    plugins = ["--plugin", "policies/custom.py", "--plugin", "broken.py"]
    result = run_cli("sweep", "custom.yaml", *plugins, *flags, cwd=user_dir)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: plugin broken.py, line 12 (in raises): IndexError"), result.stderr
