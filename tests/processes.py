"""Whether a process or a process group has ended. A zombie has: it was killed and only waits for its
parent (the launcher's waiting thread) to collect it, which may happen a moment later (Linux /proc)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

ENDED = ("Z", "X")  # zombie, dead


def _processes() -> Iterator[tuple[int, str, int]]:
    """(pid, state, process group) of every process."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp …": comm may hold spaces and ")", so split after the last one.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it ended while we looked
        yield int(stat.parent.name), fields[0], int(fields[2])


def process_gone(pid: int) -> bool:
    return all(state in ENDED for other, state, _ in _processes() if other == pid)


def group_gone(pgid: int) -> bool:
    return all(state in ENDED for _, state, group in _processes() if group == pgid)


def ends_within(pid: int, seconds: float) -> bool:
    """Whether the process ends within `seconds`; one still running then is killed, so no test leaks it."""
    deadline = time.monotonic() + seconds
    while not process_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if process_gone(pid):
        return True
    os.kill(pid, signal.SIGKILL)
    return False
