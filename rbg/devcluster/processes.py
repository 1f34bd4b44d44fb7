"""Detached child processes and loopback ports (small, generic helpers)."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from rbg.devcluster.errors import DevClusterError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def free_ports(n: int) -> list[int]:
    """n distinct free ports (held open together while picking, so none repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def spawn(
    args: Sequence[str | Path], log: Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> int:
    """Start a process in a session (and process group) of its own, output to `log`; returns its pid.
    `env`: variables set on top of this process's environment."""
    try:
        with open(log, "ab") as out:
            p = subprocess.Popen(
                [str(a) for a in args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=cwd,
                env={**os.environ, **env} if env else None,
            )
    except OSError as exc:
        raise DevClusterError(f"cannot start {args[0]}: {exc.strerror}") from None
    return p.pid


def alive(pid: int) -> bool:
    # reap it if it is our zombie child, so a dead child does not look alive
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def runs_in(pid: int, directory: Path) -> bool:
    """The process exists and its working directory is `directory`."""
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).resolve() == directory.resolve()
    except OSError:
        return False


def group_runs_in(pgid: int, directory: Path) -> bool:
    """Some live member of process group `pgid` works in `directory` (the leader may have died)."""
    return any(_pgid_of(pid) == pgid and runs_in(pid, directory) for pid in _pids())


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a group whose only members are zombies is gone for our purposes
    return any(_pgid_of(pid) == pgid and alive(pid) for pid in _pids())


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _pgid_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def stop_groups(pgids: Sequence[int], grace: float = 10.0) -> None:
    """SIGTERM each process group, then SIGKILL what is left after `grace` seconds."""
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(group_alive(g) for g in pgids):
        time.sleep(0.1)
    for pgid in pgids:
        if group_alive(pgid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(group_alive(g) for g in pgids):
        time.sleep(0.05)


def kill_group(pgid: int, timeout: float = 10.0) -> None:
    """SIGKILL a process group at once (a crash, not a stop) and wait until it is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and group_alive(pgid):
        time.sleep(0.05)


def last_line(log: Path, limit: int = 300) -> str:
    """The last non-empty line of a log, shortened, for one-line error messages."""
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:limit] if lines else ""
