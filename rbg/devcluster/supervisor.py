"""Keep a process running as a kubelet keeps a container: restart it when it exits, with back-off.

`python -m rbg.devcluster.supervisor --record FILE -- COMMAND...` runs COMMAND in its own process group
(the supervisor's), waits for it, and starts it again after a delay that doubles on every exit in a row
(`--initial` seconds, at most `--cap`), as a kubelet's CrashLoopBackOff does; a run that lasted
`--reset-after` seconds or more counts as healthy and resets the delay. SIGTERM or SIGINT is passed on
to the child; the supervisor exits when the child has. FILE (JSON, replaced whole) tells how many times
the child was restarted, its pid, and how it last ended, so tests can count restarts (D43).

The local cluster runs the operator under this (`rbg cluster operator up`): an operator that exits on a
lost Lease, as controller-runtime's managers do, comes back as it would in a real cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType


def backoff(exits_in_a_row: int, initial: float, cap: float) -> float:
    """Seconds to wait before the next start after `exits_in_a_row` (>= 1) quick exits."""
    if exits_in_a_row <= 0:
        return 0.0
    return float(min(cap, initial * 2 ** min(exits_in_a_row - 1, 62)))


@dataclass
class Record:
    """What the supervisor tells about its child (the record file's content)."""

    restarts: int = 0
    pid: int = 0
    last_exit: int | None = None  # the exit code, or -signal, of the child's last run
    last_ran_for: float = 0.0
    started_at: float = 0.0

    @classmethod
    def read(cls, path: Path) -> Record | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def write(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)


def supervise(command: list[str], record: Path, initial: float, cap: float, reset_after: float) -> int:
    state = Record()
    child: subprocess.Popen[bytes] | None = None
    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    quick_exits = 0
    while not stopping:
        started = time.monotonic()
        child = subprocess.Popen(command)  # inherits our stdout/stderr (the log) and process group
        if stopping:  # the signal came while it was being started: it must stop too
            child.terminate()
        state.pid, state.started_at = child.pid, time.time()
        state.write(record)
        code = child.wait()
        ran_for = time.monotonic() - started
        state.last_exit, state.last_ran_for = code, round(ran_for, 3)
        if stopping:
            state.write(record)
            break
        quick_exits = 1 if ran_for >= reset_after else quick_exits + 1
        delay = backoff(quick_exits, initial, cap)
        print(
            f"supervisor: {command[0]} exited with {code} after {ran_for:.1f}s; restarting in {delay:.0f}s",
            file=sys.stderr,
            flush=True,
        )
        state.restarts += 1
        state.write(record)
        deadline = time.monotonic() + delay
        while not stopping and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rbg.devcluster.supervisor")
    parser.add_argument("--record", type=Path, required=True, help="JSON file telling restarts and pid")
    parser.add_argument("--initial", type=float, default=1.0, help="first back-off delay (seconds)")
    parser.add_argument("--cap", type=float, default=30.0, help="longest back-off delay (seconds)")
    parser.add_argument("--reset-after", type=float, default=60.0, help="a run this long resets it")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return supervise(command, args.record, args.initial, args.cap, args.reset_after)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
