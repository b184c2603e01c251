"""`tt admin stage-base-model` (PRODUCT.md §14.6) into a moto-backed deployment and into the local stack's
data dir, and the run-start preflight (§9.1, §2.4) before and after: 409 base_model_unavailable, then 201."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import SEED_SPEC

LLAMA = "meta-llama/Llama-3.2-3B-Instruct"
PREFIX = f"base-models/{LLAMA}/"


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    """A real (tiny) Hugging Face model directory, standing in for Llama 3.2 3B's weights."""
    from tt_trainer.tiny import ensure_tiny_model

    return Path(shutil.copytree(ensure_tiny_model(), tmp_path / "Llama-3.2-3B-Instruct"))


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An AWS-mode deployment on moto (the stack's table, bucket and state machine); training is instant."""
    from tests.conftest import emulated_aws
    from tests.fake_training import install_instant_training

    with emulated_aws(monkeypatch, tmp_path / "jobs", TT_MODE="aws", TT_DEFAULT_BASE_MODEL=LLAMA) as names:
        install_instant_training(monkeypatch)
        stacks: list[str] = []

        def find_storage(session: Any, stack: str) -> dict[str, str]:  # test_admin.py covers the lookup
            stacks.append(stack)
            return {"table": names["table"], "bucket": names["bucket"]}

        monkeypatch.setattr("tt_cli.commands.admin.find_storage", find_storage)
        yield {**names, "stacks": stacks}


def _api() -> Any:
    from functions.api.handler import lambda_handler as api
    from functions.authorizer.handler import lambda_handler as authorizer
    from tests.api_client import new_account
    from tt_local.gateway import LocalGateway

    return new_account(LocalGateway(api, authorizer), "acme")


def _spec(client: Any) -> str:
    created = client.post("/behavior-specs", SEED_SPEC)
    assert created.status == 201, created.json()
    assert created.json()["data"]["base_model"] == LLAMA
    return str(created.json()["data"]["id"])


def _assert_refused(client: Any, spec_id: str, message: str) -> None:
    """Start and estimate answer 409 with the contract's code and this message; nothing is created."""
    for path in (f"/behavior-specs/{spec_id}/runs", f"/behavior-specs/{spec_id}/runs/estimate"):
        response = client.post(path, {})
        assert response.status == 409, response.json()
        assert response.json() == {"error": {"code": "base_model_unavailable", "message": message}}
    assert client.get("/runs").json()["meta"]["total"] == 0
    assert client.get(f"/behavior-specs/{spec_id}/runs").json()["meta"]["total"] == 0
    assert client.get("/datasets").json()["meta"]["total"] == 0


def _staged(bucket: str) -> dict[str, bytes]:
    s3 = boto3.client("s3")
    keys = s3.list_objects_v2(Bucket=bucket, Prefix="base-models/").get("Contents", [])
    return {
        entry["Key"].removeprefix(PREFIX): s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
        for entry in keys
    }


def test_staging_into_the_stack_lets_runs_start(run: Any, deployment: dict[str, Any], weights: Path) -> None:
    client = _api()
    spec_id = _spec(client)
    _assert_refused(
        client,
        spec_id,
        f"Base model {LLAMA} is not available in this deployment: its weights have not been staged. "
        f"An operator stages them with: tt admin stage-base-model {LLAMA}",
    )

    # An alias is staged under the canonical id (§5).
    result = run("admin", "stage-base-model", "meta-llama/Llama-3.2-3B", "--from", str(weights))
    assert result.code == 0, result.err
    bucket = deployment["bucket"]
    assert deployment["stacks"] == ["TunedTensor"]
    lines = result.out.splitlines()
    assert lines[0] == f"✓ Staged {LLAMA} (revision not recorded) at s3://{bucket}/{PREFIX}"
    sources = sorted(path.name for path in weights.iterdir())
    assert lines[1] == f"Copied {len(sources)} of {len(sources)} files ({_human(weights)}); 0 already there"
    assert lines[2].startswith(f"Verified: {len(sources)} file sizes") and "1 safetensors headers" in lines[2]
    assert lines[3].startswith(f"Runs on {LLAMA} can start now: each training job starts about ")
    assert "Copying model.safetensors" in result.err  # progress on stderr

    staged = _staged(bucket)
    assert sorted(staged) == sorted([*sources, "base_model.json"])
    assert all(staged[name] == (weights / name).read_bytes() for name in sources)
    manifest = json.loads(staged["base_model.json"])
    assert manifest["id"] == LLAMA and manifest["revision"] is None
    assert manifest["files"]["model.safetensors"]["size"] == (weights / "model.safetensors").stat().st_size

    started = client.post(f"/behavior-specs/{spec_id}/runs", {})
    assert started.status == 201, started.json()
    assert started.json()["data"]["run_number"] == 1  # the refusals drew no run number
    assert client.post(f"/behavior-specs/{spec_id}/runs/estimate", {}).status == 200


def _human(directory: Path) -> str:
    from tt_cli.commands.datasets import human_bytes

    return str(human_bytes(sum(path.stat().st_size for path in directory.iterdir())))


def test_a_rerun_is_idempotent_and_sends_only_what_changed(
    run: Any, deployment: dict[str, Any], weights: Path
) -> None:
    assert run("admin", "stage-base-model", LLAMA, "--from", str(weights)).code == 0
    again = run("admin", "stage-base-model", LLAMA, "--from", str(weights), "--json")
    assert again.code == 0, again.err
    assert again.json["copied_bytes"] == 0 and not any(file["copied"] for file in again.json["files"])
    assert again.json["removed"] == [] and again.err.count("Copying") == 0

    # One file changed and one left over from a hand-made copy: only those are touched.
    (weights / "generation_config.json").write_text(json.dumps({"max_new_tokens": 7}))
    boto3.client("s3").put_object(
        Bucket=deployment["bucket"], Key=f"{PREFIX}original/consolidated.pth", Body=b"x"
    )
    changed = run("admin", "stage-base-model", LLAMA, "--from", str(weights), "--json")
    assert changed.code == 0, changed.err
    assert [file["name"] for file in changed.json["files"] if file["copied"]] == ["generation_config.json"]
    assert changed.json["removed"] == ["original/consolidated.pth"]
    staged = _staged(deployment["bucket"])
    assert staged["generation_config.json"] == (weights / "generation_config.json").read_bytes()
    assert "original/consolidated.pth" not in staged


def test_an_interrupted_copy_is_never_used(
    run: Any, deployment: dict[str, Any], weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tt_cli.commands.stage_base_model import S3Destination

    client = _api()
    spec_id = _spec(client)
    assert run("admin", "stage-base-model", LLAMA, "--from", str(weights)).code == 0
    assert client.post(f"/behavior-specs/{spec_id}/runs/estimate", {}).status == 200

    # A re-stage with new weights fails half-way: the old manifest went first, so runs are refused.
    (weights / "config.json").write_text(
        json.dumps({**json.loads((weights / "config.json").read_text()), "x": 1})
    )
    original_put = S3Destination.put

    def failing_put(self: Any, file: Any, progress: Any) -> None:
        raise OSError("connection reset")

    monkeypatch.setattr(S3Destination, "put", failing_put)
    failed = run("admin", "stage-base-model", LLAMA, "--from", str(weights))
    assert failed.code == 1 and "connection reset" in failed.err
    assert "base_model.json" not in _staged(deployment["bucket"])
    assert client.post(f"/behavior-specs/{spec_id}/runs/estimate", {}).status == 409

    monkeypatch.setattr(S3Destination, "put", original_put)
    assert run("admin", "stage-base-model", LLAMA, "--from", str(weights)).code == 0
    assert client.post(f"/behavior-specs/{spec_id}/runs/estimate", {}).status == 200


def test_big_files_go_through_the_managed_multipart_transfer(
    run: Any, deployment: dict[str, Any], weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tt_cli.commands.stage_base_model.MULTIPART_THRESHOLD", 1024 * 1024)
    assert (weights / "model.safetensors").stat().st_size > 1024 * 1024
    assert run("admin", "stage-base-model", LLAMA, "--from", str(weights)).code == 0
    head = boto3.client("s3").head_object(Bucket=deployment["bucket"], Key=f"{PREFIX}model.safetensors")
    assert head["ETag"].strip('"').endswith("-1")  # a multipart upload's ETag: <md5 of part md5s>-<parts>
    assert (
        head["Metadata"]["sha256"]
        == json.loads(_staged(deployment["bucket"])["base_model.json"])["files"]["model.safetensors"][
            "sha256"
        ]
    )
    # The idempotence check reads the digest back from a multipart object too.
    rerun = run("admin", "stage-base-model", LLAMA, "--from", str(weights), "--json")
    assert rerun.json["copied_bytes"] == 0


def test_directories_that_are_not_a_model_are_refused(
    run: Any, deployment: dict[str, Any], weights: Path, tmp_path: Path
) -> None:
    def refused(source: Path, model: str = LLAMA) -> str:
        result = run("admin", "stage-base-model", model, "--from", str(source))
        assert result.code == 1, result.out
        assert "✗ [0] cli_error: " in result.err  # after the progress lines
        return result.err

    empty = tmp_path / "empty"
    empty.mkdir()
    assert f"{empty} has no config.json" in refused(empty)
    config_only = tmp_path / "config-only"
    config_only.mkdir()
    shutil.copy(weights / "config.json", config_only)
    assert f"{config_only} has no *.safetensors weights" in refused(config_only)
    no_tokenizer = Path(shutil.copytree(weights, tmp_path / "no-tokenizer"))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (no_tokenizer / name).unlink()
    assert f"{no_tokenizer} has no tokenizer" in refused(no_tokenizer)
    truncated = Path(shutil.copytree(weights, tmp_path / "truncated"))
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[:-100])
    assert "model.safetensors is not a valid safetensors file: its tensors end at byte" in refused(truncated)
    assert "MODEL: unknown base model 'gpt-2'; supported: " in refused(weights, "gpt-2")
    assert "tunedtensor/tiny-chat needs no staging" in refused(weights, "tiny-chat")
    assert _staged(deployment["bucket"]) == {}  # nothing was sent


def test_on_the_local_stack_a_real_base_model_needs_its_weights(
    run: Any, client: Any, weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local stack's preflight looks where its trainer does: the data dir's staged copies and this
    machine's Hugging Face cache (empty here)."""
    from tests.fake_training import install_instant_training

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    spec_id = _spec(client)
    data_dir = tmp_path  # the stack's jobs are in <data-dir>/jobs
    _assert_refused(
        client,
        spec_id,
        f"Base model {LLAMA} is not available on this machine: its weights are neither staged for the local "
        f"stack nor in the local Hugging Face cache. Stage them with: tt admin stage-base-model {LLAMA} "
        f"--local {data_dir.resolve()}",
    )

    result = run("admin", "stage-base-model", LLAMA, "--from", str(weights), "--local", str(data_dir))
    assert result.code == 0, result.err
    staged = data_dir / "base-models" / "meta-llama" / "Llama-3.2-3B-Instruct"
    assert result.out.splitlines()[0] == f"✓ Staged {LLAMA} (revision not recorded) at {staged}/"
    assert "its trainer reads these files in place" in result.out
    assert json.loads((staged / "base_model.json").read_text())["id"] == LLAMA
    assert (staged / "model.safetensors").read_bytes() == (weights / "model.safetensors").read_bytes()

    install_instant_training(monkeypatch)
    started = client.post(f"/behavior-specs/{spec_id}/runs", {})
    assert started.status == 201, started.json()
    assert started.json()["data"]["run_number"] == 1


def test_local_staging_needs_the_stacks_data_dir(run: Any, weights: Path, tmp_path: Path) -> None:
    result = run(
        "admin", "stage-base-model", LLAMA, "--from", str(weights), "--local", str(tmp_path / "nope")
    )
    assert result.code == 1
    assert f"--local {tmp_path / 'nope'}: not a directory" in result.err
