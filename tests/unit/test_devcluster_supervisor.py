"""The local cluster's supervisor restarts a process that exits, with a kubelet-like back-off (D43)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from rbg.devcluster.supervisor import Record, backoff


def test_backoff_doubles_from_initial_up_to_the_cap() -> None:
    assert [backoff(n, 1.0, 30.0) for n in range(0, 8)] == [0, 1, 2, 4, 8, 16, 30, 30]
    assert backoff(10_000, 10.0, 300.0) == 300.0  # no overflow however long it crash-loops


@given(st.integers(1, 200), st.floats(0.1, 20), st.floats(1, 600))
def test_backoff_is_monotonic_and_bounded(n: int, initial: float, cap: float) -> None:
    assert backoff(n, initial, cap) <= max(cap, 0)
    assert backoff(n + 1, initial, cap) >= backoff(n, initial, cap)


def _wait(predicate, within: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_process_that_exits_is_restarted_and_sigterm_stops_both(tmp_path: Path) -> None:
    record = tmp_path / "rec.json"
    marker = tmp_path / "runs"
    # the child appends a line per run, then: the first two runs exit 3 at once, later runs stay up
    child = (
        "import pathlib,sys,time; p=pathlib.Path(sys.argv[1]); p.open('a').write('x\\n');"
        "n=len(p.read_text().split()); sys.exit(3) if n <= 2 else time.sleep(60)"
    )
    sup = subprocess.Popen(
        [sys.executable, "-m", "rbg.devcluster.supervisor", f"--record={record}", "--initial=0.1",
         "--cap=0.2", "--", sys.executable, "-c", child, str(marker)],
        start_new_session=True,
    )  # fmt: skip
    try:
        _wait(lambda: marker.exists() and len(marker.read_text().split()) == 3)
        rec = Record.read(record)
        assert rec is not None
        assert rec.restarts == 2
        assert rec.last_exit == 3
        running = rec.pid
        _wait(lambda: Path(f"/proc/{running}").exists())
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=20) == 0
        _wait(lambda: not Path(f"/proc/{running}").exists() or "Z" in _state(running))
        final = Record.read(record)
        assert final is not None
        assert final.last_exit == -signal.SIGTERM  # the child got the signal and the supervisor stopped
        assert len(marker.read_text().split()) == 3  # and it was not started again
    finally:
        if sup.poll() is None:
            sup.kill()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
