"""Ends a local trainer whose stack is gone: a stack killed with -9 cannot stop the trainers it started."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping

# Set by the local stack's launcher to its own pid; absent on SageMaker, where the platform ends the job.
STACK_PID_VARIABLE = "TT_STACK_PID"
# How long a stop request may take before the process exits anyway (e.g. while the base model loads).
EXIT_GRACE_SECONDS = 30.0


def watch_parent(
    environ: Mapping[str, str],
    on_orphaned: Callable[[], None],
    *,
    interval: float = 1.0,
    grace: float = EXIT_GRACE_SECONDS,
) -> None:
    """Calls `on_orphaned` once the stack's process is gone (this process was re-parented), then exits
    after `grace` seconds if it is still running."""
    value = environ.get(STACK_PID_VARIABLE, "")
    if not value.isdigit():
        return
    stack_pid = int(value)

    def watch() -> None:
        while os.getppid() == stack_pid:
            threading.Event().wait(interval)
        on_orphaned()
        threading.Event().wait(grace)
        os._exit(143)

    threading.Thread(target=watch, name="tt-parent-watch", daemon=True).start()
