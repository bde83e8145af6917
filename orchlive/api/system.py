"""``/health`` and ``/metrics`` (Prometheus text format)."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, HTTPException
from fastapi.responses import PlainTextResponse

from orchlive.api.deps import MasterDep
from orchlive.master import LATENCY_BUCKETS, Master
from orchlive.metrics_text import CONTENT_TYPE, Sample, family, sample
from orchlive.models import NodePublic, NodeState, TaskState

router = APIRouter(tags=["system"])


@router.get("/health")
async def health(master: MasterDep) -> dict[str, object]:
    """200 once the master mirrors etcd; says whether this master leads the scheduling, and how it schedules.

    ``scheduler`` is what a recording needs to replay the master's decisions
    (``orchlive record``): the policy's parameters, the seed of its random stream, the
    queue discipline, whether it preempts, the grace it gives a node past its lease, its
    filters, node sampling and plugins (absolute paths or module names).
    """
    if not master.ready.is_set():
        raise HTTPException(status_code=503, detail="not ready: cannot read etcd yet")
    scheduler = {
        "params": master.params,
        "seed": master.seed,
        "queue": master.queue,
        "backfill_window": master.backfill_window,
        "preemption": master.preemption,
        "lost_grace": master.lost_grace,
        "filters": master.filter_config,
        "sampling": master.sample,
        "plugins": master.plugins,
    }
    return {"status": "ok", "leader": master.is_leader.is_set(), "policy": master.policy, "scheduler": scheduler}


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(master: MasterDep) -> PlainTextResponse:
    """Tasks by state, nodes by state, every node's resources and devices, and the scheduling-latency histogram."""
    cache = master.cache
    tasks = Counter(t.state for t, _ in cache.tasks.values())
    views = [cache.node_view(n) for n in sorted(cache.nodes)]
    nodes = Counter(view.state for view in views)
    lines = family("orch_tasks", "gauge", "Tasks by state.", [({"state": t.value}, tasks[t]) for t in TaskState])
    lines += family("orch_nodes", "gauge", "Nodes by state.", [({"state": n.value}, nodes[n]) for n in NodeState])
    lines += _node_resources(views)
    lines += family(
        "orch_node_device_used_ratio",
        "gauge",
        "Share of one device (0 to 1) its node's ledger gives to tasks.",
        [
            ({"node": node.id, "kind": kind, "device": str(d.index)}, d.used / d.capacity if d.capacity else 0.0)
            for node in views
            for kind, rows in sorted(node.device_use.items())
            for d in rows
        ],
    )
    lines += _latency(master)
    return PlainTextResponse("\n".join(lines) + "\n", media_type=CONTENT_TYPE)


def _latency(master: Master) -> list[str]:
    """``orch_scheduling_seconds``: the histogram of decide-and-commit times; its count is the placements made."""
    name = "orch_scheduling_seconds"
    lines = family(name, "histogram", "Time to decide and commit one placement.", [])
    cumulative = 0
    for bound, count in zip(LATENCY_BUCKETS, master.latency_counts, strict=False):
        cumulative += count
        lines.append(sample(f"{name}_bucket", {"le": str(bound)}, cumulative))
    lines.append(sample(f"{name}_bucket", {"le": "+Inf"}, master.decisions))
    lines += [sample(f"{name}_sum", {}, master.latency_sum), sample(f"{name}_count", {}, master.decisions)]
    return lines


def _node_resources(views: list[NodePublic]) -> list[str]:
    """``orch_node_{capacity,allocated,free}{node, resource}``: every resource of every node."""
    lines: list[str] = []
    units = "cpu in millicores, memory in MiB, gpu in milli-GPU"
    for metric, what in (("capacity", "offers"), ("allocated", "has allocated"), ("free", "has free")):
        samples: list[Sample] = [
            ({"node": node.id, "resource": name}, amount)
            for node in views
            for name, amount in getattr(node, metric).items()
        ]
        lines += family(f"orch_node_{metric}", "gauge", f"Amount of a resource the node {what} ({units}).", samples)
    return lines
