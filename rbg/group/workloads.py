"""One strategy per workload kind a role can run as: everything that differs between the kinds.

The kind is decided here and nowhere else: the desired-state builders, validation and the controller ask
`strategy_of(role)`; a kind without a strategy is refused (validation), never run as another kind.
A new kind (LeaderWorkerSet) is one more strategy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rbg.api.v1alpha1 import RoleSpec
from rbg.group import names

Obj = dict[str, Any]


@dataclass(frozen=True)
class WorkloadStrategy:
    api_version: str
    kind: str
    stateful: bool  # pods have ordinals and stable DNS names ({workload}-{i}.{service})
    max_name: int  # longest workload name that still works
    max_name_why: str
    rollout: Callable[[RoleSpec, str], Obj]  # (role, its Service name) -> the kind's own spec fields

    @property
    def ref(self) -> str:
        return f"{self.api_version}/{self.kind}"


def _statefulset_rollout(role: RoleSpec, service: str) -> Obj:
    ru = role.rollout_strategy.rolling_update if role.rollout_strategy else None
    update: Obj = {"type": "RollingUpdate"}
    partition = _partition(ru.partition if ru else None, role.replicas)
    if partition > 0:
        update["rollingUpdate"] = {"partition": partition}
    return {"serviceName": service, "podManagementPolicy": "Parallel", "updateStrategy": update}


def _deployment_rollout(role: RoleSpec, service: str) -> Obj:
    ru = role.rollout_strategy.rolling_update if role.rollout_strategy else None
    strategy: Obj = {"type": "RollingUpdate"}
    if ru is not None:
        strategy["rollingUpdate"] = {"maxSurge": ru.max_surge or 0, "maxUnavailable": ru.max_unavailable or 0}
        if _zero(ru.max_surge) and _zero(ru.max_unavailable):
            strategy["rollingUpdate"]["maxUnavailable"] = 1
    return {"strategy": strategy}


def _partition(value: int | str | None, replicas: int) -> int:
    """A StatefulSet partition: an ordinal, or a percentage of the replicas (rounded down)."""
    if isinstance(value, str) and value.endswith("%"):
        return replicas * int(value[:-1]) // 100
    return value if isinstance(value, int) else 0


def _zero(value: int | str | None) -> bool:
    return value in (None, 0, "0", "0%")


STATEFULSET = WorkloadStrategy(
    "apps/v1",
    "StatefulSet",
    stateful=True,
    max_name=names.MAX_STATEFULSET_NAME,
    max_name_why=(
        f"at most {names.MAX_STATEFULSET_NAME} (its pods' controller-revision-hash label must fit in 63)"
    ),
    rollout=_statefulset_rollout,
)
DEPLOYMENT = WorkloadStrategy(
    "apps/v1",
    "Deployment",
    stateful=False,
    max_name=names.MAX_NAME,
    max_name_why=f"at most {names.MAX_NAME}",
    rollout=_deployment_rollout,
)
STRATEGIES: dict[str, WorkloadStrategy] = {s.ref: s for s in (STATEFULSET, DEPLOYMENT)}
KINDS = frozenset(s.kind for s in STRATEGIES.values())


def strategy_of(role: RoleSpec) -> WorkloadStrategy | None:
    """The role's strategy, or None for a kind this operator does not run."""
    return STRATEGIES.get(role.workload.ref)
