"""The conversion webhook sits on every read of a version the group is not stored in (issue 14): two
replicas behind one address (SO_REUSEPORT on one host, as a Service spreads requests over pods) keep
reads of v1alpha2 answered while each is restarted in turn, sharing one certificate (D41), and a change
made while the leader is stopped is converged by the other replica (leader failover).

A cluster of its own (`rbg-convert`): two operators and restarts must not disturb the suite's cluster.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from rbg.devcluster import operator as op
from rbg.devcluster import processes
from rbg.devcluster.cluster import LocalCluster, State
from rbg.devcluster.errors import DevClusterError
from rbg.devcluster.wait import wait_until

CLUSTER = "rbg-convert"
REPLICAS = ("rbg-operator-a", "rbg-operator-b")
GROUP = {
    "apiVersion": "workloads.x-k8s.io/v1alpha1",  # stored as v1alpha1: every v1alpha2 read converts
    "kind": "RoleBasedGroup",
    "metadata": {"name": "pd", "namespace": "default"},
    "spec": {
        "roles": [
            {
                "name": "prefill",
                "replicas": 1,
                "template": {"spec": {"containers": [{"name": "e", "image": "registry.local/e:1"}]}},
            }
        ]
    },
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[LocalCluster, State]]:
    lc = LocalCluster(CLUSTER)
    try:
        state, _ = lc.up(timeout=180)
    except DevClusterError as exc:
        lc.down()  # no half-started cluster left for the next run to find
        pytest.fail(f"could not start the cluster: {exc}", pytrace=False)
    try:
        yield lc, state
    finally:
        _stop(lc, *REPLICAS)
        lc.down()


def _start(lc: LocalCluster, state: State, name: str, webhook: int) -> None:
    kubeconfig = op.service_account_kubeconfig(state, lc.dir / f"{name}.kubeconfig")
    health, metrics = processes.free_ports(2)
    args: list[Any] = [
        sys.executable, "-m", "rbg.cli.main", "controller", "run",
        f"--kubeconfig={kubeconfig}", "--probe-bind=127.0.0.1", f"--health-port={health}",
        f"--metrics-port={metrics}", f"--webhook-port={webhook}", "--webhook-reuse-port",
        f"--cert-dir={lc.dir / name}",
    ]  # fmt: skip
    op.spawn_until_ready(lc, state, name, args, health, timeout=90)


def _stop(lc: LocalCluster, *names: str) -> None:
    state = lc.load_state()
    if state is None:
        return
    processes.stop_groups([state.pids.pop(n) for n in names if n in state.pids])
    lc.save(state)


def _scaled(state: State) -> int:
    """Ready pods of the group's StatefulSet (what a converged scale shows)."""
    sts = yaml.safe_load(op.kubectl(state, "get", "statefulset", "pd-prefill", "-o", "yaml"))
    if sts["spec"]["replicas"] != sts["status"].get("readyReplicas"):
        return -1
    return int(sts["spec"]["replicas"])


class Reader(threading.Thread):
    """Reads the group as v1alpha2 (through the conversion webhook) as fast as it can, counting failures."""

    def __init__(self, lc: LocalCluster, state: State) -> None:
        super().__init__(daemon=True)
        from lightkube.generic_resource import create_namespaced_resource

        self.client = lc.client(state)
        self.kind = create_namespaced_resource(
            "workloads.x-k8s.io", "v1alpha2", "RoleBasedGroup", "rolebasedgroups"
        )
        self.reads, self.failures = 0, list[str]()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                obj = self.client.get(self.kind, "pd", namespace="default")
                assert obj.apiVersion == "workloads.x-k8s.io/v1alpha2"
                assert "standalonePattern" in obj["spec"]["roles"][0]
                self.reads += 1
            except Exception as exc:  # every failed read counts, whatever it is
                self.failures.append(f"{type(exc).__name__}: {exc}"[:300])


def test_two_replicas_restarted_in_turn_serve_every_conversion(cluster: tuple[LocalCluster, State]) -> None:
    lc, state = cluster
    webhook = processes.free_port()
    for name in REPLICAS:
        _start(lc, state, name, webhook)
    op.kubectl(state, "apply", "-f", "-", stdin=yaml.safe_dump(GROUP))
    reader = Reader(lc, state)
    reader.start()
    try:
        time.sleep(2)
        assert reader.reads > 0
        assert not reader.failures, reader.failures[:3]
        for name in (*REPLICAS, *REPLICAS):  # each stopped (SIGTERM) and started again, twice
            _stop(lc, name)
            time.sleep(1)  # reads meanwhile go to the other replica only
            _start(lc, lc.load_state() or state, name, webhook)
            time.sleep(1)
        # leader failover: each replica stopped in turn while a v1alpha2 change is made; the one left
        # (the new leader) converges it, and reads never fail meanwhile
        for replicas, name in ((2, REPLICAS[0]), (3, REPLICAS[1])):
            _stop(lc, name)
            patch = f'[{{"op": "replace", "path": "/spec/roles/0/replicas", "value": {replicas}}}]'
            op.kubectl(
                state,
                "patch",
                "rolebasedgroups.v1alpha2.workloads.x-k8s.io",
                "pd",
                "--type=json",
                "-p",
                patch,
            )
            wait_until(
                lambda n=replicas: (_scaled(state) == n, _scaled(state)),
                60,
                f"{replicas} replicas after failover",
            )
            _start(lc, lc.load_state() or state, name, webhook)
    finally:
        reader.done.set()
        reader.join(timeout=30)
    assert reader.failures == [], (reader.reads, reader.failures[:5])
    assert reader.reads > 50
    # one certificate: both replicas serve the CA the CRD trusts, kept across every restart
    secret = yaml.safe_load(
        op.kubectl(state, "get", "secret", "rbg-webhook-cert", "-n", "rbg-system", "-o", "yaml")
    )
    crd = yaml.safe_load(op.kubectl(state, "get", "crd", "rolebasedgroups.workloads.x-k8s.io", "-o", "yaml"))
    ca_bundle = crd["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"]
    assert ca_bundle == secret["data"]["ca.crt"]
