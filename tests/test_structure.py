"""Sizes a newcomer can read: no module over 400 lines, no function over 50 (docstrings excluded).

A module or function that outgrows these does more than one job; split it. The test
lists every offender, so the whole debt is visible at once.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module


def docstring_lines(node: Definition) -> int:
    """Lines taken by the docstring of ``node`` (0 if it has none)."""
    first = node.body[0] if node.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return (first.end_lineno or first.lineno) - first.lineno + 1
    return 0


def offenders(path: pathlib.Path) -> list[str]:
    text = path.read_text()
    tree = ast.parse(text)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    found = []
    definitions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    module_lines = len(text.splitlines()) - docstring_lines(tree) - sum(docstring_lines(n) for n in definitions)
    if module_lines > MAX_MODULE_LINES:
        found.append(f"{shown}: {module_lines} lines (max {MAX_MODULE_LINES})")
    for node in definitions:
        if isinstance(node, ast.ClassDef):
            continue
        lines = (node.end_lineno or node.lineno) - node.lineno + 1 - docstring_lines(node)
        if lines > MAX_FUNCTION_LINES:
            where = f"{shown}:{node.lineno}"
            found.append(f"{where} {node.name}(): {lines} lines (max {MAX_FUNCTION_LINES})")
    return found


@pytest.mark.parametrize("package", ["orchsim", "orchlive"])
def test_modules_and_functions_stay_small(package: str) -> None:
    problems = [line for path in sorted((ROOT / package).rglob("*.py")) for line in offenders(path)]
    assert not problems, "too long:\n" + "\n".join(problems)


def test_the_check_counts_code_not_docstrings(tmp_path: pathlib.Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    long = tmp_path / "long.py"
    long.write_text(f'def f():\n    """Doc\n\n    more doc.\n    """\n{body}\n')
    assert any("f(): 51 lines" in line for line in offenders(long))
    short = tmp_path / "short.py"
    short.write_text(f'def f():\n    """Doc\n\n    more doc.\n    """\n{body[: body.rindex(chr(10))]}\n')
    assert offenders(short) == []
