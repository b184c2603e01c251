"""The main job: the local stack turns the example spec into a fine-tuned, evaluated, registered model.

`make run` calls this. It drives the real product: the stack in this process (moto, the API and
authorizer handlers behind the HTTP gateway, the synthesized state machine, the trainer as a
subprocess) and the CLI over real HTTP, with its own config so the user's `tt` configuration is left
alone. The stack's own log lines go to <data dir>/stack.log.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "customer-support" / "tunedtensor.json"
DATASET = ROOT / "examples" / "customer-support" / "training.jsonl"


def main() -> int:
    from tt_cli.main import main as tt
    from tt_local.stack import LocalStack

    data_dir = ROOT / ".tt-local" / "demo"
    shutil.rmtree(data_dir, ignore_errors=True)  # every demo starts from an empty stack
    work = Path(tempfile.mkdtemp(prefix="tt-demo-"))
    os.environ["XDG_CONFIG_HOME"] = str(work / "config")
    spec_file = work / "tunedtensor.json"
    shutil.copy(EXAMPLE, spec_file)

    stack = LocalStack(data_dir, port=0)
    info = stack.start()
    print(f"▶ local stack ready at {info.base_url} (data and logs in {data_dir})", flush=True)
    cli = ["-u", info.base_url, "-k", info.api_key]
    try:
        steps = [
            ("lint the example spec", ["eval", "-f", str(spec_file)]),
            ("push it", [*cli, "push", "-f", str(spec_file)]),
            (
                "train, evaluate and register a model",
                [*cli, "runs", "start", "{spec}", "--watch", "--interval", "1000"],
            ),
            ("list the models", [*cli, "models", "list"]),
            ("upload a dataset", [*cli, "datasets", "upload", str(DATASET), "-n", "support-faq"]),
        ]
        for title, args in steps:
            args = [a.replace("{spec}", _spec_id(spec_file)) for a in args]
            print(f"\n▶ {title}: tt {' '.join(a for a in args if a not in cli)}", flush=True)
            if tt(args) != 0:
                return 1
        print(f"\n▶ pushed spec file (with its id): {spec_file}")
    finally:
        stack.stop()
    return 0


def _spec_id(spec_file: Path) -> str:
    import json

    return str(json.loads(spec_file.read_text()).get("id", ""))


if __name__ == "__main__":
    sys.exit(main())
