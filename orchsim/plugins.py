"""Load a user's policies from a file, a module or an installed package.

A policy written once must reach every place a policy name is accepted: the simulator's
command lines, scenario files, sweeps in worker processes, and the live master. Policies
register themselves when their module is imported (``@policy("name")``), so loading a
plugin means importing it, once per process:

* ``path/to/mypolicies.py`` (a path: it ends in ``.py`` or contains a slash), relative
  to the scenario file for a scenario's ``plugins:`` field, else to the working folder;
* ``package.module``, imported by name, as ``python -m`` would;
* every entry point of the ``orchsim.policies`` group of the installed distributions, so
  ``pip install my-policies`` makes its policies known by name with no flag at all.

A plugin that cannot be loaded (file missing, an exception while importing, a policy
name that is already taken) raises ``PluginError`` with one line naming the plugin; the
command lines print it and exit 2.

This module imports plugins; the scheduling core (``orchsim.scheduling``) never does: it
stays free of I/O, and only holds the registry the plugins write into.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from orchsim.scheduling import FILTERS, POLICIES

__all__ = [
    "ENTRY_POINT_GROUP",
    "add_plugin_argument",
    "PluginError",
    "absolute_specs",
    "is_path",
    "load_entry_points",
    "load_plugin",
    "load_plugins",
    "raised_in_plugin",
]

ENTRY_POINT_GROUP = "orchsim.policies"

# Loaded plugins by resolved key (absolute file path or module name): loading twice is a no-op,
# so a scenario that names the plugin already given with --plugin does not register twice.
_loaded: dict[str, ModuleType] = {}
# The sha256 of each loaded plugin file's bytes, by path: a long-lived process (a Dask worker)
# asked for a file that has changed since imports it again instead of running the old code.
_digests: dict[str, str] = {}
# The policy and filter names each plugin's current version registered, by key: withdrawn before
# an edited version is imported (its names may stay the same; a function it registers may come from elsewhere).
_registered: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
_entry_points_loaded = False


class PluginError(ValueError):
    """A plugin that cannot be loaded; the message names it and says why, on one line."""


def add_plugin_argument(parser: Any, *, default: list[str] | None = None, where: str = "") -> None:
    """The repeatable ``--plugin MODULE_OR_FILE`` flag, worded alike on every command line.

    Args:
        parser: An ``argparse.ArgumentParser``; the values land in ``args.plugins``.
        default: Plugins given before the flags (an environment variable's).
        where: Added to the help text, e.g. ", here and in every worker".
    """
    parser.add_argument(
        "--plugin",
        action="append",
        dest="plugins",
        default=list(default or []),
        metavar="MODULE_OR_FILE",
        help=f"import policies and filters from a module or a .py file{where} (repeatable)",
    )


def is_path(spec: str) -> bool:
    """A file path rather than a module name: ends in ``.py`` or contains a path separator."""
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def absolute_specs(specs: Iterable[str], *, base_dir: Path | None = None) -> list[str]:
    """The same plugins, with file paths made absolute: for another process or folder.

    A sweep's worker processes re-read the scenario and load its plugins themselves; a
    relative path given on the command line would resolve against the wrong folder there.
    """
    base = base_dir or Path.cwd()
    return [str((base / Path(s).expanduser()).resolve()) if is_path(s) else s for s in specs]


def _module_name_for(path: Path, content: str) -> str:
    # A stable, unique, importable name: pickling a function by reference (process pools)
    # then finds the module in sys.modules of any process that loaded the same file, with
    # the same bytes (an edited file is another module, imported again: ``_load_file``).
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"orchsim_plugin_{stem}_{digest}_{content[:8]}"


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _load_file(spec: str, base_dir: Path | None) -> ModuleType:
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    path = path.resolve()
    key = str(path)
    if not path.is_file():
        if key in _loaded:  # deleted since: what was loaded stays
            return _loaded[key]
        raise PluginError(f"plugin {spec}: file not found: {path}")
    content = hashlib.sha256(path.read_bytes()).hexdigest()
    if key in _loaded and _digests.get(key) == content:
        return _loaded[key]
    if key not in _loaded and (same := _loaded_from(path)) is not None:  # imported by its module name
        return same
    name = _module_name_for(path, content)
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:  # pragma: no cover - only for odd suffixes
        raise PluginError(f"plugin {spec}: cannot be imported as a Python file: {path}")
    module = importlib.util.module_from_spec(module_spec)

    def execute() -> ModuleType:
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)  # type: ignore[union-attr]
        except BaseException:
            del sys.modules[name]
            raise
        return module

    try:
        _loaded[key] = _registering(key, execute)
    except Exception as err:
        raise PluginError(f"plugin {spec}: {_where(err, path)}{_one_line(err)}") from None
    _digests[key] = content
    return _loaded[key]


def _registering(key: str, run: Callable[[], ModuleType]) -> ModuleType:
    """``run()`` (import a plugin, or its edited version), keeping what each version registered.

    The names an earlier version registered are withdrawn first, so that the new one may
    register them again; if ``run`` raises, what it registered before raising is withdrawn
    and the earlier version's names are put back (the last good version stays).
    """
    policies, filters = _registered.get(key, ((), ()))
    withdrawn = [(POLICIES, POLICIES.withdraw(policies)), (FILTERS, FILTERS.withdraw(filters))]
    before = (set(POLICIES), set(FILTERS))
    try:
        module = run()
    except BaseException:
        POLICIES.withdraw(set(POLICIES) - before[0])
        FILTERS.withdraw(set(FILTERS) - before[1])
        for registry, specs in withdrawn:
            registry.reinstate(specs)
        raise
    _registered[key] = (tuple(set(POLICIES) - before[0]), tuple(set(FILTERS) - before[1]))
    return module


def _where(err: BaseException, path: Path) -> str:
    """``line N: `` of the plugin file where the error was raised, if it was raised there."""
    if isinstance(err, SyntaxError) and err.lineno:
        return f"line {err.lineno}: "
    tb = err.__traceback__
    line = None
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename) == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"line {line}: " if line else ""


def _loaded_from(path: Path) -> ModuleType | None:
    """The plugin already loaded from the file ``path``, by its path or by a module name."""
    return next(
        (m for m in _loaded.values() if getattr(m, "__file__", None) and Path(m.__file__).resolve() == path), None
    )


def _source_digest(module: ModuleType | None, origin: str | None = None) -> str | None:
    """The sha256 of a module's source file (None without one: a namespace or an extension)."""
    where = origin or getattr(module, "__file__", None)
    if not where or not where.endswith(".py") or not Path(where).is_file():
        return None
    return hashlib.sha256(Path(where).read_bytes()).hexdigest()


def _load_module(spec: str) -> ModuleType:
    if spec in _loaded:
        module = _loaded[spec]
        if _digests.get(spec) is None or _source_digest(module) == _digests[spec]:
            return module
        try:  # its source was edited since (a long-lived Dask worker): import it again
            _loaded[spec] = _registering(spec, lambda: importlib.reload(module))
        except Exception as err:
            raise PluginError(f"plugin {spec}: {_one_line(err)}") from None
        _digests[spec] = _source_digest(_loaded[spec])  # type: ignore[assignment]
        return _loaded[spec]
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        # As ``python -m`` finds modules in the working folder; the ``orchsim`` console script did not.
        sys.path.append(str(Path.cwd()))
    try:
        found = importlib.util.find_spec(spec)
    except (ImportError, ValueError):
        found = None
    if found is not None and found.origin and (same := _loaded_from(Path(found.origin).resolve())) is not None:
        _loaded[spec] = same  # the file given as a path too (--plugin mymod and plugins: [mymod.py])
        return same
    try:
        module = _registering(spec, lambda: importlib.import_module(spec))
    except ModuleNotFoundError as err:
        if err.name and spec.startswith(err.name):
            raise PluginError(
                f"plugin {spec}: no module named {err.name!r} (a file needs a path ending in .py)"
            ) from None
        raise PluginError(f"plugin {spec}: {_one_line(err)}") from None
    except Exception as err:
        raise PluginError(f"plugin {spec}: {_one_line(err)}") from None
    _loaded[spec] = module
    if (digest := _source_digest(module)) is not None:
        _digests[spec] = digest
    return module


def load_plugin(spec: str, *, base_dir: Path | None = None) -> ModuleType:
    """Import one plugin (a ``.py`` path or a module name), once per process.

    Args:
        spec: ``path/to/file.py`` or ``package.module``.
        base_dir: Folder a relative path is resolved against (the scenario file's);
            default the working folder.

    Returns:
        The imported module.

    Raises:
        PluginError: the file is missing, the module is not found, importing it raised,
            or it registered a policy name that was already taken.
    """
    spec = spec.strip()
    if not spec:
        raise PluginError("plugin: an empty name")
    return _load_file(spec, base_dir) if is_path(spec) else _load_module(spec)


def load_plugins(specs: Iterable[str], *, base_dir: Path | None = None) -> list[ModuleType]:
    """Import each plugin in order (see ``load_plugin``), after the installed entry points."""
    load_entry_points()
    return [load_plugin(spec, base_dir=base_dir) for spec in specs]


def load_entry_points() -> None:
    """Import every installed ``orchsim.policies`` entry point, once per process.

    An entry point names a module (``my_policies = "my_package.policies"``) or an
    object in one; loading it imports the module, which registers its policies.
    """
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.value in _loaded:
            continue
        try:
            _loaded[point.value] = point.load()
        except Exception as err:
            raise PluginError(
                f"plugin {point.name} (entry point {point.value} of {ENTRY_POINT_GROUP}): {_one_line(err)}"
            ) from None
    _entry_points_loaded = True


def raised_in_plugin(err: BaseException) -> str | None:
    """One line for an exception a loaded plugin's code raised (the user's bug, not ours), else None.

    ``plugin mypolicies.py, line 7 (in buggy): IndexError: index 5 is out of bounds ...``: the
    innermost frame of the traceback that lies in a plugin's file, shown relative to the
    working folder. Forty lines of SimPy and engine frames above it only hide that line.
    """
    files = {Path(f).resolve() for f in (getattr(m, "__file__", None) for m in _loaded.values()) if f}
    tb, where = err.__traceback__, None
    while tb is not None:
        if (path := Path(tb.tb_frame.f_code.co_filename).resolve()) in files:
            where = (path, tb.tb_lineno, tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    remote = getattr(err.__cause__, "tb", None)  # raised in a sweep's worker process: its traceback as text
    if where is None and isinstance(remote, str):
        for name, line, function in re.findall(r'File "([^"]+)", line (\d+), in (\S+)', remote):
            if Path(name).resolve() in files:
                where = (Path(name).resolve(), int(line), function)
    if where is None:
        return None
    path, line, function = where
    shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    return f"plugin {shown}, line {line} (in {function}): {_one_line(err)}"
