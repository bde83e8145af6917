"""A plugin's code as it is now, everywhere: edited files imported again, cache keys that follow edits.

A Dask worker lives across sweeps: it used to keep the first version of a plugin file it
imported and run it after the file was edited (and store the stale result under the new
file's key). A plugin named as a module was not part of the sweep's cache key at all, and a
recording's folder could not be an input of a sweep.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from orchsim.plugins import PluginError, load_plugin
from orchsim.scheduling import FILTERS, POLICIES, NodeMatrix
from orchsim.sweep_jobs import Job, _with_local_inputs, read_inputs, scenario_hash

PLUGIN = """
from orchsim.scheduling import filter, policy

@policy("edit_probe", pure=True)
def edit_probe(nodes, request):
    return nodes.tasks * {sign}

@filter("edit_probe_filter")
def edit_probe_filter(nodes, request, task):
    return nodes.tasks < {limit}
"""


@pytest.fixture
def probe(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "probe.py"
    yield path
    for registry, name in ((POLICIES, "edit_probe"), (FILTERS, "edit_probe_filter")):
        if name in registry:
            registry.unregister(name)


def _scores(nodes: NodeMatrix) -> list[float]:
    return list(POLICIES.spec("edit_probe").scorer(nodes, nodes.request_vector({"cpu": 1})))


def test_an_edited_plugin_file_is_imported_again_and_replaces_its_names(probe: Path) -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [4, 4]})
    nodes.allocate(1, nodes.request_vector({"cpu": 1}))
    probe.write_text(PLUGIN.format(sign=1, limit=1))
    load_plugin(str(probe))
    assert _scores(nodes) == [0.0, 1.0]
    load_plugin(str(probe))  # unchanged: nothing imported again, no "already registered"
    probe.write_text(PLUGIN.format(sign=-1, limit=2))
    load_plugin(str(probe))
    assert _scores(nodes) == [0.0, -1.0]  # the edited code, under the same name
    assert list(FILTERS.spec("edit_probe_filter").check(nodes, None, None)) == [True, True]


def test_a_broken_edit_is_refused_and_the_last_good_version_stays(probe: Path) -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [4, 4]})
    nodes.allocate(0, nodes.request_vector({"cpu": 1}))
    probe.write_text(PLUGIN.format(sign=1, limit=1))
    load_plugin(str(probe))
    probe.write_text(PLUGIN.format(sign=1, limit=1) + "\nraise RuntimeError('half-written')\n")
    with pytest.raises(PluginError, match="half-written"):
        load_plugin(str(probe))
    assert _scores(nodes) == [1.0, 0.0]
    assert "edit_probe_filter" in FILTERS


def _scenario(plugins: list[str]) -> dict:
    return {
        "version": 1,
        "name": "s",
        "policies": ["first_fit"],
        "plugins": plugins,
        "cluster": {"nodes": [{"count": 1, "capacity": {"cpu": 1000}}]},
        "workload": [{"kind": "burst", "count": 1, "resources": {"cpu": 100}, "duration": 1}],
    }


def test_a_module_plugin_is_part_of_the_sweep_cache_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    module = tmp_path / "edit_probe_module.py"
    module.write_text("X = 1\n")
    first = scenario_hash(_scenario(["edit_probe_module"]), tmp_path)
    assert scenario_hash(_scenario(["edit_probe_module"]), tmp_path) == first
    module.write_text("X = 2\n")
    assert scenario_hash(_scenario(["edit_probe_module"]), tmp_path) != first
    sys.modules.pop("edit_probe_module", None)


def test_a_recording_folder_is_hashed_and_shipped_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # the unpacked copies go here, not in /tmp
    (tmp_path / "tmp").mkdir()
    recording = tmp_path / "rec"
    (recording / "sub").mkdir(parents=True)
    (recording / "tasks.csv").write_text("a,b\n1,2\n")
    (recording / "sub" / "more.txt").write_text("x")
    data = _scenario([]) | {"workload": [{"kind": "orchlive", "path": "rec"}]}
    first = scenario_hash(data, tmp_path)
    (recording / "tasks.csv").write_text("a,b\n1,3\n")
    assert scenario_hash(data, tmp_path) != first
    job = Job(data, "s.yaml", str(tmp_path), ("first_fit",), 1, inputs=(str(recording.resolve()),))
    shipped = read_inputs([job])
    absolute = data | {"workload": [{"kind": "orchlive", "path": str(recording.resolve())}]}
    local = Path(_with_local_inputs(absolute, shipped)["workload"][0]["path"])
    assert local != recording.resolve()
    assert (local / "tasks.csv").read_text() == "a,b\n1,3\n" and (local / "sub" / "more.txt").read_text() == "x"
    again = Path(_with_local_inputs(absolute, shipped)["workload"][0]["path"])
    assert again == local  # unpacked once per machine
    assert np.array_equal(sorted(p.name for p in local.rglob("*")), sorted(p.name for p in recording.rglob("*")))


def test_one_file_named_as_a_module_and_as_a_path_loads_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--plugin edit_probe_once`` beside a scenario's ``plugins: [edit_probe_once.py]``: no "already registered"."""
    (tmp_path / "edit_probe_once.py").write_text(PLUGIN.format(sign=1, limit=1).replace("edit_probe", "once_probe"))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        by_name = load_plugin("edit_probe_once")
        assert load_plugin(str(tmp_path / "edit_probe_once.py")) is by_name
    finally:
        for registry, name in ((POLICIES, "once_probe"), (FILTERS, "once_probe_filter")):
            if name in registry:
                registry.unregister(name)
        sys.modules.pop("edit_probe_once", None)


def test_a_module_in_the_working_folder_is_found_without_it_on_the_path(tmp_path: Path) -> None:
    """The ``orchsim`` console script's path lacks the working folder, which ``python -m`` has."""
    (tmp_path / "cwd_probe_module.py").write_text("X = 1\n")
    code = (
        "import sys; sys.path.remove(''); from orchsim.plugins import load_plugin; "
        "print(load_plugin('cwd_probe_module').X)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "1", done.stderr


def test_a_failed_edit_leaves_none_of_its_new_names_and_the_fix_loads(probe: Path) -> None:
    probe.write_text(PLUGIN.format(sign=1, limit=1))
    load_plugin(str(probe))
    half = (
        PLUGIN.format(sign=1, limit=1)
        + '\n@policy("edit_probe_extra")\ndef extra(nodes, request):\n    return nodes.tasks\n'
    )
    probe.write_text(half + "\nraise RuntimeError('half-written')\n")
    with pytest.raises(PluginError, match="half-written"):
        load_plugin(str(probe))
    assert "edit_probe_extra" not in POLICIES and "edit_probe" in POLICIES
    probe.write_text(half)
    try:
        load_plugin(str(probe))  # the fixed file: no "already registered"
        assert "edit_probe_extra" in POLICIES
    finally:
        POLICIES.unregister("edit_probe_extra")


def test_a_plugin_registering_another_modules_function_reloads(probe: Path) -> None:
    alias = "from orchsim.scheduling import POLICIES, filter, policy\nfrom orchsim.scheduling.policies import spread\n"
    alias += 'POLICIES.register("edit_probe", spread)\n'
    alias += "@filter('edit_probe_filter')\ndef f(nodes, request, task):\n    return nodes.schedulable.copy()\n"
    probe.write_text(alias)
    load_plugin(str(probe))
    probe.write_text(alias + "# edited\n")
    load_plugin(str(probe))  # spread's __module__ is not the plugin's: names, not modules, are withdrawn
    assert "edit_probe" in POLICIES


def test_an_edited_module_plugin_is_imported_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "edit_probe_mod.py"
    module.write_text(PLUGIN.format(sign=1, limit=1))
    monkeypatch.syspath_prepend(str(tmp_path))
    nodes = NodeMatrix.from_capacities({"cpu": [4, 4]})
    nodes.allocate(1, nodes.request_vector({"cpu": 1}))
    try:
        load_plugin("edit_probe_mod")
        assert _scores(nodes) == [0.0, 1.0]
        module.write_text(PLUGIN.format(sign=-1, limit=1) + "\n# longer, so that the file's size and time change\n")
        load_plugin("edit_probe_mod")
        assert _scores(nodes) == [0.0, -1.0]
    finally:
        for registry, name in ((POLICIES, "edit_probe"), (FILTERS, "edit_probe_filter")):
            if name in registry:
                registry.unregister(name)
        sys.modules.pop("edit_probe_mod", None)


def test_a_recording_with_a_linked_file_is_shipped_with_the_files_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A review found an absolute symlink in a recording refused on the worker by tar's data filter."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    recording, elsewhere = tmp_path / "rec", tmp_path / "elsewhere.csv"
    recording.mkdir()
    elsewhere.write_text("a\n1\n")
    (recording / "tasks.csv").symlink_to(elsewhere)
    job = Job({}, "s.yaml", str(tmp_path), ("first_fit",), 1, inputs=(str(recording),))
    data = {"workload": [{"kind": "orchlive", "path": str(recording)}]}
    local = Path(_with_local_inputs(data, read_inputs([job]))["workload"][0]["path"])
    assert (local / "tasks.csv").read_text() == "a\n1\n" and not (local / "tasks.csv").is_symlink()
