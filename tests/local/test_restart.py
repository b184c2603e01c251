"""Restarting after a crash: the port is free again at once, and no trainer outlives its stack."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

from tests.processes import ends_within
from tt_local.stack import port_is_free


def _leave_time_wait(host: str) -> int:
    """A port whose server closed a keep-alive connection first: it sits in TIME_WAIT, nothing listens."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the stack's HTTP server does
    server.bind((host, 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection((host, port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first (as after kill -9): its end waits in TIME_WAIT
    server.close()
    client.close()
    return port


def test_a_port_left_in_time_wait_by_a_killed_stack_is_free() -> None:
    port = _leave_time_wait("127.0.0.1")
    assert port_is_free("127.0.0.1", port)


def test_a_port_something_listens_on_is_not_free() -> None:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert not port_is_free("127.0.0.1", listener.getsockname()[1])


def test_a_trainer_exits_when_its_stack_process_is_gone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The stack starts a child that watches it, then dies by SIGKILL: the orphan stops by itself."""
    pid_file = tmp_path / "child.pid"
    stack = textwrap.dedent(
        f"""
        import os, subprocess, sys
        child = subprocess.Popen(
            [sys.executable, "-c",
             "import os, time; from tt_trainer.parent_watch import watch_parent;"
             "watch_parent(os.environ, lambda: os._exit(143), interval=0.1);"
             "time.sleep(120)"],
            env={{**os.environ, "TT_STACK_PID": str(os.getpid())}},
            start_new_session=True,
        )
        open({str(pid_file)!r}, "w").write(str(child.pid))
        os.kill(os.getpid(), 9)
        """
    )
    subprocess.run([sys.executable, "-c", stack], check=False, timeout=60)
    child = int(pid_file.read_text())
    assert ends_within(child, 30)


def test_the_launcher_tells_the_trainer_which_process_to_watch() -> None:
    from tt_local.process_launcher import _trainer_environment
    from tt_trainer.parent_watch import STACK_PID_VARIABLE

    assert _trainer_environment()[STACK_PID_VARIABLE] == str(os.getpid())
