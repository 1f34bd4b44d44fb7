"""Small builders for LeaderWorkerSet unit tests."""

from __future__ import annotations

from typing import Any

from rbg.api.lws_v1 import LeaderWorkerSet


def lws(
    name: str = "test",
    replicas: int = 2,
    size: int = 3,
    annotations: dict[str, str] | None = None,
    **lwt: Any,
) -> LeaderWorkerSet:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "leaderWorkerTemplate": {
            "size": size,
            "workerTemplate": {"spec": {"containers": [{"name": "c", "image": "i"}]}},
            **lwt,
        },
    }
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "uid": "uid-1", "generation": 1}
    if annotations:
        meta["annotations"] = annotations
    return LeaderWorkerSet.model_validate({"metadata": meta, "spec": spec})
