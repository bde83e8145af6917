"""The discrete-event simulator: ``Simulation`` runs one policy on one workload and cluster.

Modules, each with one job: ``core`` (the event loop: arrivals, placements through the
shared scheduling pass, completions), ``node_events`` (failures, recovery, scaling, one
handler per event class), ``autoscaler`` (its own process), ``accounting`` (exact time
integrals and live capacity), ``sampling`` (the time series), ``records`` (configuration
in, records out).
"""

from orchsim.engine.core import Simulation
from orchsim.engine.records import EngineConfig, NodeState, RunRecords, Status

__all__ = ["EngineConfig", "NodeState", "RunRecords", "Simulation", "Status"]
