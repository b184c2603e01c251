"""The main job: start the local stack, push the example spec and upload its dataset with `tt`, stop.

`make run` calls this. It drives the real product: the stack in this process (moto, the API and
authorizer handlers behind the HTTP gateway) and the CLI over real HTTP, with its own config so the
user's `tt` configuration is left alone.
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
    from tt_cli.local.stack import LocalStack
    from tt_cli.main import main as tt

    data_dir = ROOT / ".tt-local" / "demo"
    shutil.rmtree(data_dir, ignore_errors=True)  # every demo starts from an empty stack
    work = Path(tempfile.mkdtemp(prefix="tt-demo-"))
    os.environ["XDG_CONFIG_HOME"] = str(work / "config")
    spec_file = work / "tunedtensor.json"
    shutil.copy(EXAMPLE, spec_file)

    stack = LocalStack(data_dir, port=0)
    info = stack.start()
    print(f"▶ local stack ready at {info.base_url} (data in {data_dir})", flush=True)
    cli = ["-u", info.base_url, "-k", info.api_key]
    try:
        steps = [
            ("lint the example spec", ["eval", "-f", str(spec_file)]),
            ("push it", [*cli, "push", "-f", str(spec_file)]),
            ("list specs", [*cli, "specs", "list"]),
            ("upload a dataset", [*cli, "datasets", "upload", str(DATASET), "-n", "support-faq"]),
            ("list datasets", [*cli, "datasets", "list"]),
        ]
        for title, args in steps:
            print(f"\n▶ tt {title}: tt {' '.join(a for a in args if a not in cli)}", flush=True)
            if tt(args) != 0:
                return 1
        print(f"\n▶ pushed spec file (with its id): {spec_file}")
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
