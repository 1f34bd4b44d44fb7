#!/usr/bin/env python3
"""Refresh rbg/api/data/core-v1-openapi.json from a running kube-apiserver (the local cluster).

Kubernetes itself is the maintained source of the PodTemplateSpec / ServicePort / Container schemas that
the generated CRDs embed and that the strategic-merge patcher reads its merge keys from. The file holds
the transitive closure of those definitions, without descriptions, from `/openapi/v3/api/v1`.

Usage: .venv/bin/python hack/update-k8s-schemas.py [--name CLUSTER]   (after `rbg cluster up`)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rbg.api.k8s_schema import ROOTS, extract_definitions
from rbg.devcluster.cluster import LocalCluster

OUT = Path(__file__).resolve().parents[1] / "rbg" / "api" / "data" / "core-v1-openapi.json"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="rbg")
    args = ap.parse_args()
    lc = LocalCluster(args.name)
    state = lc.load_state()
    if state is None:
        print(f"cluster {args.name} is not running: run `rbg cluster up --name {args.name}` first", file=sys.stderr)
        return 1
    kubectl = [str(Path(state.bin_dir) / "kubectl"), f"--kubeconfig={state.kubeconfig}", "get", "--raw"]
    version = json.loads(subprocess.run([*kubectl, "/version"], check=True, capture_output=True).stdout)
    spec = json.loads(subprocess.run([*kubectl, "/openapi/v3/api/v1"], check=True, capture_output=True).stdout)
    version = version["gitVersion"]
    data = {"kubernetesVersion": version, "definitions": extract_definitions(spec, ROOTS)}
    OUT.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT} ({len(data['definitions'])} definitions, Kubernetes {version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
