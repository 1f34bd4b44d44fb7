#!/usr/bin/env python3
"""Run the built image (make image) against a local cluster and deploy examples/pd-disagg.yaml.

The image's root filesystem is entered with chroot as uid 65532, its entrypoint run with a token of the
operator's ServiceAccount: podman cannot start containers on this machine (crun: setrlimit
RLIMIT_NPROC / RLIMIT_NOFILE: Operation not permitted), so the container runtime is the only part not
exercised. Needs root, buildah (vfs storage). Usage: .venv/bin/python hack/run-image.py [VERSION]
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import yaml

from rbg.devcluster import operator as op
from rbg.devcluster import processes
from rbg.devcluster.cluster import LocalCluster

BUILDAH = ["buildah", "--storage-driver=vfs"]


def main(version: str) -> int:
    image = f"localhost/rbg:{version}"
    container = subprocess.run(
        [*BUILDAH, "from", image], capture_output=True, text=True, check=True
    ).stdout.strip()
    lc = LocalCluster("rbg-image")
    try:
        mnt = Path(
            subprocess.run(
                [*BUILDAH, "mount", container], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
        state, _ = lc.up(timeout=180)
        cfg = yaml.safe_load(op.service_account_kubeconfig(state, lc.dir / "image.kubeconfig").read_text())
        for c in cfg["clusters"]:  # the host's CA file is not inside the image
            ca = Path(c["cluster"].pop("certificate-authority")).read_bytes()
            c["cluster"]["certificate-authority-data"] = base64.b64encode(ca).decode()
        (mnt / "kube").mkdir(exist_ok=True)
        (mnt / "kube" / "config").write_text(yaml.safe_dump(cfg))
        (mnt / "kube" / "config").chmod(0o644)
        health, metrics, webhook = processes.free_ports(3)
        cmd = ["chroot", "--userspec=65532:65532", str(mnt), "/opt/rbg/bin/rbg", "controller", "run",
               "--kubeconfig=/kube/config", "--probe-bind=127.0.0.1", f"--health-port={health}",
               f"--metrics-port={metrics}", f"--webhook-port={webhook}"]  # fmt: skip
        with open(lc.logs / "image-operator.log", "w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            t0 = time.monotonic()
            while True:
                if proc.poll() is not None:
                    print(
                        f"the entrypoint exited {proc.returncode}: see {lc.logs / 'image-operator.log'}"
                    )
                    return 1
                try:
                    if httpx.get(f"http://127.0.0.1:{health}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            print(f"operator from {image} ready in {time.monotonic() - t0:.1f}s")
            op.kubectl(state, "apply", "-f", str(Path(__file__).parents[1] / "examples" / "pd-disagg.yaml"))
            for _ in range(120):
                groups = json.loads(op.kubectl(state, "get", "rbg", "-o", "json"))["items"]
                ready = [
                    any(
                        c["type"] == "Ready" and c["status"] == "True"
                        for c in (g.get("status") or {}).get("conditions", [])
                    )
                    for g in groups
                ]
                if groups and all(ready):
                    break
                time.sleep(1)
            else:
                print("pd-disagg was not Ready in 120 s")
                return 1
            print(op.kubectl(state, "get", "rbg,pods"))
            proc.terminate()
            proc.wait(30)
        return 0
    finally:
        lc.down()
        subprocess.run([*BUILDAH, "rm", container], capture_output=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "0.1.0"))
