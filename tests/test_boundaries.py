"""The shared core stays pure: importing it must not drag in I/O or service libraries."""

import subprocess
import sys

FORBIDDEN = ["simpy", "yaml", "pandas", "fastapi", "aetcd", "docker", "matplotlib", "pydantic", "orchlive", "etcd3"]


def test_scheduling_core_imports_only_numpy_and_stdlib() -> None:
    code = (
        "import sys; import orchsim.scheduling; "
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"orchsim.scheduling imported: {out.stdout.strip()}"


def test_scheduling_sources_import_nothing_outside_numpy_and_stdlib() -> None:
    import ast
    import pathlib

    import orchsim.scheduling as core

    allowed_third_party = {"numpy"}
    root = pathlib.Path(core.__file__).parent
    stdlib = sys.stdlib_module_names
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top in stdlib or top in allowed_third_party or name.startswith("orchsim.scheduling"), (
                    f"{path.name} imports {name}"
                )
