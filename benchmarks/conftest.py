"""Shared setup for the benchmarks (run with ``pytest benchmarks --benchmark-only``).

``benchmarks/`` is a plain directory (no ``__init__.py``), so pytest puts only this
directory on ``sys.path``. ``test_live.py`` imports ``tests.live.harness``; with a bare
``pytest`` (not ``python -m pytest``) the repository root is not importable and some
environments even ship an unrelated top-level ``tests`` package in site-packages, which
then shadows ours and breaks collection of the whole directory. Putting the repository
root first on ``sys.path`` makes both invocations behave the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
