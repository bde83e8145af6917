"""orchlive stays readable: no module over 400 lines, no function over 50 (docstrings excluded).

The limits are the project's style (``/work/shared/STYLE.md``: small modules with one
concern); the test lists every offender with its size, so a failure says where to cut.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "orchlive"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50


def _docstring_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines taken by the docstring of a function (0 without one)."""
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first.end_lineno - first.lineno + 1  # type: ignore[operator]
    return 0


def function_sizes(path: Path) -> list[tuple[str, int]]:
    """``(qualified name, lines without the docstring)`` of every function in the file, nested ones too."""
    sizes: list[tuple[str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                sizes.append((name, child.end_lineno - start + 1 - _docstring_lines(child)))  # type: ignore[operator]
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text(), filename=str(path)), "")
    return sizes


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_package_is_found() -> None:
    assert len(_modules()) > 10


def test_no_module_over_400_lines() -> None:
    too_long = [
        f"{path.relative_to(PACKAGE.parent)}: {n} lines"
        for path in _modules()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(too_long)


def test_no_function_over_50_lines() -> None:
    too_long = [
        f"{path.relative_to(PACKAGE.parent)}: {name} has {n} lines"
        for path in _modules()
        for name, n in function_sizes(path)
        if n > MAX_FUNCTION_LINES
    ]
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines (docstrings excluded):\n" + "\n".join(too_long)


def test_the_size_count_excludes_docstrings(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        'def f():\n    """One\n    two."""\n    return 1\n\n\nclass C:\n    async def g(self):\n        pass\n'
    )
    assert function_sizes(source) == [("f", 2), ("C.g", 2)]
