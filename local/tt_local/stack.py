"""Starts and stops the local stack: moto's server, the template's resources, the HTTP gateway."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tt_core.schema import (
    ENV_DEFAULT_BASE_MODEL,
    ENV_LOCAL_JOBS_DIR,
    ENV_MODE,
    ENV_TRAINING_POLL_SECONDS,
    LOCAL_DEFAULT_BASE_MODEL,
)

LOCAL_ACCOUNT_NAME = "local"
# How often the journal is checked for size: a large one is folded into the snapshot (snapshot.py).
COMPACT_CHECK_INTERVAL_S = 5.0
INTERRUPTED_RUN = "The local stack stopped during the run."


class PortInUseError(RuntimeError):
    pass


def port_is_free(host: str, port: int) -> bool:
    """Whether the stack's HTTP server could bind `port`: probed with the server's own socket options, so a
    port whose old connections wait in TIME_WAIT (after a crash) counts as free, as it is for the server."""
    from tt_local.http_server import LocalHTTPServer

    with socket.socket(LocalHTTPServer.address_family, LocalHTTPServer.socket_type) as probe:
        if LocalHTTPServer.allow_reuse_address:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def route_logs(path: Path) -> tuple[Any, Any]:
    """Points the handlers' logger at `path` (appending); returns the open file and the previous stream."""
    from tt_core.observability import logger

    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)  # Powertools logs through a stream handler
    log_file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - the caller closes it
    return log_file, handler.setStream(log_file)


@dataclass
class LocalInfo:
    base_url: str
    api_key: str


def read_local_info(data_dir: Path) -> LocalInfo | None:
    path = data_dir / "local.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return LocalInfo(base_url=data["base_url"], api_key=data["api_key"])


def _write_local_info(data_dir: Path, info: LocalInfo) -> None:
    path = data_dir / "local.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"base_url": info.base_url, "api_key": info.api_key}, handle, indent=2)
    os.chmod(path, 0o600)


class LocalStack:
    """The whole product in this process: call start(), then stop() (also on Ctrl-C)."""

    def __init__(
        self, data_dir: Path, port: int = 8787, host: str = "127.0.0.1", verbose: bool = False
    ) -> None:
        self.data_dir = data_dir
        self.verbose = verbose
        self._log_file: Any = None
        self._previous_log_stream: Any = None
        self.port = port
        self.host = host
        self._moto: Any = None
        self._storage_endpoint = ""
        self._journal_middleware: Any = None
        self._http: Any = None
        self._workers: Any = None
        self._snapshot: Any = None
        self._lambdas: Any = None
        self._stop_snapshots = threading.Event()
        self._snapshot_thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalInfo:
        if self.port and not port_is_free(self.host, self.port):
            raise PortInUseError(f"Port {self.port} is already in use: stop what uses it or pass --port.")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._route_logs()
        self._start_moto()
        info = self._provision()
        self._start_http()
        info = LocalInfo(base_url=self.base_url, api_key=info.api_key)
        _write_local_info(self.data_dir, info)
        self._snapshot_thread = threading.Thread(
            target=self._snapshot_loop, name="tt-local-snapshot", daemon=True
        )
        self._snapshot_thread.start()
        return info

    def _start_moto(self) -> None:
        from moto.moto_api._internal.models import moto_api_backend

        from tt_local.signatures import Credentials, sign_state_machine_calls
        from tt_local.snapshot import journaled_moto_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per emulated AWS call otherwise
        # The emulated services answer only requests signed with these (signatures.py): fresh for each start,
        # known to this process and the trainers it starts.
        credentials = Credentials.fresh()
        sign_state_machine_calls(credentials)
        # Every write the services apply is journaled before it is answered (snapshot.py).
        # The dashboard (served by the HTTP server, once it runs) uploads datasets from the browser.
        self._moto, self._journal_middleware = journaled_moto_server(
            credentials=credentials, cors_origin=lambda: self.base_url if self._http else None
        )
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        endpoint = self._storage_endpoint = f"http://{host}:{port}"
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID=credentials.access_key,
            AWS_SECRET_ACCESS_KEY=credentials.secret_key,
            AWS_DEFAULT_REGION="us-east-1",
            # moto's Step Functions interpreter calls services back on this port.
            MOTO_PORT=str(port),
        )
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
        # In process: moto-api's HTTP routes are unsigned, so the signature check refuses them too.
        moto_api_backend.set_config(
            {"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}
        )

    def _provision(self) -> LocalInfo:
        import boto3

        from tt_core import wiring
        from tt_local import adapters
        from tt_local.lambdas import LambdaDispatcher
        from tt_local.provision import function_handlers, functions, provision
        from tt_local.snapshot import Snapshot
        from tt_local.template import load_template

        template = load_template()
        session = boto3.session.Session()
        names = provision(template, session)
        self._lambdas = LambdaDispatcher(function_handlers(template))
        self._lambdas.install()
        # Every function of the stack gets the same environment here (they share one process).
        for spec in functions(template).values():
            os.environ.update(spec.environment)
        os.environ.update(
            {
                ENV_MODE: "local",
                ENV_DEFAULT_BASE_MODEL: LOCAL_DEFAULT_BASE_MODEL,
                ENV_LOCAL_JOBS_DIR: str(self.jobs_dir.resolve()),
                # The trainer is a local process: look at it every second, not every minute.
                ENV_TRAINING_POLL_SECONDS: "1",
                # No metrics: their EMF lines go to stdout, the terminal of `tt local up` and `make run`.
                # (No X-Ray either: outside Lambda the Tracer is off by itself.)
                "POWERTOOLS_METRICS_DISABLED": "true",
            }
        )
        adapters.install()  # the trainer subprocess and the playground, for TT_MODE=local
        self._snapshot = Snapshot(session, self.data_dir, [names["table"]], [names["bucket"]])
        self._journal_middleware.snapshot = self._snapshot
        self._snapshot.restore()  # journaling starts here: what follows (run recovery, the key) is kept
        self._recover_runs()

        keys = wiring.api_key_service()
        previous = read_local_info(self.data_dir)
        if previous is not None:
            record = keys.find_key(previous.api_key)
            if record is not None and record.revoked_at is None:
                return previous
            if record is not None:  # the saved key was revoked: issue a fresh one to the same account
                return LocalInfo(self.base_url, keys.create_key(record.account_id, "local").key)
        _, key = keys.create_account(LOCAL_ACCOUNT_NAME)
        return LocalInfo(self.base_url, key.key)

    @property
    def log_path(self) -> Path:
        return self.data_dir / "stack.log"

    def _route_logs(self) -> None:
        """The handlers' JSON log lines go to <data-dir>/stack.log, not the terminal (unless --verbose)."""
        if not self.verbose:
            self._log_file, self._previous_log_stream = route_logs(self.log_path)

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    def _recover_runs(self) -> None:
        """Runs the previous stack left active have lost their workflow: fail them, end their trainers."""
        from tt_core import wiring
        from tt_local.process_launcher import reap_orphans

        reap_orphans(self.jobs_dir)
        wiring.run_service().fail_interrupted(INTERRUPTED_RUN)

    def _start_http(self) -> None:
        from tt_local.api_workers import WorkerGateway
        from tt_local.dashboard_files import dashboard_response
        from tt_local.http_server import make_server, serve_in_thread

        # Spawned now: the workers inherit the environment provisioning set (endpoint, keys, names).
        self._workers = WorkerGateway(log_path=None if self.verbose else self.log_path)
        self._workers.warm()
        # The dashboard's page may connect to the storage endpoint too: presigned uploads go there.
        storage = (self._storage_endpoint,)
        self._http = make_server(
            self._workers,
            self.host,
            self.port,
            dashboard=lambda path: dashboard_response(path, connect_sources=storage),
        )
        self.port = self._http.server_address[1]
        serve_in_thread(self._http)

    def _snapshot_loop(self) -> None:
        while not self._stop_snapshots.wait(COMPACT_CHECK_INTERVAL_S):
            self._snapshot.compact_if_large()

    def stop(self) -> None:
        self._stop_snapshots.set()
        if self._snapshot_thread is not None:
            self._snapshot_thread.join()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._workers is not None:
            self._workers.close()
        if self._lambdas is not None:
            self._lambdas.uninstall()  # lets validations in flight finish before the last snapshot
        from tt_local.process_launcher import reap_orphans

        reap_orphans(self.jobs_dir)  # no trainer outlives the stack that started it
        if self._snapshot is not None:
            self._snapshot.save()
            self._snapshot.close()
        if self._moto is not None:
            self._moto.stop()
            from tt_local.signatures import sign_state_machine_calls

            sign_state_machine_calls(None)
        if self._log_file is not None:
            from tt_core.observability import logger

            handler = logger.registered_handler
            assert isinstance(handler, logging.StreamHandler)
            handler.setStream(self._previous_log_stream)
            self._log_file.close()
