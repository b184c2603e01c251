"""`tt local up` stops on Ctrl-C whichever of its threads the kernel hands the signal to."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_a_signal_delivered_to_another_thread_still_stops_the_stack() -> None:
    waiter = textwrap.dedent(
        """
        import signal, threading
        from tt_local.command import stop_signals, wait_for

        stopping = stop_signals()
        # The signal lands on this timer's thread, as it may on any of the stack's (moto, HTTP, workers).
        threading.Timer(0.2, lambda: signal.pthread_kill(threading.get_ident(), signal.SIGINT)).start()
        wait_for(stopping)
        print("stopped")
        """
    )
    done = subprocess.run([sys.executable, "-c", waiter], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "stopped", done.stderr
