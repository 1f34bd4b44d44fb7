import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rbg.devcluster import binaries, processes
from rbg.devcluster.wait import WaitTimeout, wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_python_and_build_script_agree_on_the_kubernetes_version() -> None:
    env = (ROOT / "hack" / "versions.env").read_text()
    assert re.search(r"^K8S_VERSION=(\S+)$", env, re.M).group(1) == binaries.K8S_VERSION  # type: ignore[union-attr]


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = processes.free_ports(5)
    assert len(set(ports)) == 5
    assert not any(processes.port_in_use(p) for p in ports)
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[0]))
        s.listen()
        assert processes.port_in_use(ports[0])


def test_stop_groups_kills_the_whole_process_group(tmp_path: Path) -> None:
    # a parent that starts a child in the same group; both must be gone after stop_groups
    script = (
        "import subprocess,sys,time; subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']); "
        "time.sleep(60)"
    )
    pid = processes.spawn([sys.executable, "-c", script], tmp_path / "log")
    time.sleep(0.5)
    members = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout.split()
    assert len(members) == 2
    processes.stop_groups([pid], grace=5)
    assert not processes.group_alive(pid)
    assert not processes.alive(pid)


def test_wait_until_reports_the_last_observed_state() -> None:
    calls = iter(range(100))
    with pytest.raises(WaitTimeout, match=r"waiting for three pods; last observed: \d+ pods"):
        wait_until(lambda: (False, f"{next(calls)} pods"), timeout=0.3, what="three pods", interval=0.05)
    assert wait_until(lambda: (True, "ok"), timeout=1) == "ok"


def test_missing_binaries_name_the_directory_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RBG_K8S_BIN", str(tmp_path))
    with pytest.raises(binaries.DevClusterError) as exc:
        binaries.find_binaries()
    assert str(exc.value).startswith(f"control-plane binaries missing in {tmp_path}: etcd, kube-apiserver")
    assert "make controlplane" in str(exc.value)


def test_runs_in_tells_our_processes_from_a_recycled_pid(tmp_path: Path) -> None:
    pid = processes.spawn(
        [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "log", cwd=tmp_path
    )
    try:
        assert processes.runs_in(pid, tmp_path)
        assert not processes.runs_in(pid, tmp_path / "elsewhere")
        assert not processes.runs_in(os.getpid(), tmp_path)
    finally:
        processes.stop_groups([pid], grace=2)
    assert not processes.runs_in(pid, tmp_path)


def test_a_group_whose_leader_died_is_still_recognised_by_its_members(tmp_path: Path) -> None:
    script = "import subprocess,sys; subprocess.Popen([sys.executable,'-c','import time; time.sleep(30)'])"
    pid = processes.spawn([sys.executable, "-c", script], tmp_path / "log", cwd=tmp_path)
    time.sleep(0.5)  # the leader has exited, its child lives on in the same group and directory
    assert not processes.runs_in(pid, tmp_path)
    assert processes.group_runs_in(pid, tmp_path)
    processes.stop_groups([pid], grace=2)
    assert not processes.group_runs_in(pid, tmp_path)
