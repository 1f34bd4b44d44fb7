"""`rbg cluster` as a user runs it: up, reuse, status, env, down, and its answers to bad input."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RBG = [sys.executable, "-m", "rbg.cli.main"]


def rbg(
    *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RBG, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


def processes_in(directory: Path) -> list[int]:
    """Pids of processes whose working directory is the cluster's (every component runs there)."""
    found = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if Path(os.readlink(f"/proc/{p}/cwd")).resolve() == directory.resolve():
                    found.append(int(p))
            except OSError:
                pass
    return found


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_up_reuse_env_status_down_leaves_nothing_running(cluster: Any, tmp_path: Path) -> None:
    d = tmp_path / "c2"
    topo = tmp_path / "small.yaml"
    topo.write_text("zones: 1\nracksPerZone: 1\nnodesPerRack: 2\n")
    common = ["--name", "second", "--dir", str(d)]

    first = rbg("cluster", "up", *common, "--topology", str(topo))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"export KUBECONFIG={d / 'kubeconfig'}"

    status = json.loads(rbg("cluster", "status", *common, "-o", "json").stdout)
    assert status["running"]
    assert status["nodes_ready"] == status["nodes"] == 2
    ports = {c: v["port"] for c, v in status["components"].items() if v["port"]}
    pids = {v["pid"] for v in status["components"].values()}
    assert {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} <= status[
        "components"
    ].keys()
    # it runs beside the session's test cluster, on other ports
    assert ports["kube-apiserver"] != cluster.ports["kube-apiserver"]
    assert all(listening(p) for p in ports.values())

    again = rbg("cluster", "up", *common)
    assert again.returncode == 0
    assert "reusing it" in again.stderr
    assert {
        v["pid"]
        for v in json.loads(rbg("cluster", "status", *common, "-o", "json").stdout)["components"].values()
    } == pids

    env = rbg("cluster", "env", *common).stdout
    assert f"export KUBECONFIG={d / 'kubeconfig'}" in env
    assert "export PATH=" in env

    down = rbg("cluster", "down", *common)
    assert down.returncode == 0, down.stderr
    assert processes_in(d) == []
    assert not any(listening(p) for p in ports.values())
    after = rbg("cluster", "status", *common)
    assert after.returncode == 1
    assert "not running" in after.stdout


def test_busy_api_port_is_refused_and_nothing_starts(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = rbg("cluster", "up", "--name", "busy", "--dir", str(tmp_path / "busy"), "--api-port", str(port))
    assert r.returncode == 1
    assert r.stderr.strip() == f"error: port {port} (for kube-apiserver) is already in use"
    assert processes_in(tmp_path / "busy") == []


def test_unknown_topology_key_is_one_line_and_nothing_starts(tmp_path: Path) -> None:
    topo = tmp_path / "t.yaml"
    topo.write_text("zones: 2\nrackPerZone: 2\n")
    r = rbg("cluster", "up", "--name", "bad", "--dir", str(tmp_path / "bad"), "--topology", str(topo))
    assert r.returncode == 1
    assert r.stderr.strip() == f"error: {topo}: unknown key 'rackPerZone'"
    assert not (tmp_path / "bad").exists()


def test_missing_binaries_are_named(tmp_path: Path) -> None:
    r = rbg(
        "cluster", "up", "--name", "nobin", "--dir", str(tmp_path / "x"), env={"RBG_K8S_BIN": str(tmp_path)}
    )
    assert r.returncode == 1
    assert r.stderr.startswith(f"error: control-plane binaries missing in {tmp_path}: etcd, kube-apiserver")
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.fixture
def tool_path(tmp_path: Path) -> Path:
    """A PATH with the shell tools the build script needs, but no Go."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("dirname", "cat", "sha256sum", "cut", "mkdir", "date", "tail", "sed", "python3"):
        found = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        (bindir / tool).symlink_to(found)
    return bindir


def test_build_without_go_fails_with_the_cause(tool_path: Path, tmp_path: Path) -> None:
    r = subprocess.run(
        ["/bin/bash", str(ROOT / "hack/build-controlplane.sh")],
        capture_output=True,
        text=True,
        env={"PATH": str(tool_path), "HOME": str(tmp_path)},
    )
    assert r.returncode == 1
    assert (
        r.stderr.strip()
        == "build-controlplane: Go toolchain not found on PATH (need Go >= 1.25; see README.md)"
    )


def test_failed_build_names_the_part_and_its_log(tool_path: Path, tmp_path: Path) -> None:
    # a `go` that reports a good version but whose builds fail, as a broken proxy or compiler would
    go = tool_path / "go"
    go.write_text(
        '#!/bin/bash\nif [ "$1 $2" = "env GOVERSION" ]; then echo go1.26.8; exit 0; fi\n'
        'echo "go: simulated compiler failure" >&2; exit 1\n'
    )
    go.chmod(0o755)
    out = tmp_path / "out"
    r = subprocess.run(
        ["/bin/bash", str(ROOT / "hack/build-controlplane.sh")],
        capture_output=True,
        text=True,
        env={"PATH": str(tool_path), "HOME": str(tmp_path), "RBG_K8S_BIN": str(out)},
    )
    assert r.returncode == 1
    assert "go: simulated compiler failure" in r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        f"build-controlplane: building controlplane failed (full log: {out}/build-logs/controlplane.log)"
    )
    assert not (out / ".stamp-controlplane").exists()
