"""The shared scheduling core: numpy and the standard library only.

A cluster is a ``NodeMatrix`` (one float64 row per resource, one column per node); a
policy is a pure scorer ``(nodes, request) -> scores (N,)``; ``select`` is the single
pipeline filter -> score -> argmax that the simulator and the live master both call.

    >>> from orchsim.scheduling import NodeMatrix, select
    >>> nodes = NodeMatrix.from_capacities({"cpu": [4000, 8000], "memory": [8192, 16384]})
    >>> select(nodes, {"cpu": 500, "memory": 256}, "bin_packing").node
    0
"""

from orchsim.scheduling import policies as _builtin_policies  # noqa: F401  (registers the built-ins)
from orchsim.scheduling.errors import FilterError
from orchsim.scheduling.filters import (
    FILTERS,
    FilterRegistry,
    FilterSpec,
    TaskInfo,
    UnknownFilterError,
    could_ever_fit,
    explain_never,
    feasible,
    filter,
    fits_node,
    fits_resources,
    rejections,
)
from orchsim.scheduling.matrix import CapacityError, NodeMatrix, UnknownResourceError
from orchsim.scheduling.policies import utilisation_after
from orchsim.scheduling.queueing import DEFAULTS, QUEUE_DISCIPLINES, PassResult, SchedulingPass, schedule_pass
from orchsim.scheduling.registry import POLICIES, PolicyRegistry, PolicySpec, Scorer, UnknownPolicyError, policy
from orchsim.scheduling.sampling import Sampling, parse_sampling
from orchsim.scheduling.select import Decision, PolicyError, PreparedPolicy, decide, select

__all__ = [
    "DEFAULTS",
    "FILTERS",
    "POLICIES",
    "QUEUE_DISCIPLINES",
    "CapacityError",
    "FilterError",
    "Decision",
    "FilterRegistry",
    "FilterSpec",
    "NodeMatrix",
    "PassResult",
    "PolicyError",
    "PolicyRegistry",
    "PolicySpec",
    "PreparedPolicy",
    "Sampling",
    "SchedulingPass",
    "Scorer",
    "TaskInfo",
    "UnknownFilterError",
    "UnknownPolicyError",
    "UnknownResourceError",
    "could_ever_fit",
    "decide",
    "explain_never",
    "feasible",
    "filter",
    "fits_node",
    "fits_resources",
    "parse_sampling",
    "policy",
    "rejections",
    "schedule_pass",
    "select",
    "utilisation_after",
]
