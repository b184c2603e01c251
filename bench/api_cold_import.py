"""Cold import of the API handler vs Powertools + boto3 alone, from a layer with and without bytecode.

Each case runs in a fresh interpreter over a copy of what Lambda mounts: the third-party packages the imports
load, tt_core and functions/, on `-S` (no site-packages) with PYTHONDONTWRITEBYTECODE=1, as on Lambda's
read-only /opt, with the functions' environment (FUNCTION_RUNTIME_ENVIRONMENT), timed inside the interpreter
from its first import to its last (start-up is not the imports', and Lambda never tears a process down
during a request). Two modes: `bytecode` (unchecked-hash .pyc, as the bundling writes them, sources dated 1980
like CDK's asset zip) and `no bytecode` (the same copy without __pycache__: every import compiles, which is
what the layers did before). Runs of every case and mode are interleaved, so a busy machine slows all alike.
Prints a table and writes bench/results/api_cold_import.json. Target: handler ≤ 1.2 × baseline (bytecode).
The reference (Powertools with pydantic validation, none of our code) is the floor of any handler that
validates requests with pydantic, as ARCHITECTURE.md asks: its ratio to the baseline is printed too.
`--against DIR` also times the handler of another checkout (e.g. `git worktree add /tmp/old <commit>`).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from tt_core.schema import FUNCTION_RUNTIME_ENVIRONMENT

ROOT = Path(__file__).resolve().parents[1]
RUNS = 10
TARGET_RATIO = 1.2
BASELINE = "baseline: powertools + boto3"
HANDLER = "functions.api.handler (+ boto3)"
REFERENCE = "reference: + pydantic validation"
OTHER = "the same, other checkout"
CASES = {
    BASELINE: "import boto3\nfrom aws_lambda_powertools.event_handler import APIGatewayRestResolver",
    # Not the target's baseline, printed to show where the handler's time goes: Powertools with request
    # validation switched on (ARCHITECTURE.md), which imports pydantic and the OpenAPI models.
    REFERENCE: (
        "import boto3, pydantic\n"
        "from aws_lambda_powertools.event_handler import APIGatewayRestResolver\n"
        "from aws_lambda_powertools.event_handler.openapi.params import Query\n"
        "APIGatewayRestResolver(enable_validation=True)"
    ),
    # The handler module itself loads boto3 only when its first request builds a client; importing
    # boto3 here too keeps the comparison with the baseline (which has it) honest.
    HANDLER: "import functions.api.handler, boto3",
}
MODES = ("bytecode", "no bytecode")
# 1980-01-01, the date CDK gives every file of an asset zip.
ZIP_EPOCH = 315532800
SITE_PACKAGES = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}


def _loaded_top_levels(checkout: Path) -> set[str]:
    """Top-level names under site-packages that the cases import (what the layer must hold for them)."""
    probe = (
        "import json, sys\n" + "\n".join(CASES.values()) + "\n"
        "print(json.dumps(sorted({m.__file__ for m in list(sys.modules.values()) "
        "if getattr(m, '__file__', None)})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        cwd=checkout,
        env=_env(checkout),
    ).stdout
    names = set()
    for file in json.loads(out):
        path = Path(file).resolve()
        for site in SITE_PACKAGES:
            if path.is_relative_to(site):
                name = path.relative_to(site).parts[0]
                if not name.startswith("__editable__"):  # this project's own code is copied below
                    names.add(name)
    return names


def _env(checkout: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    return {**env, "PYTHONPATH": os.pathsep.join([str(checkout / "layers/core/python"), str(checkout)])}


def build_layer(checkout: Path, target: Path, *, compiled: bool) -> Path:
    """What Lambda mounts for the API function, copied into target (without any source's bytecode)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    target.mkdir(parents=True)
    distributions = importlib.metadata.packages_distributions()
    for name in sorted(_loaded_top_levels(checkout)):
        for site in SITE_PACKAGES:
            source = site / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=ignore, dirs_exist_ok=True)
            elif source.is_file():
                shutil.copy2(source, target / name)
        # Packages may read their own metadata at import: keep their dist-info too.
        for dist_name in distributions.get(name.removesuffix(".py"), []):
            files = importlib.metadata.distribution(dist_name).files or []
            for info in {f.parts[0] for f in files if f.parts[0].endswith(".dist-info")}:
                for site in SITE_PACKAGES:
                    if (site / info).is_dir():
                        shutil.copytree(site / info, target / info, dirs_exist_ok=True)
    shutil.copytree(checkout / "layers/core/python/tt_core", target / "tt_core", ignore=ignore)
    shutil.copytree(checkout / "functions", target / "functions", ignore=ignore)
    if compiled:  # as infra/bytecode.py compiles at bundling, with this interpreter (the one timed)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "compileall",
                "-q",
                "-j",
                "0",
                "--invalidation-mode",
                "unchecked-hash",
                str(target),
            ],
            check=True,
        )
    for path in target.rglob("*"):
        os.utime(path, (ZIP_EPOCH, ZIP_EPOCH), follow_symlinks=False)
    return target


def cold_import_ms(code: str, layer: Path) -> float:
    """Time a fresh interpreter spends importing `code` from `layer` only (no site-packages), measured inside
    it from before the first import to after the last: what Lambda's init phase spends on them (interpreter
    start-up is not theirs, and an execution environment is never torn down during a request)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
        **FUNCTION_RUNTIME_ENVIRONMENT,
        "PYTHONPATH": str(layer),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    timed = f"import time\n_t = time.perf_counter()\n{code}\nprint((time.perf_counter() - _t) * 1000)"
    out = subprocess.run(
        [sys.executable, "-S", "-c", timed], check=True, cwd=layer, env=env, capture_output=True, text=True
    )
    return float(out.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout whose API handler is timed too")
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tt-cold-import-") as scratch:
        layers = {
            mode: build_layer(ROOT, Path(scratch) / mode.replace(" ", "-"), compiled=mode == "bytecode")
            for mode in MODES
        }
        cases = {(mode, name): (code, layers[mode]) for mode in MODES for name, code in CASES.items()}
        if args.against:
            other = build_layer(args.against.resolve(), Path(scratch) / "other", compiled=True)
            cases[("bytecode", OTHER)] = (CASES[HANDLER], other)
        for code, layer in cases.values():  # warm the file cache once
            cold_import_ms(code, layer)
        samples: dict[tuple[str, str], list[float]] = {key: [] for key in cases}
        for _ in range(args.runs):
            for key, (code, layer) in cases.items():
                samples[key].append(cold_import_ms(code, layer))
    median = {key: statistics.median(values) for key, values in samples.items()}
    spread = {key: max(values) - min(values) for key, values in samples.items()}

    def ratios(numerator: str, denominator: str) -> dict[str, float]:
        return {mode: median[(mode, numerator)] / median[(mode, denominator)] for mode in MODES}

    ratio, floor = ratios(HANDLER, BASELINE), ratios(REFERENCE, BASELINE)
    to_reference = ratios(HANDLER, REFERENCE)
    print(f"{'mode':<12} {'module':<34} {'median import (ms)':>20} {'spread (ms)':>12}")
    for (mode, name), value in median.items():
        print(f"{mode:<12} {name:<34} {value:>20.1f} {spread[(mode, name)]:>12.1f}")
    for label, values in (
        (f"handler / baseline (target ≤ {TARGET_RATIO})", ratio),
        ("reference / baseline (the floor)", floor),
        ("handler / validation reference", to_reference),
    ):
        for mode in MODES:
            print(f"{mode:<12} {label:<34} {values[mode]:>20.2f}")
    gain = median[("no bytecode", HANDLER)] / median[("bytecode", HANDLER)]
    print(f"{'':<12} {'handler: no bytecode / bytecode':<34} {gain:>20.2f}")
    if args.against:
        against = median[("bytecode", HANDLER)] / median[("bytecode", OTHER)]
        print(f"{'bytecode':<12} {'ratio to the other checkout':<34} {against:>20.2f}")
    out = ROOT / "bench" / "results" / "api_cold_import.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "runs": args.runs,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "median_ms": {mode: {n: v for (m, n), v in median.items() if m == mode} for mode in MODES},
        "spread_ms": {mode: {n: v for (m, n), v in spread.items() if m == mode} for mode in MODES},
        "ratio_to_baseline": ratio,
        "reference_to_baseline": floor,
        "ratio_to_validation_reference": to_reference,
        "target_ratio": TARGET_RATIO,
        "handler_no_bytecode_over_bytecode": gain,
    }
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
