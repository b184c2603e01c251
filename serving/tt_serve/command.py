"""`tt models setup-runtime|serve|export` (PRODUCT.md §15): added to `tt models` by the `serve` extra."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from tt_cli.commands.tuned_models import (
    MODELS_PATH,
    checkpoint_download,
    epoch_option,
    fetch_artifact,
    model_download,
    resolve,
)
from tt_cli.context import Context
from tt_cli.errors import CliError

MODEL_RECORD = "model.json"  # the API's model object, saved beside a downloaded artifact
RUNTIME_HINT = "Run `tt models setup-runtime` (or pass --python with torch, transformers and peft installed)."


def register(commands: Any) -> None:
    """Adds setup-runtime, serve and export to the subparsers of `tt models`."""
    setup = commands.add_parser("setup-runtime", help="create the inference environment for `serve`")
    setup.add_argument("--python", help="interpreter for the environment (Python 3.10–3.13)")
    setup.add_argument("--cache-dir", type=Path, help="model cache (default: ~/.cache/tuned-tensor/models)")
    setup.add_argument("-f", "--force", action="store_true", help="recreate the environment")
    setup.add_argument("--print-command", action="store_true", help="print the commands, run nothing")
    setup.set_defaults(func=setup_runtime_command)

    serve = commands.add_parser("serve", help="serve a model behind an OpenAI-compatible API")
    _target_options(serve)
    spec = serve.add_mutually_exclusive_group()
    spec.add_argument("--spec", type=Path, help="tunedtensor.json for the default system prompt")
    spec.add_argument("--no-spec-prompt", action="store_true", help="no default system prompt")
    serve.add_argument("--host", default="127.0.0.1", help="(default: %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="(default: %(default)s)")
    serve.add_argument("--max-tokens", type=int, default=512, help="request default (default: %(default)s)")
    serve.add_argument(
        "--temperature", type=float, default=0.7, help="request default, 0 = greedy (default: %(default)s)"
    )
    serve.add_argument("--json-schema", type=Path, help="JSON Schema for completions without response_format")
    serve.add_argument(
        "--json-repair-attempts", type=int, default=1, help="retries for invalid JSON (default: 1)"
    )
    serve.add_argument("--managed", action="store_true", help="start the model on demand, stop it when idle")
    serve.add_argument("--idle-timeout", type=float, default=300, help="managed: seconds (default: 300)")
    serve.add_argument(
        "--restart-after-requests", type=int, default=100, help="managed: 0 = never (default: 100)"
    )
    serve.add_argument(
        "--gate-field", default="should_process", help="managed: JSON field logged per request"
    )
    serve.add_argument("--log-file", type=Path, help="managed: JSONL request log (default: stderr)")
    serve.add_argument("--print-command", action="store_true", help="print interpreter, arguments, settings")
    serve.set_defaults(func=serve_command)

    export = commands.add_parser("export", help="write merged full weights that plain transformers loads")
    _target_options(export)
    export.add_argument("--merged", type=Path, required=True, metavar="DIR", help="output directory")
    export.add_argument("-f", "--force", action="store_true", help="write into a non-empty DIR")
    export.set_defaults(func=export_command)


def _target_options(parser: Any) -> None:
    parser.add_argument(
        "target",
        metavar="TARGET",
        help="model id or prefix, a model directory or a .tar.gz (a run with --epoch)",
    )
    epoch_option(parser)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    parser.add_argument(
        "--python", help="interpreter to run the model (default: the managed runtime, else this)"
    )
    parser.add_argument("--cache-dir", type=Path, help="model cache (default: ~/.cache/tuned-tensor/models)")
    parser.add_argument(
        "--base-model-dir", type=Path, help="local base weights instead of the Hugging Face cache"
    )
    parser.add_argument("--force-download", action="store_true", help="fetch and extract again")
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="allow model code shipped with weights"
    )


# -- targets ------------------------------------------------------------------------------------
def _target(ctx: Context, cache: Path, *, fetch: bool) -> Any:
    """The model directory TARGET names (§15.2), downloading and extracting it when needed."""
    from tt_serve.archive import UnsafeArchiveError
    from tt_serve.targets import (
        ModelTarget,
        archive_stem,
        archive_target_dir,
        extracted_model,
        find_model_dir,
        is_archive,
    )

    value: str = ctx.args.target
    path = Path(value).expanduser()
    force = ctx.args.force_download
    try:
        if path.is_dir():
            found = find_model_dir(path)
            if found is None:
                raise CliError.local(f"{path} holds no adapter_config.json (nor does {path / 'model'})")
            return ModelTarget(found, found.parent.name if found.name == "model" else found.name, "directory")
        if is_archive(path):
            target = archive_target_dir(path, cache)
            extracted = extracted_model(path, target, force=force) if fetch else target
            return ModelTarget(extracted, archive_stem(path), "archive", archive=path)
        if path.exists() or os.sep in value or value.endswith((".tar.gz", ".tgz")):
            raise CliError.local(f"{value} is neither a model directory nor a .tar.gz/.tgz archive")
        if ctx.args.epoch is not None:
            return _checkpoint_target(ctx, value, ctx.args.epoch, cache, fetch=fetch, force=force)
        return _model_target(ctx, value, cache, fetch=fetch, force=force)
    except (UnsafeArchiveError, FileNotFoundError) as error:
        raise CliError.local(str(error)) from None


def _model_target(ctx: Context, value: str, cache: Path, *, fetch: bool, force: bool) -> Any:
    """A model id or prefix: `<cache>/<id>/model`, downloaded and extracted unless it already is there.

    A full id whose model is in the cache needs no API call, so a downloaded model serves offline."""
    from tt_core.models.common import normalize_id
    from tt_serve.targets import ModelTarget, extracted_model, find_model_dir

    full = normalize_id(value)
    if full is not None and not force:
        cached = find_model_dir(cache / full / "model")
        record = _read_json(cache / full / MODEL_RECORD)
        if cached is not None and record is not None:
            return ModelTarget(cached, str(record.get("name") or full), "model", full)
    model_id = resolve(ctx, value)
    model = ctx.client.get(f"{MODELS_PATH}/{model_id}").data
    root = cache / model_id
    cached = find_model_dir(root / "model")
    if fetch and (cached is None or force):
        fetch_artifact(ctx, model_download(ctx, model_id)["url"], root / "model.tar.gz")
        cached = extracted_model(root / "model.tar.gz", root / "model", force=True)
        (root / MODEL_RECORD).write_text(json.dumps(model, indent=2) + "\n")
    return ModelTarget(cached or root / "model", str(model.get("name") or model_id), "model", model_id)


def _checkpoint_target(ctx: Context, value: str, epoch: int, cache: Path, *, fetch: bool, force: bool) -> Any:
    """A run's kept epoch checkpoint (§9.10): `<cache>/<run id>/epoch-<n>/model`, downloaded once."""
    from tt_core.models.common import normalize_id
    from tt_serve.targets import ModelTarget, extracted_model, find_model_dir

    full = normalize_id(value)
    if full is not None and not force:
        cached = find_model_dir(cache / full / f"epoch-{epoch}" / "model")
        if cached is not None:
            return ModelTarget(cached, f"run-{full[:8]}-epoch-{epoch}", "checkpoint")
    if not fetch:  # --print-command: say where it would be, download nothing
        run_id = full or value
        return ModelTarget(
            cache / run_id / f"epoch-{epoch}" / "model", f"run-{run_id[:8]}-epoch-{epoch}", "checkpoint"
        )
    run_id, download = checkpoint_download(ctx, value, epoch)
    root = cache / run_id / f"epoch-{epoch}"
    fetch_artifact(ctx, download["url"], root / str(download["filename"]))
    model_dir = extracted_model(root / str(download["filename"]), root / "model", force=True)
    return ModelTarget(model_dir, f"run-{run_id[:8]}-epoch-{epoch}", "checkpoint")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _runtime_python(ctx: Context, cache: Path) -> str:
    from tt_serve.targets import is_current_interpreter, pick_python

    python = pick_python(ctx.args.python, cache)
    if is_current_interpreter(python):
        import importlib.util

        missing = [n for n in ("torch", "transformers", "peft") if importlib.util.find_spec(n) is None]
        if missing and not getattr(ctx.args, "print_command", False):
            raise CliError.local(f"This Python lacks {', '.join(missing)}", hint=RUNTIME_HINT)
    elif not Path(python).exists() and not getattr(ctx.args, "print_command", False):
        raise CliError.local(f"--python {python}: no such interpreter", hint=RUNTIME_HINT)
    return python


def _load_schema(path: Path | None) -> None:
    if path is None:
        return
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CliError.local(f"--json-schema {path}: not a readable JSON file ({error})") from None
    if not isinstance(schema, dict):
        raise CliError.local(f"--json-schema {path}: a JSON Schema must be an object")


def _server_args(ctx: Context, target: Any, spec: Path | None) -> list[str]:
    args = ctx.args
    values = [
        "--model-dir", str(target.model_dir.absolute()), "--name", target.name,
        "--device", args.device, "--max-tokens", str(args.max_tokens), "--temperature", str(args.temperature),
        "--json-repair-attempts", str(args.json_repair_attempts),
    ]  # fmt: skip
    if spec is not None:
        values += ["--spec", str(spec)]
    if args.json_schema is not None:
        values += ["--json-schema", str(args.json_schema.absolute())]
    if args.base_model_dir is not None:
        values += ["--base-model-dir", str(args.base_model_dir.absolute())]
    if args.trust_remote_code:
        values.append("--trust-remote-code")
    return values


def _check_serve_flags(ctx: Context) -> None:
    args = ctx.args
    problems = [
        (args.max_tokens < 1, "--max-tokens must be ≥ 1"),
        (not 0 <= args.temperature <= 2, "--temperature must be between 0 and 2"),
        (args.json_repair_attempts < 0, "--json-repair-attempts must be ≥ 0"),
        (not 0 <= args.port <= 65535, "--port must be 0–65535"),
        (args.idle_timeout <= 0, "--idle-timeout must be > 0"),
        (args.restart_after_requests < 0, "--restart-after-requests must be ≥ 0"),
    ]
    for failed, message in problems:
        if failed:
            raise CliError.local(message)
    _load_schema(args.json_schema)


def _print_command(ctx: Context, python: str, command: list[str], settings: dict[str, Any]) -> int:
    from tt_serve.targets import runtime_environment

    pythonpath = runtime_environment(python).get("PYTHONPATH")
    if ctx.json_mode:
        ctx.out.json({"python": python, "args": command[1:], "pythonpath": pythonpath, "settings": settings})
        return 0
    ctx.out.line(f"Interpreter: {python}")
    if pythonpath:
        ctx.out.line(f"PYTHONPATH:  {pythonpath}")
    ctx.out.line(f"Command:     {shlex.join(command)}")
    ctx.out.line("Settings:")
    for name, value in settings.items():
        ctx.out.line(f"  {name}: {'-' if value is None else value}")
    return 0


def _run_module(python: str, module: str, args: list[str]) -> int:
    """Runs a serving module in this process when `python` is this interpreter, else as a child."""
    from tt_serve.targets import is_current_interpreter, runtime_environment

    if is_current_interpreter(python):
        import importlib

        code: int = importlib.import_module(module).main(args)
        return code
    process = subprocess.Popen([python, "-m", module, *args], env=runtime_environment(python))
    try:
        return process.wait()
    except KeyboardInterrupt:  # the child got the terminal's SIGINT too: let it finish cleanly
        return process.wait()


def serve_command(ctx: Context) -> int:
    from tt_serve.managed import ManagedConfig, environment, run_managed
    from tt_serve.targets import cache_root, resolve_spec

    args = ctx.args
    _check_serve_flags(ctx)
    cache = cache_root(args.cache_dir)
    target = _target(ctx, cache, fetch=not args.print_command)
    try:
        spec = resolve_spec(args.spec, args.no_spec_prompt, target.model_dir)
    except FileNotFoundError as error:
        raise CliError.local(str(error)) from None
    python = _runtime_python(ctx, cache)
    server_args = _server_args(ctx, target, spec)
    command = [python, "-m", "tt_serve.server", *server_args]
    if args.print_command:
        settings = {
            "target": args.target, "model_dir": str(target.model_dir.absolute()), "model_name": target.name,
            "spec": str(spec) if spec else None, "host": args.host, "port": args.port, "device": args.device,
            "max_tokens": args.max_tokens, "temperature": args.temperature,
            "json_schema": str(args.json_schema) if args.json_schema else None,
            "json_repair_attempts": args.json_repair_attempts, "managed": args.managed,
            "idle_timeout": args.idle_timeout, "restart_after_requests": args.restart_after_requests,
            "gate_field": args.gate_field, "log_file": str(args.log_file) if args.log_file else None,
            "cache_dir": str(cache),
        }  # fmt: skip
        if not args.managed:
            command += ["--host", args.host, "--port", str(args.port)]
        return _print_command(ctx, python, command, settings)
    if args.managed:
        config = ManagedConfig(
            command=command,
            env=environment(python),
            model_name=target.name,
            model_path=str(target.model_dir.absolute()),
            idle_timeout=args.idle_timeout,
            restart_after_requests=args.restart_after_requests,
            gate_field=args.gate_field,
        )
        return run_managed(config, args.host, args.port, log_file=args.log_file)
    return _run_module(
        python, "tt_serve.server", [*server_args, "--host", args.host, "--port", str(args.port)]
    )


def setup_runtime_command(ctx: Context) -> int:
    from tt_serve import setup_runtime
    from tt_serve.targets import cache_root, runtime_python

    args = ctx.args
    cache = cache_root(args.cache_dir)
    if args.python is None and not args.force and setup_runtime.current_imports_ok():
        report = {"python": sys.executable, "created": False, "reused": True}
        if ctx.json_mode:
            ctx.out.json(report)
        else:
            ctx.out.success(
                f"This Python ({sys.executable}) already has the runtime packages; nothing created."
            )
        return 0
    existing = runtime_python(cache)
    if not args.force and existing.exists() and setup_runtime.imports_ok(str(existing)):
        report = {"python": str(existing), "created": False, "reused": True}
        if ctx.json_mode:
            ctx.out.json(report)
        else:
            ctx.out.success(f"The runtime at {existing.parent.parent} is ready; -f recreates it.")
        return 0
    try:
        python = setup_runtime.find_python(args.python)
    except setup_runtime.SetupError as error:
        raise CliError.local(str(error)) from None
    plan = setup_runtime.plan(python, cache)
    if args.print_command:
        if ctx.json_mode:
            ctx.out.json({"venv": str(plan.venv), "commands": plan.commands})
        else:
            for command in plan.commands:
                ctx.out.line(shlex.join(command))
        return 0
    try:
        # A half-made environment from an earlier failure is replaced, not reused.
        setup_runtime.execute(plan, force=args.force or plan.venv.exists())
    except setup_runtime.SetupError as error:
        raise CliError.local(str(error)) from None
    runtime = str(runtime_python(cache))
    if ctx.json_mode:
        ctx.out.json({"python": runtime, "created": True, "reused": False})
    else:
        ctx.out.success(f"Runtime ready: {runtime}; `tt models serve` uses it.")
    return 0


def export_command(ctx: Context) -> int:
    from tt_serve.targets import cache_root

    args = ctx.args
    out: Path = args.merged
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
        raise CliError.local(f"{out} exists and is not empty", hint="Pass -f/--force to write into it.")
    cache = cache_root(args.cache_dir)
    target = _target(ctx, cache, fetch=True)
    python = _runtime_python(ctx, cache)
    module_args = ["--model-dir", str(target.model_dir.absolute()), "--out", str(out.absolute())]
    module_args += ["--device", "cpu" if args.device == "auto" else args.device]
    if args.base_model_dir is not None:
        module_args += ["--base-model-dir", str(args.base_model_dir.absolute())]
    if args.trust_remote_code:
        module_args.append("--trust-remote-code")
    code = _run_module(python, "tt_serve.export", module_args)
    if code != 0:
        raise CliError.local(f"The export of {target.name} failed (exit {code})")
    if ctx.json_mode:
        ctx.out.json({"data": {"path": str(out.absolute()), "model": target.name}})
    else:
        ctx.out.success(f"Merged {target.name} into {out}: load it with AutoModelForCausalLM.from_pretrained")
    return 0
