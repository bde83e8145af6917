"""The flags ``master``, ``worker`` and ``dev`` share, and their checks.

Each check runs before anything starts and turns a mistake into a ``UsageError``
naming the flag: an unknown policy, plugin, filter or parameter, a malformed resource.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from orchlive.cli.usage import UsageError
from orchlive.config import Settings, parse_resources
from orchsim.plugins import add_plugin_argument

__all__ = [
    "common_flags",
    "filter_config",
    "parsed_resources",
    "policy_config",
    "policy_flags",
    "resource_flags",
    "resources_of",
]


def common_flags(parser: argparse.ArgumentParser, settings: Settings) -> None:
    """``--etcd`` and ``--prefix``: where the cluster's state is."""
    parser.add_argument(
        "--etcd",
        default=settings.etcd,
        help="etcd endpoints host:port[,host:port...]: the first healthy one is used (ORCH_ETCD)",
    )
    parser.add_argument("--prefix", default=settings.prefix, help="key prefix of the cluster (ORCH_PREFIX)")


def policy_flags(parser: argparse.ArgumentParser, settings: Settings) -> None:
    """How the master places tasks: policy, plugins, parameters, queue discipline, filters, sampling, preemption."""
    parser.add_argument("--policy", default=settings.policy, help="placement policy (ORCH_POLICY)")
    add_plugin_argument(
        parser,
        default=[p.strip() for p in settings.plugins.split(",") if p.strip()],
        where=" (ORCH_PLUGINS, comma-separated)",
    )
    parser.add_argument(
        "--policy-params",
        default=settings.policy_params,
        metavar="JSON|YAML|@FILE",
        help="policy parameters as a mapping (ORCH_POLICY_PARAMS)",
    )
    parser.add_argument(
        "--policy-param",
        action="append",
        default=[],
        dest="policy_param",
        metavar="NAME=VALUE",
        help="one policy parameter, e.g. weights.cpu=0.5 (repeatable; wins over --policy-params)",
    )
    parser.add_argument(
        "--queue",
        default=settings.queue,
        choices=["fifo", "backfill"],
        help="queue discipline, as in scenario files (ORCH_QUEUE; default fifo, the simulator's)",
    )
    parser.add_argument(
        "--backfill-window",
        type=int,
        default=settings.backfill_window,
        metavar="N",
        help="tasks a backfill pass looks at (ORCH_BACKFILL_WINDOW; 100)",
    )
    parser.add_argument(
        "--filters",
        default=settings.filters,
        metavar="JSON|YAML|@FILE",
        help="filters beyond the built-ins, with parameters: '{max_tasks_per_node: {limit: 8}}' (ORCH_FILTERS)",
    )
    _pass_flags(parser, settings)


def _pass_flags(parser: argparse.ArgumentParser, settings: Settings) -> None:
    """``--sample`` and ``--preemption``: which nodes a decision scans, and whether it may evict."""
    parser.add_argument(
        "--sample",
        default=settings.sample,
        metavar="all|log2|YAML",
        help="node sampling, as scheduler.sampling in scenario files: all, log2, '{candidates: 8}', "
        "'{percentage: 10}' (ORCH_SAMPLE; all)",
    )
    parser.add_argument(
        "--preemption",
        action=argparse.BooleanOptionalAction,
        default=settings.preemption,
        help="a task that fits nowhere evicts lower-priority ones, as scheduler.preemption (ORCH_PREEMPTION; off)",
    )


def resource_flags(parser: argparse.ArgumentParser, cpu: str | None, memory: str | None, what: str) -> None:
    """``--cpu``, ``--memory`` and the repeatable ``--resource NAME=AMOUNT`` (read by ``_resources``).

    ``cpu``/``memory`` None: the default is this machine's (a worker's), and the help says so.
    """
    machine = "this machine's, or ORCH_CPU/ORCH_MEMORY"
    parser.add_argument(
        "--cpu", default=cpu, metavar="MILLICORES", help=f"{what} cpu, e.g. 500 or 500m (default: {cpu or machine})"
    )
    parser.add_argument(
        "--memory",
        default=memory,
        metavar="MIB",
        help=f"{what} memory, e.g. 256 or 256Mi, 1Gi (default: {memory or machine})",
    )
    parser.add_argument(
        "--resource",
        action="append",
        default=[],
        dest="resources",
        metavar="NAME=AMOUNT",
        help=f"{what} any resource, e.g. gpu=4000 (milli-GPU) or disk=100000 (repeatable; wins over --cpu/--memory)",
    )


def parsed_resources(flag: str, items: str | Sequence[str]) -> dict[str, int | float]:
    """``NAME=AMOUNT`` items as a mapping; a malformed one is a ``UsageError`` naming ``flag``."""
    try:
        return parse_resources(items)
    except ValueError as err:
        raise UsageError(f"{flag}: {err}") from None


def resources_of(args: argparse.Namespace, base: dict[str, int | float] | None = None) -> dict[str, int | float]:
    """``base``, then ``--cpu``/``--memory``, then every ``--resource``, each winning over the one before.

    Raises:
        UsageError: naming the flag, for a malformed name or amount.
    """
    amounts = dict(base or {})
    for name in ("cpu", "memory"):  # the two shortcuts: --cpu N is --resource cpu=N
        value = getattr(args, name)
        if value is not None:
            amounts |= parsed_resources(f"--{name}", [f"{name}={value}"])
    return amounts | parsed_resources("--resource", args.resources)


def filter_config(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    """The ``--filters`` mapping, checked against the registry (after the plugins loaded).

    Raises:
        UsageError: naming the flag, for malformed text, an unknown filter or parameter.
    """
    from orchsim.policy_params import PolicyParamError, parse_params_text
    from orchsim.scheduling import FILTERS, UnknownFilterError

    if args.backfill_window < 1:
        raise UsageError(f"--backfill-window: must be at least 1, got {args.backfill_window}")
    try:
        chosen = parse_params_text(args.filters, what="--filters")
        filters = {name: dict(params or {}) for name, params in chosen.items()}
        FILTERS.active(filters)
    except PolicyParamError as err:
        raise UsageError(str(err)) from None
    except (UnknownFilterError, TypeError, AttributeError, ValueError) as err:
        raise UsageError(f"--filters: {err}") from None
    return filters


def sample_config(args: argparse.Namespace) -> str | dict[str, object] | None:
    """The ``--sample`` rule, checked (``orchsim.scheduling.sampling``); None: every node.

    Raises:
        UsageError: naming the flag, for text that is not a sampling rule.
    """
    import yaml

    from orchsim.scheduling import parse_sampling
    from orchsim.yaml_text import load_yaml

    text = args.sample.strip()
    try:
        spec = load_yaml(text) if text.startswith("{") else (text or "all")
        parse_sampling(spec)
    except (yaml.YAMLError, ValueError) as err:
        raise UsageError(f"--sample: {str(err).splitlines()[0]}") from None
    return None if spec == "all" else spec


def policy_config(args: argparse.Namespace) -> dict[str, object]:
    """Load the plugins, check the policy and its parameters; the parameters, merged.

    Raises:
        UsageError: naming the flag, for a plugin that cannot load, an unknown policy or
            parameters it does not take.
    """
    from orchsim.plugins import PluginError, load_plugins
    from orchsim.policy_params import (
        PolicyParamError,
        check_policy_params,
        merge_params,
        parse_assignment,
        parse_params_text,
    )
    from orchsim.scheduling import POLICIES, UnknownPolicyError

    try:
        load_plugins(args.plugins)
    except PluginError as err:
        raise UsageError(f"--plugin: {err}") from None
    try:
        POLICIES.spec(args.policy)
    except UnknownPolicyError as err:
        raise UsageError(f"--policy: {err}") from None
    try:
        layers = [parse_params_text(args.policy_params)] + [parse_assignment(a) for a in args.policy_param]
        params = merge_params(*layers)
        check_policy_params(args.policy, params)
    except PolicyParamError as err:
        raise UsageError(str(err)) from None
    return params
