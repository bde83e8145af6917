"""orchsim: write a placement policy once, measure it in simulation, deploy it live.

Kept light on purpose: ``import orchsim.scheduling`` (which the live master imports)
must not pull in simpy, pandas or yaml. ``orchsim.run`` is imported here, not lazily,
because it is also the name of its module: once ``orchsim.run`` the module is loaded the
import system never rebinds the package attribute, so it stays the function; the module
itself imports the simulator only when a run starts.
"""

from __future__ import annotations

from typing import Any

from orchsim.run import run

__version__ = "0.1.0"
__all__ = ["__version__", "load_scenario", "run"]


def __getattr__(name: str) -> Any:
    # Lazy entry point for notebooks: orchsim.load_scenario(...) needs pydantic and yaml.
    if name == "load_scenario":
        from orchsim.scenario import load_scenario

        return load_scenario
    raise AttributeError(f"module 'orchsim' has no attribute {name!r}")
