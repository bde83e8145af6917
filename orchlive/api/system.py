"""``/health`` and ``/metrics`` (Prometheus text format)."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, HTTPException
from fastapi.responses import PlainTextResponse

from orchlive.api.deps import MasterDep
from orchlive.master import LATENCY_BUCKETS, Master
from orchlive.models import NodeState, Resources, TaskState

router = APIRouter(tags=["system"])


@router.get("/health")
async def health(master: MasterDep) -> dict[str, object]:
    """200 once the master mirrors etcd; says whether this master leads the scheduling."""
    if not master.ready.is_set():
        raise HTTPException(status_code=503, detail="not ready: cannot read etcd yet")
    return {"status": "ok", "leader": master.is_leader.is_set(), "policy": master.policy}


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(master: MasterDep) -> str:
    """Tasks by state, nodes by state, every node's resources, and the scheduling-latency histogram."""
    cache = master.cache
    tasks = Counter(t.state for t, _ in cache.tasks.values())
    nodes = Counter(cache.node_view(n).state for n in cache.nodes)
    lines = ["# HELP orch_tasks Tasks by state.", "# TYPE orch_tasks gauge"]
    lines += [f'orch_tasks{{state="{s.value}"}} {tasks.get(s, 0)}' for s in TaskState]
    lines += ["# HELP orch_nodes Nodes by state.", "# TYPE orch_nodes gauge"]
    lines += [f'orch_nodes{{state="{s.value}"}} {nodes.get(s, 0)}' for s in NodeState]
    lines += _node_resources(master)
    lines += [
        "# HELP orch_scheduling_seconds Time to decide and commit one placement.",
        "# TYPE orch_scheduling_seconds histogram",
    ]
    cumulative = 0
    for bound, count in zip(LATENCY_BUCKETS, master.latency_counts, strict=False):
        cumulative += count
        lines.append(f'orch_scheduling_seconds_bucket{{le="{bound}"}} {cumulative}')
    lines.append(f'orch_scheduling_seconds_bucket{{le="+Inf"}} {master.decisions}')
    lines.append(f"orch_scheduling_seconds_sum {master.latency_sum}")
    lines.append(f"orch_scheduling_seconds_count {master.decisions}")
    return "\n".join(lines) + "\n"


def _node_resources(master: Master) -> list[str]:
    """``orch_node_{capacity,allocated,free}{node, resource}``: every resource of every node."""
    views = [master.cache.node_view(n) for n in sorted(master.cache.nodes)]
    lines: list[str] = []
    units = "cpu in millicores, memory in MiB, gpu in milli-GPU"
    for metric, what in (("capacity", "offers"), ("allocated", "has allocated"), ("free", "has free")):
        lines += [
            f"# HELP orch_node_{metric} Amount of a resource the node {what} ({units}).",
            f"# TYPE orch_node_{metric} gauge",
        ]
        for node in views:
            amounts: Resources = getattr(node, metric)
            for name, amount in amounts.items():
                lines.append(f'orch_node_{metric}{{node="{_label(node.id)}",resource="{name}"}} {amount}')
    return lines


def _label(value: str) -> str:
    """A Prometheus label value, escaped (a node id is whatever its worker was named)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
