"""`python -m tests.serving.fake_model_server`: the model server's HTTP side on a FakeRuntime."""

from __future__ import annotations

import argparse
import sys
import time

from tests.serving.fakes import FakeRuntime, echo_json
from tt_serve.completions import ChatEngine
from tt_serve.server import ServedModel, make_server, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--startup-delay", type=float, default=0.0)
    args, _ = parser.parse_known_args(argv)
    time.sleep(args.startup_delay)
    engine = ChatEngine(FakeRuntime(echo_json), temperature=0)
    server = make_server(engine, ServedModel("fake", "cpu", 0), args.host, args.port)
    server.quiet = True
    serve(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
