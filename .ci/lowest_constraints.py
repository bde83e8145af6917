"""Print a pip constraints file pinning every declared dependency to its lower bound.

Why: ``pyproject.toml`` promises that orchsim works with any version its specifiers allow,
but a normal install only ever tests the newest ones. CI therefore also runs the tests in a
second venv installed with ``pip install -c <this output> -e '.[dev]'``: every runtime
dependency and every ``dev`` extra is pinned to the release its lower bound names
(``numpy>=1.26`` -> ``numpy==1.26.0``), so a bound that is declared is a bound that is tested.
When an old release lacks something the code needs, raise the bound, do not work around it.

The bound is pinned as written (zero-padded to three components for the log; PEP 440
equality pads anyway), so a bound naming a release that does not exist on PyPI (``>=2.3``
when only 2.3.1 was published) or a yanked one makes the install fail: declare the first
real release instead. A dependency without an exact lower bound (no specifier, only ``<``
or ``>``) is an error, and so is a bound that the same specifier excludes with ``!=``.

Usage: ``python .ci/lowest_constraints.py [pyproject.toml] > lowest.txt``
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

EXTRAS = ("dev",)  # the optional-dependency groups that CI installs next to the runtime ones
LOWER = {">=", "~=", "==", "==="}  # operators whose version is the lowest release allowed


def lower_bound(req: Requirement) -> Version:
    """The lowest version ``req`` allows, as written in its specifier; ``SystemExit`` if there is none."""
    bounds = [Version(s.version) for s in req.specifier if s.operator in LOWER and not s.version.endswith(".*")]
    if not bounds:
        raise SystemExit(f"lowest_constraints: {req} declares no lower bound (use >=X.Y with a tested X.Y)")
    bound = max(bounds)
    if not req.specifier.contains(bound, prereleases=True):
        raise SystemExit(f"lowest_constraints: {req}: its own specifier excludes its lower bound {bound}")
    return bound


def pin(version: Version) -> str:
    """``1.26`` -> ``1.26.0``; pre, post, dev and local versions stay as written."""
    if str(version) != version.base_version or version.epoch:
        return str(version)
    return ".".join(str(part) for part in (*version.release, 0, 0)[: max(3, len(version.release))])


def constraints(pyproject: Path) -> list[str]:
    """One ``name==version`` line per dependency (runtime and ``EXTRAS``), sorted by name."""
    project = tomllib.loads(pyproject.read_text())["project"]
    own = canonicalize_name(project["name"])
    declared = list(project.get("dependencies", []))
    for extra in EXTRAS:
        if extra not in project.get("optional-dependencies", {}):
            raise SystemExit(f"lowest_constraints: {pyproject} has no optional-dependencies group {extra!r}")
        declared += project["optional-dependencies"][extra]
    pins: dict[str, tuple[Version, str]] = {}
    for text in declared:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if name == own:  # a self-reference such as "orchsim[live]": its dependencies are listed anyway
            continue
        bound = lower_bound(req)
        marker = f" ; {req.marker}" if req.marker else ""
        if name not in pins or bound > pins[name][0]:  # listed twice: the higher bound holds for both
            pins[name] = (bound, marker)
    return [f"{name}=={pin(bound)}{marker}" for name, (bound, marker) in sorted(pins.items())]


def main(argv: list[str]) -> None:
    """Print the constraints for ``argv[1]`` (default: the repository's ``pyproject.toml``)."""
    pyproject = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "pyproject.toml"
    print(f"# lowest declared versions, generated from {pyproject.name} by .ci/lowest_constraints.py")
    print("\n".join(constraints(pyproject)))


if __name__ == "__main__":
    main(sys.argv)
