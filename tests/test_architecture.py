"""The layers of ARCHITECTURE.md, enforced: which module may import which.

From the bottom up: the scheduling core; the inputs (scenario schema, plugins, traces,
workload and cluster builders); the engine; the results and tools (run, metrics,
reports, sweeps, command lines); and, beside the simulator, the live cluster, which may
use the core and the plugin loaders but nothing of the simulator. Every import counts,
including those inside functions.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CORE = ("orchsim.scheduling",)
INPUTS = (
    "orchsim.units",
    "orchsim.schema_base",
    "orchsim.scenario",
    "orchsim.scenario_events",
    "orchsim.scenario_workload",
    "orchsim.plugins",
    "orchsim.policy_params",
    "orchsim.traces",
    "orchsim.workload",
    "orchsim.cluster",
    "orchsim.resize",
    "orchsim.recording_format",
    "orchsim.yaml_text",
)
ENGINE = ("orchsim.engine",)

# Layer -> the prefixes its modules may import (besides their own layer's).
ALLOWED: dict[str, tuple[str, ...]] = {
    "core": CORE,
    "inputs": CORE + INPUTS,
    "engine": CORE + INPUTS + ENGINE,
    "tools": ("orchsim",),
    "live": (
        *CORE,
        "orchsim.plugins",
        "orchsim.policy_params",
        "orchsim.recording_format",
        "orchsim.units",
        "orchsim.yaml_text",
        "orchlive",
    ),
}


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def layer_of(module: str) -> str:
    if module.startswith("orchlive"):
        return "live"
    for layer, prefixes in (("core", CORE), ("inputs", INPUTS), ("engine", ENGINE)):
        if within(module, prefixes):
            return layer
    return "tools"


def modules() -> list[tuple[str, pathlib.Path]]:
    found = []
    for package in ("orchsim", "orchlive"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found.append((".".join(parts), path))
    return found


def imports_of(path: pathlib.Path, module: str) -> set[str]:
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if base in ("orchsim", "orchlive"))
    return {n for n in names if n.split(".")[0] in ("orchsim", "orchlive")}


def test_the_layer_table_covers_the_modules_it_names() -> None:
    known = {name for name, _ in modules()}
    for prefix in CORE + INPUTS + ENGINE:
        assert any(within(name, (prefix,)) for name in known), f"{prefix} names no module"


@pytest.mark.parametrize(("module", "path"), modules(), ids=[name for name, _ in modules()])
def test_imports_follow_the_layers(module: str, path: pathlib.Path) -> None:
    layer = layer_of(module)
    wrong = sorted(name for name in imports_of(path, module) if name != "orchsim" and not within(name, ALLOWED[layer]))
    assert not wrong, f"{module} ({layer} layer) imports {', '.join(wrong)}; see ARCHITECTURE.md"


def test_a_forbidden_import_is_caught(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "worker.py"
    bad.write_text("def f():\n    from orchsim.engine import Simulation\n    from orchsim import run\n")
    found = imports_of(bad, "orchlive.worker")
    assert {"orchsim.engine", "orchsim.run"} <= found
    assert not within("orchsim.engine", ALLOWED["live"]) and not within("orchsim.run", ALLOWED["live"])
