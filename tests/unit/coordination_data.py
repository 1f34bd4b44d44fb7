"""The prefill/decode group the coordination unit tests share."""

from __future__ import annotations

from typing import Any

from rbg.api.hub import RoleBasedGroup

HOST = "kubernetes.io/hostname"


def pd_group(prefill: int = 4, decode: int = 2, **affinity: Any) -> RoleBasedGroup:
    """prefill and decode StatefulSet roles, coordinated 2 : 1 on the hostname (`affinity` overrides)."""
    tpl = {"spec": {"containers": [{"name": "c", "image": "i"}]}}
    aff = {"topologyKey": HOST, "ratios": {"prefill": 2, "decode": 1}, **affinity}
    return RoleBasedGroup.model_validate(
        {
            "metadata": {"name": "g", "namespace": "ns", "uid": "u", "generation": 1},
            "spec": {
                "roles": [
                    {"name": "prefill", "replicas": prefill, "template": tpl},
                    {"name": "decode", "replicas": decode, "template": tpl},
                ],
                "coordination": [
                    {"name": "pd", "roles": ["prefill", "decode"], "strategy": {"affinityScheduling": aff}}
                ],
            },
        }
    )
