"""`tt admin stage-base-model`: a base model's weights copied to where the training jobs read them (§14.6).

The copy is checked before anything is sent (config.json, tokenizer, safetensors headers that match their
files), sent only where it differs from what is already there (size and SHA-256: re-runs are idempotent),
verified after (sizes, safetensors headers read back) and completed by the manifest, base_model.json, written
last. The run-start preflight and the trainer use a staged copy only when its manifest is there, and a re-run
that changes anything removes the manifest first: a partial copy is never used by a run.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import re
import struct
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tt_cli.errors import CliError
from tt_core.schema import (
    BASE_MODEL_MANIFEST,
    BASE_MODELS_PREFIX,
    DEFAULT_TRAINING_PROFILES,
    LOCAL_BASE_MODELS_DIR,
)

# The files a training job needs: config, weights, tokenizer and chat template, generation config, and the
# code of models that ship their own. Top level only: the originals some repositories carry beside them
# (original/*.pth, gguf, .bin duplicates) are not read and would only lengthen every job's start.
STAGED_PATTERNS = ("*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken", "*.jinja", "*.py")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")
# boto3's managed transfer sends files above the threshold in parallel parts of the chunk's size.
MULTIPART_THRESHOLD = 64 * 1024 * 1024
MULTIPART_CHUNK = 64 * 1024 * 1024
TRANSFER_THREADS = 8
HASH_CHUNK = 8 * 1024 * 1024
# A safetensors header is JSON of a few hundred kB at most; anything larger is not a header.
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
# What a SageMaker File-mode channel copies onto the instance per second (a conservative figure): the part
# of a job's start-up that grows with the weights.
CHANNEL_BYTES_PER_SECOND = 100 * 1000 * 1000
_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class SourceFile:
    name: str
    path: Path
    size: int
    sha256: str
    # The safetensors prefix (8-byte length + JSON header), compared with the copy's; None for other files.
    header: bytes | None


@dataclass(frozen=True)
class StageResult:
    destination: str
    manifest: dict[str, Any]
    copied: list[str]
    removed: list[str]
    copied_bytes: int
    verified_headers: int


# -- the source ----------------------------------------------------------------------------------------------


def safetensors_header(path: Path, size: int) -> bytes:
    """The file's 8-byte length and JSON header, after checking that they describe exactly this file."""
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError("shorter than a safetensors header")
        (length,) = struct.unpack("<Q", prefix)
        if not 2 <= length <= min(MAX_SAFETENSORS_HEADER, size - 8):
            raise ValueError(f"header length {length} does not fit a {size}-byte file")
        raw = handle.read(length)
    try:
        header = json.loads(raw)
    except ValueError:
        raise ValueError("its header is not JSON") from None
    if not isinstance(header, dict):
        raise ValueError("its header is not a JSON object")
    end = 0
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        offsets = tensor.get("data_offsets") if isinstance(tensor, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise ValueError(f"tensor {name!r} has no data_offsets")
        end = max(end, offsets[1])
    if 8 + length + end != size:
        raise ValueError(f"its tensors end at byte {8 + length + end}, the file has {size} (truncated?)")
    return prefix + raw


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def scan_source(directory: Path) -> list[SourceFile]:
    """The files to stage, refusing a directory that is not a complete Hugging Face model."""
    if not directory.is_dir():
        raise CliError.local(f"--from {directory}: not a directory")
    names = sorted(
        entry.name
        for entry in directory.iterdir()
        if entry.is_file()  # follows links: a Hub cache snapshot links its files to blobs
        and not entry.name.startswith(".")
        and entry.name != BASE_MODEL_MANIFEST  # written by the staging itself
        and any(fnmatch.fnmatch(entry.name, pattern) for pattern in STAGED_PATTERNS)
    )
    expected = "a Hugging Face model directory holds config.json, *.safetensors weights and tokenizer files"
    if "config.json" not in names:
        raise CliError.local(f"{directory} has no config.json: {expected}.")
    if not any(name.endswith(".safetensors") for name in names):
        raise CliError.local(
            f"{directory} has no *.safetensors weights: {expected} (.bin and .pth weights are not staged)."
        )
    if not any(name in TOKENIZER_FILES for name in names):
        raise CliError.local(f"{directory} has no tokenizer ({', '.join(TOKENIZER_FILES)}): {expected}.")
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CliError.local(f"{directory / 'config.json'} cannot be read as JSON ({error}).") from None
    if not isinstance(config, dict):
        raise CliError.local(f"{directory / 'config.json'} is not a JSON object.")
    files = []
    for name in names:
        path = directory / name
        size = path.stat().st_size
        header = None
        if name.endswith(".safetensors"):
            try:
                header = safetensors_header(path, size)
            except (OSError, ValueError) as error:
                raise CliError.local(f"{path} is not a valid safetensors file: {error}.") from None
        files.append(SourceFile(name, path, size, _sha256(path), header))
    return files


def source_revision(directory: Path, given: str | None) -> str | None:
    """The revision of the weights: the Hub's commit when downloaded, a cache snapshot's name, or what a
    base_model.json in the directory records; None when nothing says."""
    if given:
        return given
    with contextlib.suppress(OSError, ValueError):
        recorded = json.loads((directory / BASE_MODEL_MANIFEST).read_text(encoding="utf-8"))
        if isinstance(recorded, dict) and isinstance(recorded.get("revision"), str):
            return str(recorded["revision"])
    resolved = directory.resolve()
    if _COMMIT.fullmatch(resolved.name) and resolved.parent.name == "snapshots":
        return resolved.name
    return None


def download_from_hub(model_id: str, *, stderr: Any = None) -> tuple[Path, str]:
    """The model's files from the Hugging Face Hub (the operator's token; gated models need accepted terms)
    into the Hub cache; the snapshot directory and its commit."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise CliError.local(
            "Without --from DIR the weights are downloaded from the Hugging Face Hub, which needs the "
            "huggingface_hub package (pip install huggingface_hub); or pass --from DIR with a local copy."
        ) from None
    print(f"Downloading {model_id} from the Hugging Face Hub…", file=stderr or sys.stderr)
    try:
        path = Path(snapshot_download(model_id, allow_patterns=list(STAGED_PATTERNS)))
    except Exception as error:  # the Hub client's errors (gated, not found, offline, HTTP) vary by version
        raise CliError.local(
            f"Cannot download {model_id} from the Hugging Face Hub ({type(error).__name__}: {error}). "
            "A gated model needs its terms accepted on huggingface.co by the account whose token this "
            "machine uses "
            "(`hf auth login` or HF_TOKEN); or pass --from DIR with a local copy."
        ) from None
    return path, path.name


# -- the destination -----------------------------------------------------------------------------------------

Progress = Callable[[int], None]


class Destination(Protocol):
    """Where the copy goes: the deployment's bucket, or the local stack's data dir."""

    def describe(self) -> str: ...

    def existing(self) -> dict[str, int]:
        """Every file there (names relative to the copy's root), with its size; the manifest excluded."""
        ...

    def digest(self, name: str) -> str | None:
        """The SHA-256 of an existing file, or None when it cannot be told."""
        ...

    def put(self, file: SourceFile, progress: Progress) -> None: ...

    def delete(self, name: str) -> None: ...

    def size(self, name: str) -> int | None: ...

    def head(self, name: str, length: int) -> bytes: ...

    def read_manifest(self) -> dict[str, Any] | None: ...

    def write_manifest(self, body: bytes) -> None: ...

    def remove_manifest(self) -> None: ...


class S3Destination:
    """base-models/<id>/ of the stack's bucket, through boto3's managed transfer (multipart, parallel)."""

    def __init__(self, client: Any, bucket: str, model_id: str, transfer_config: Any = None) -> None:
        from boto3.s3.transfer import TransferConfig

        self._client = client
        self._bucket = bucket
        self._prefix = f"{BASE_MODELS_PREFIX}{model_id}/"
        self._config = transfer_config or TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_CHUNK,
            max_concurrency=TRANSFER_THREADS,
        )

    def describe(self) -> str:
        return f"s3://{self._bucket}/{self._prefix}"

    def existing(self) -> dict[str, int]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=self._prefix
        )
        found = {
            entry["Key"][len(self._prefix) :]: int(entry["Size"])
            for page in pages
            for entry in page.get("Contents", [])
        }
        found.pop(BASE_MODEL_MANIFEST, None)
        return found

    def _head(self, name: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self._client.head_object(Bucket=self._bucket, Key=self._prefix + name)
        except self._client.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return head

    def digest(self, name: str) -> str | None:
        head = self._head(name)
        return None if head is None else (head.get("Metadata") or {}).get("sha256")

    def put(self, file: SourceFile, progress: Progress) -> None:
        content_type = "application/json" if file.name.endswith(".json") else "application/octet-stream"
        self._client.upload_file(
            str(file.path),
            self._bucket,
            self._prefix + file.name,
            ExtraArgs={"ContentType": content_type, "Metadata": {"sha256": file.sha256}},
            Config=self._config,
            Callback=progress,
        )

    def delete(self, name: str) -> None:
        self._client.delete_object(Bucket=self._bucket, Key=self._prefix + name)

    def size(self, name: str) -> int | None:
        head = self._head(name)
        return None if head is None else int(head["ContentLength"])

    def head(self, name: str, length: int) -> bytes:
        response = self._client.get_object(
            Bucket=self._bucket, Key=self._prefix + name, Range=f"bytes=0-{length - 1}"
        )
        data: bytes = response["Body"].read()
        return data

    def read_manifest(self) -> dict[str, Any] | None:
        if self._head(BASE_MODEL_MANIFEST) is None:
            return None
        body = self._client.get_object(Bucket=self._bucket, Key=self._prefix + BASE_MODEL_MANIFEST)["Body"]
        with contextlib.suppress(ValueError):
            manifest = json.loads(body.read())
            return manifest if isinstance(manifest, dict) else None
        return None

    def write_manifest(self, body: bytes) -> None:
        self._client.put_object(
            Bucket=self._bucket,
            Key=self._prefix + BASE_MODEL_MANIFEST,
            Body=body,
            ContentType="application/json",
        )

    def remove_manifest(self) -> None:
        self.delete(BASE_MODEL_MANIFEST)


class DirectoryDestination:
    """<data-dir>/base-models/<id>/ of the local stack, which its trainer reads in place."""

    def __init__(self, data_dir: Path, model_id: str) -> None:
        self._root = data_dir.joinpath(LOCAL_BASE_MODELS_DIR, *model_id.split("/"))

    def describe(self) -> str:
        return f"{self._root}{os.sep}"

    def existing(self) -> dict[str, int]:
        if not self._root.is_dir():
            return {}
        return {
            path.relative_to(self._root).as_posix(): path.stat().st_size
            for path in sorted(self._root.rglob("*"))
            if path.is_file() and path.name != BASE_MODEL_MANIFEST
        }

    def digest(self, name: str) -> str | None:
        path = self._root / name
        return _sha256(path) if path.is_file() else None

    def put(self, file: SourceFile, progress: Progress) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        target = self._root / file.name
        partial = target.with_name(f".{file.name}.{uuid.uuid4().hex}.tmp")
        try:
            with file.path.open("rb") as source, partial.open("wb") as out:
                while chunk := source.read(HASH_CHUNK):
                    out.write(chunk)
                    progress(len(chunk))
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    def delete(self, name: str) -> None:
        (self._root / name).unlink(missing_ok=True)

    def size(self, name: str) -> int | None:
        path = self._root / name
        return path.stat().st_size if path.is_file() else None

    def head(self, name: str, length: int) -> bytes:
        with (self._root / name).open("rb") as handle:
            return handle.read(length)

    def read_manifest(self) -> dict[str, Any] | None:
        with contextlib.suppress(OSError, ValueError):
            manifest = json.loads((self._root / BASE_MODEL_MANIFEST).read_text(encoding="utf-8"))
            return manifest if isinstance(manifest, dict) else None
        return None

    def write_manifest(self, body: bytes) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        partial = self._root / f".{BASE_MODEL_MANIFEST}.tmp"
        partial.write_bytes(body)
        os.replace(partial, self._root / BASE_MODEL_MANIFEST)

    def remove_manifest(self) -> None:
        (self._root / BASE_MODEL_MANIFEST).unlink(missing_ok=True)


# -- the copy ------------------------------------------------------------------------------------------------


def build_manifest(model_id: str, revision: str | None, files: Sequence[SourceFile]) -> dict[str, Any]:
    """base_model.json: the identity the trainer records in the artifact, and what the copy holds."""
    return {
        "id": model_id,
        "revision": revision,
        "files": {file.name: {"size": file.size, "sha256": file.sha256} for file in files},
        "total_bytes": sum(file.size for file in files),
    }


class _Reporter:
    """Progress on stderr: a redrawn bar per file on a terminal, else a line per file."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        print(text, file=self._stream, flush=True)

    @contextlib.contextmanager
    def file(self, file: SourceFile) -> Iterator[Progress]:
        from tt_cli.commands.datasets import ByteProgress, human_bytes

        if not self._tty:
            self.line(f"Copying {file.name} ({human_bytes(file.size)})")
            yield lambda _n: None
            return
        bar = ByteProgress(self._stream, file.size, f"Copying {file.name}")

        def advance(n: int) -> None:
            with self._lock:  # the managed transfer reports from its worker threads
                bar.advance(n)

        yield advance
        bar.close()


def _verify(destination: Destination, files: Sequence[SourceFile]) -> int:
    """Every file has its size; every safetensors file reads back the header it was sent with."""
    headers = 0
    for file in files:
        size = destination.size(file.name)
        if size != file.size:
            raise CliError.local(
                f"The copy of {file.name} at {destination.describe()} has {size} bytes, not {file.size}: "
                "run the command again."
            )
        if file.header is not None:
            if destination.head(file.name, len(file.header)) != file.header:
                raise CliError.local(
                    f"The copy of {file.name} at {destination.describe()} does not read back the safetensors "
                    "header it was sent with: run the command again."
                )
            headers += 1
    return headers


def stage(
    model_id: str,
    revision: str | None,
    files: Sequence[SourceFile],
    destination: Destination,
    *,
    stderr: Any = None,
) -> StageResult:
    """Copy what differs, drop what no longer belongs, verify, then write the manifest (idempotent)."""
    reporter = _Reporter(stderr or sys.stderr)
    manifest = build_manifest(model_id, revision, files)
    existing = destination.existing()
    names = {file.name for file in files}
    to_copy = [
        file
        for file in files
        if existing.get(file.name) != file.size or destination.digest(file.name) != file.sha256
    ]
    stale = sorted(name for name in existing if name not in names)
    unchanged = not to_copy and not stale and destination.read_manifest() == manifest
    if not unchanged:
        # From here until the new manifest is written the copy is partial: no run may start on it.
        destination.remove_manifest()
        for file in to_copy:
            with reporter.file(file) as progress:
                destination.put(file, progress)
        for name in stale:
            destination.delete(name)
    try:
        headers = _verify(destination, files)
    except CliError:
        destination.remove_manifest()  # a copy that does not verify is not used either
        raise
    if not unchanged:
        destination.write_manifest(json.dumps(manifest, indent=2).encode() + b"\n")
    return StageResult(
        destination=destination.describe(),
        manifest=manifest,
        copied=[file.name for file in to_copy],
        removed=stale,
        copied_bytes=sum(file.size for file in to_copy),
        verified_headers=headers,
    )


def startup_minutes(model_id: str, total_bytes: int) -> float:
    """About how long after a run starts its training job begins on AWS: the instance's start-up (the
    model's training profile) plus copying the weights onto it."""
    profile = DEFAULT_TRAINING_PROFILES.get(model_id) or DEFAULT_TRAINING_PROFILES["default"]
    return profile.startup_minutes + total_bytes / CHANNEL_BYTES_PER_SECOND / 60


def require_data_dir(data_dir: Path) -> Path:
    if not data_dir.is_dir():
        raise CliError.local(
            f"--local {data_dir}: not a directory. Pass the local stack's data dir (`tt local up "
            "--data-dir`, default .tt-local; `tt local up` creates it on its first start)."
        )
    return data_dir
