"""orchsim: write a placement policy once, measure it in simulation, deploy it live.

Kept light on purpose: ``import orchsim.scheduling`` (which the live master imports)
must not pull in simpy, pandas or yaml. The simulator's API is loaded on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__"]


def __getattr__(name: str) -> Any:
    # Lazy entry points for notebooks: orchsim.run(...), orchsim.load_scenario(...).
    if name in ("run", "load_scenario"):
        from orchsim import api

        return getattr(api, name)
    raise AttributeError(f"module 'orchsim' has no attribute {name!r}")
