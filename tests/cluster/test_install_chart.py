"""The Helm chart and config/install.yaml against the real API server (issue 15): `helm lint`, and the
rendered manifests accepted by a server-side dry run (schemas, RBAC rules, webhook configurations and
CRDs validated by the API server itself, nothing persisted)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rbg.devcluster.cluster import State

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "rbg"


def _helm(cluster: State, *args: str) -> str:
    helm = Path(cluster.bin_dir) / "helm"
    r = subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _dry_run(cluster: State, manifests: str) -> str:
    """Server-side dry run of `manifests` as field manager "rbg": the suite's operator installed the CRDs
    and webhook configurations (reached by URL) as "rbg", so this is the chart taking them over, the
    Service reference replacing the URL. (Under another manager both would be kept: invalid, which is
    what an install over a running `rbg controller run` meets: delete its webhook configurations first.)"""
    from rbg.devcluster.operator import kubectl as run_kubectl

    # the release namespace must exist for a dry run of what goes in it (helm --create-namespace)
    run_kubectl(cluster, "create", "namespace", "rbg-system", ok_if_exists=True)
    kubectl = Path(cluster.bin_dir) / "kubectl"
    r = subprocess.run(
        [str(kubectl), f"--kubeconfig={cluster.kubeconfig}", "apply", "--server-side", "--force-conflicts",
         "--field-manager=rbg", "--dry-run=server", "-f", "-"],
        input=manifests, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("values", [[], ["--set", "certManager.enabled=true,controllers.lws.enabled=false"]])
def test_helm_lint_passes(cluster: State, values: list[str]) -> None:
    out = _helm(cluster, "lint", "--strict", str(CHART), *values)
    assert "0 chart(s) failed" in out


def test_rendered_chart_passes_a_server_side_dry_run(cluster: State) -> None:
    rendered = _helm(cluster, "template", "rbg", str(CHART), "--namespace", "rbg-system")
    out = _dry_run(cluster, rendered)
    for kind in (
        "deployment.apps/rbg-controller",
        "service/rbg-webhook",
        "poddisruptionbudget.policy/rbg-controller",
        "customresourcedefinition.apiextensions.k8s.io/rolebasedgroups.workloads.x-k8s.io",
        "validatingwebhookconfiguration.admissionregistration.k8s.io/rbg-validating-webhook-configuration",
        "clusterrole.rbac.authorization.k8s.io/rbg-controller",
    ):
        assert f"{kind} serverside-applied (server dry run)" in out, out


def test_install_yaml_is_the_rendered_chart(cluster: State) -> None:
    rendered = _helm(cluster, "template", "rbg", str(CHART), "--namespace", "rbg-system")
    install = (ROOT / "config" / "install.yaml").read_text()
    assert install.endswith(rendered), "config/install.yaml is stale: run `make chart`"
    assert "kind: Namespace" in install.removesuffix(rendered)
    _dry_run(cluster, install)
