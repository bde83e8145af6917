"""The policy registry: names to scorers, for the simulator, the live master and users alike.

A scorer is a pure function ``scorer(nodes, request, **params) -> float64 (N,)``,
higher is better, computed as if the task were placed on each node. ``select`` masks
infeasible nodes, so a scorer never needs to check fit. Scorers that draw random
numbers declare a keyword parameter ``rng`` and receive a ``numpy.random.Generator``;
scorers that rank among feasible nodes declare ``feasible`` and receive the mask.

Register a policy of your own with the decorator and it works everywhere a name is
accepted (scenario files, ``--policy``, the live master)::

    @policy("least_tasks_then_cpu")
    def least_tasks_then_cpu(nodes, request):
        return -nodes.tasks - nodes.allocated[nodes.row("cpu")] * nodes.inv_capacity[nodes.row("cpu")]
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from orchsim.scheduling.matrix import NodeMatrix

__all__ = ["POLICIES", "PolicyRegistry", "PolicySpec", "Scorer", "UnknownPolicyError", "policy"]


class Scorer(Protocol):
    """``(nodes, request (R,), **params) -> scores (N,)``; must not mutate ``nodes``."""

    def __call__(self, nodes: NodeMatrix, request: np.ndarray, /, **params: Any) -> np.ndarray: ...


class UnknownPolicyError(KeyError):
    """A policy name that is not registered; the message lists the registered ones."""

    def __str__(self) -> str:
        return str(self.args[0])


# Keywords select fills in itself: never a user's parameter.
_INJECTED = ("rng", "feasible", "last")


@dataclass(frozen=True)
class PolicySpec:
    """What the registry knows about a scorer.

    Attributes:
        name: Registered name.
        scorer: The function.
        uses_rng: The scorer takes an ``rng`` keyword (a ``numpy.random.Generator``).
        uses_feasible: The scorer takes a ``feasible`` keyword: the bool ``(N,)`` mask
            ``select`` computed, for policies that rank among feasible nodes only.
        uses_last: The scorer takes a ``last`` keyword: the index of the node this policy
            placed on last (-1: none, or it left), remembered by the ``PreparedPolicy``
            that owns the policy's decisions (round robin's cursor).
        order_dependent: Scores depend on node order (round robin, first fit), so
            permuting nodes does not simply permute scores.
        params: Names of the tunable keyword parameters (besides ``rng``, ``feasible``, ``last``).
        summary: First line of its docstring.
        vetoes: The scorer may score a node ``-inf`` to refuse it. The default for a
            user's policy; a policy registered with ``vetoes=False`` promises finite
            scores, and ``select`` may then skip it when only one node fits.
        choose_devices: The policy's own rule for which GPUs a task takes on the chosen
            node, ``(nodes, request, node, **params) -> device indices`` (FGD, random);
            None: the tightest fitting device (best fit).
        pure: Its scores are a function of the matrix's numbers (capacity, allocation,
            free capacity, task counts, schedulability) and the request only: no random
            draw, no cursor, no labels, nothing outside. Declared, not inferred (the
            default for a user's policy is False); a pure policy's decisions may be
            looked up instead of recomputed when the state repeats (``memo.py``).
        per_node: Each node's score is a function of that node's own numbers (its column
            of capacity, allocation, free capacity, task count, schedulability), the
            request and cluster-wide constants (``resource_scale``) only, computed by
            correctly rounded elementwise arithmetic: a node scores the same bits in any
            ``NodeSubset`` that holds it. Nodes in the same state then score alike, and a
            decision may score one node per state (``state_classes.py``). Declared;
            implies ``pure``; False for a user's policy unless it says so.
    """

    name: str
    scorer: Scorer
    uses_rng: bool
    uses_feasible: bool
    order_dependent: bool
    params: tuple[str, ...]
    summary: str
    vetoes: bool = True
    choose_devices: Callable[..., tuple[int, ...]] | None = None
    uses_last: bool = False
    pure: bool = False
    per_node: bool = False

    @property
    def skippable(self) -> bool:
        """Its scores cannot change a decision among one node: no veto, no random draw."""
        return not self.vetoes and not self.uses_rng

    def unknown_params(self, names: Iterable[str]) -> str | None:
        """None if the policy takes every one of ``names``; else what is wrong, for a message.

        One wording for every caller that checks parameters (``select``, the scenario
        schema, ``orchsim.compare``): ``"no parameter x, y; it takes: a, b"``.
        """
        unknown = sorted(set(names) - set(self.params))
        if not unknown:
            return None
        return f"no parameter {', '.join(unknown)}; it takes: {', '.join(self.params) or 'none'}"


class PolicyRegistry(Mapping[str, Scorer]):
    """A read-mostly mapping of policy names to scorers with helpful lookup errors."""

    def __init__(self) -> None:
        self._specs: dict[str, PolicySpec] = {}
        self._unregistered: dict[Callable[..., np.ndarray], PolicySpec] = {}  # scorers passed as such

    def __getitem__(self, name: str) -> Scorer:
        return self.spec(name).scorer

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def spec(self, name: str) -> PolicySpec:
        """The full spec of ``name``; UnknownPolicyError lists the valid names."""
        try:
            return self._specs[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._specs), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UnknownPolicyError(
                f"unknown policy {name!r}{hint}; valid policies: {', '.join(sorted(self._specs))}"
            ) from None

    def register(
        self,
        name: str,
        scorer: Callable[..., np.ndarray],
        *,
        order_dependent: bool = False,
        vetoes: bool = True,
        choose_devices: Callable[..., tuple[int, ...]] | None = None,
        replace: bool = False,
        pure: bool = False,
        per_node: bool = False,
    ) -> PolicySpec:
        """Register ``scorer`` under ``name``; re-registering a name needs ``replace=True``."""
        if name in self._specs and not replace:
            raise ValueError(f"policy {name!r} is already registered (pass replace=True to override it)")
        signature = inspect.signature(scorer)
        params = [p for p in signature.parameters.values()]
        if len(params) < 2:
            raise TypeError(f"policy {name!r}: a scorer takes (nodes, request, ...), got {signature}")
        keyword = tuple(p.name for p in params[2:] if p.kind is not inspect.Parameter.VAR_KEYWORD)
        doc = inspect.getdoc(scorer) or ""
        spec = PolicySpec(
            name=name,
            scorer=scorer,  # type: ignore[arg-type]
            uses_rng="rng" in keyword,
            uses_feasible="feasible" in keyword,
            uses_last="last" in keyword,
            order_dependent=order_dependent,
            params=tuple(k for k in keyword if k not in _INJECTED),
            summary=doc.splitlines()[0] if doc else "",
            vetoes=vetoes,
            choose_devices=choose_devices,
            pure=(pure or per_node) and "rng" not in keyword and "last" not in keyword,
            per_node=per_node and not ({"rng", "last", "feasible"} & set(keyword)),
        )
        self._specs[name] = spec
        return spec

    def spec_of(self, scorer: Callable[..., np.ndarray]) -> PolicySpec:
        """The spec of a scorer passed to ``select`` itself, not by name: inspected once, not registered."""
        spec = self._unregistered.get(scorer)
        if spec is None:
            name = getattr(scorer, "__name__", repr(scorer))
            spec = self._unregistered[scorer] = PolicyRegistry().register(name, scorer)
        return spec

    def unregister(self, name: str) -> None:
        """Remove a policy (mainly for tests that register throwaway ones)."""
        self.spec(name)
        del self._specs[name]

    def withdraw(self, names: Iterable[str]) -> list[PolicySpec]:
        """Unregister ``names`` (those registered); the removed specs, for ``reinstate``.

        An edited plugin, imported again by a long-lived process, registers its names anew.
        """
        return [self._specs.pop(name) for name in names if name in self._specs]

    def reinstate(self, specs: Iterable[PolicySpec]) -> None:
        """Put back specs that ``withdraw`` removed (the edited plugin failed to import)."""
        self._specs.update((spec.name, spec) for spec in specs)


POLICIES = PolicyRegistry()


def policy(
    name: str,
    *,
    order_dependent: bool = False,
    vetoes: bool = True,
    choose_devices: Callable[..., tuple[int, ...]] | None = None,
    replace: bool = False,
    pure: bool = False,
    per_node: bool = False,
) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    """Decorator: register a scorer under ``name`` and return it unchanged.

    ``vetoes=False`` promises the scorer never returns ``-inf`` (nor NaN), which lets
    ``select`` skip it when a single node fits; leave it True if unsure. ``pure=True``
    promises its scores depend on the matrix's numbers and the request only (see
    ``PolicySpec.pure``), ``per_node=True`` that each node's score depends on its own
    column only (``PolicySpec.per_node``); leave them False if unsure.
    """

    def register(scorer: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        POLICIES.register(
            name,
            scorer,
            order_dependent=order_dependent,
            vetoes=vetoes,
            choose_devices=choose_devices,
            replace=replace,
            pure=pure,
            per_node=per_node,
        )
        return scorer

    return register
