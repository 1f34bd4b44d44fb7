"""Fixtures for behaviour tests on the real local control plane.

One cluster (`rbg-test`) serves the whole run; each test gets a fresh namespace. A missing or broken
control plane fails the run: these tests are never skipped.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, ServiceAccount

from rbg.devcluster.cluster import LocalCluster, State
from rbg.devcluster.errors import DevClusterError
from rbg.devcluster.wait import wait_until

TEST_CLUSTER = os.environ.get("RBG_TEST_CLUSTER", "rbg-test")


@pytest.fixture(scope="session")
def cluster() -> Iterator[State]:
    lc = LocalCluster(TEST_CLUSTER)
    try:
        state, reused = lc.up(timeout=180)
    except DevClusterError as exc:
        pytest.fail(f"local control plane could not be started: {exc}", pytrace=False)
    yield state
    if not reused and not os.environ.get("RBG_TEST_KEEP_CLUSTER"):
        lc.down()


@pytest.fixture(scope="session")
def kube(cluster: State) -> Iterator[Client]:
    with LocalCluster(TEST_CLUSTER).client(cluster) as client:
        yield client


@pytest.fixture
def namespace(kube: Client, request: pytest.FixtureRequest) -> Iterator[str]:
    base = request.node.name.lower().replace("_", "-")
    name = f"{''.join(c for c in base if c.isalnum() or c == '-')[:40].strip('-')}-{secrets.token_hex(3)}"
    kube.create(Namespace(metadata=ObjectMeta(name=name)))

    def default_sa() -> tuple[bool, Any]:
        try:
            kube.get(ServiceAccount, "default", namespace=name)
        except ApiError as exc:
            return False, exc.status.message
        return True, "present"

    # the ServiceAccount admission plugin refuses pods until KCM has made the default account
    wait_until(default_sa, 30, f"serviceaccount default in {name}")
    yield name
    with contextlib.suppress(ApiError):
        kube.delete(Namespace, name)


@pytest.fixture(scope="session")
def local_cluster(cluster: State) -> LocalCluster:
    return LocalCluster(TEST_CLUSTER)


@pytest.fixture(scope="session")
def operator(cluster: State) -> Iterator[State]:
    """The operator, running with its own ServiceAccount and RBAC (config/rbac), for the whole session."""
    from rbg.devcluster import operator as op

    lc = LocalCluster(TEST_CLUSTER)
    try:
        state = op.start(lc)
    except DevClusterError as exc:
        pytest.fail(f"operator could not be started: {exc}", pytrace=False)
    yield state
    op.stop(lc)


@pytest.fixture
def kubectl(cluster: State) -> Any:
    """Run the cluster's own kubectl (built with the control plane) as a user would."""
    import subprocess
    from pathlib import Path

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(Path(cluster.bin_dir) / "kubectl"), f"--kubeconfig={cluster.kubeconfig}", *args],
            input=stdin, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    return run
