"""`tt models export --merged`, run by the runtime interpreter: weights that plain transformers loads."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from tt_serve.runtime import SPEC_FILE, ModelRuntime, RuntimeLoadError

# Files of the artifact worth keeping next to the merged weights (the tokenizer comes from save_pretrained).
KEPT_FILES = (SPEC_FILE, "base_model.json", "training-metrics.json")


def export_merged(
    model_dir: Path,
    out_dir: Path,
    *,
    device: str = "cpu",
    base_model_dir: Path | None = None,
    trust_remote_code: bool = False,
) -> Path:
    """Merges the LoRA adapter into the base weights and writes model, tokenizer, chat template and a
    generation config holding only the stop, pad and bos tokens (decoding settings belong to the caller).

    The weights are written in the base model's own dtype (bf16 for the catalogue): on the CPU the runtime
    computes in fp32, which would double the files (a 3B model: 12.8 GB instead of 6.4). The merge itself
    runs in the runtime's dtype, so on the CPU the adapter is added in fp32 and rounded once."""
    runtime = ModelRuntime.load(
        model_dir, device=device, base_model_dir=base_model_dir, trust_remote_code=trust_remote_code
    )
    merged = runtime.model.merge_and_unload()
    if runtime.base_dtype is not None:
        merged = merged.to(runtime.base_dtype)
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out_dir), safe_serialization=True)
    runtime.tokenizer.save_pretrained(str(out_dir))
    for name in KEPT_FILES:
        if (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, out_dir / name)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tt_serve.export", description=__doc__)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--base-model-dir", type=Path)
    parser.add_argument("--trust-remote-code", action="store_true")
    args = parser.parse_args(argv)
    try:
        out = export_merged(
            args.model_dir,
            args.out,
            device=args.device,
            base_model_dir=args.base_model_dir,
            trust_remote_code=args.trust_remote_code,
        )
    except (RuntimeLoadError, OSError, ValueError) as error:
        print(f"✗ {error}", file=sys.stderr)
        return 1
    print(json.dumps({"path": str(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
