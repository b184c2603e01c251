"""Models and playground through the API, and `tt models serve` with the official `openai` client, on a
model the pipeline trains once for this module (moto, the synthesized state machine, the tiny trainer)."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import emulated_aws
from tests.e2e.conftest import free_port
from tests.integration.test_runs_api import wait_for

pytest.importorskip("peft")
openai = pytest.importorskip("openai")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = json.loads((ROOT / "examples" / "customer-support" / "tunedtensor.json").read_text())
# The tiny model's defaults (20 epochs, lr 3e-3, batch 2, rank 32 without dropout) learn the example's
# training answers word for word (bench/tiny_reproduction.py); no augmentation keeps the run short, and the
# eval budget is enough for every answer of the example (tests/trainer/test_data.py checks it).
TRAIN = {"augment": False, "hyperparameters": {"max_output_tokens": 48, "eval_reserved_output_tokens": 16}}
ANSWER_TOKENS = 48


@dataclass
class Trained:
    gateway: Any
    client: Any
    other: Any
    api_url: str
    run: dict[str, Any]
    model: dict[str, Any]
    tmp: Path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    from functions.api.handler import lambda_handler as api
    from functions.authorizer.handler import lambda_handler as authorizer
    from tests.api_client import new_account
    from tt_local.gateway import LocalGateway
    from tt_local.http_server import make_server, serve_in_thread

    tmp = tmp_path_factory.mktemp("models")
    with (
        pytest.MonkeyPatch.context() as patch,
        emulated_aws(patch, tmp / "jobs", XDG_CACHE_HOME=str(tmp / "cache")),
    ):
        gateway = LocalGateway(api, authorizer)
        client, other = new_account(gateway, "acme"), new_account(gateway, "globex")
        spec = {k: v for k, v in EXAMPLE.items() if k != "eval_cases"}
        spec_id = client.post("/behavior-specs", spec).json()["data"]["id"]
        started = client.post(f"/behavior-specs/{spec_id}/runs", TRAIN)
        assert started.status == 201, started.json()
        run = wait_for(
            client, started.json()["data"]["id"], ("completed", "failed", "cancelled"), timeout=600
        )
        assert run["status"] == "completed", run["error"]
        model = client.get(f"/models/{run['model_id']}").json()["data"]
        http = make_server(gateway, port=0)
        serve_in_thread(http)
        try:
            yield Trained(
                gateway, client, other, f"http://127.0.0.1:{http.server_address[1]}", run, model, tmp
            )
        finally:
            http.shutdown()
            http.server_close()


def _system_prompt() -> str:
    from tt_core.specs.prompt import compose_system_prompt

    return compose_system_prompt(EXAMPLE["system_prompt"], EXAMPLE["guidelines"], EXAMPLE["constraints"])


# --- the API ---------------------------------------------------------------------------------------------
def test_models_are_listed_read_and_isolated_per_account(trained: Trained) -> None:
    model = trained.model
    assert model["name"] == f"tiny-chat-ft-{trained.run['fine_tune_job_id'][:8]}"
    assert model["provider_model_id"].endswith(f"/models/{model['id']}/model.tar.gz")
    listed = trained.client.get("/models").json()
    assert [m["id"] for m in listed["data"]] == [model["id"]] and listed["meta"]["total"] == 1

    other = trained.other
    assert other.get("/models").json()["meta"]["total"] == 0
    for method, path in [("GET", ""), ("GET", "/download"), ("DELETE", "")]:
        response = other.request(method, f"/models/{model['id']}{path}")
        assert response.status == 404 and response.json()["error"]["code"] == "not_found", (method, path)
    playground = other.get("/playground/models").json()["data"]
    assert playground["fine_tuned_models"] == []
    refused = other.post("/playground/completions", {"model": model["provider_model_id"], "messages": [
        {"role": "user", "content": "How do I cancel?"}]})  # fmt: skip
    assert refused.status == 400 and refused.json()["error"]["details"][0]["field"] == "model"
    assert trained.client.get("/models/not-a-uuid/download").status == 404


def test_download_url_is_signed_for_15_minutes_and_serves_the_artifact(trained: Trained) -> None:
    from tt_core.models.common import parse_timestamp

    before = time.time()
    response = trained.client.get(f"/models/{trained.model['id']}/download")
    assert response.status == 200
    data = response.json()["data"]
    assert data["filename"] == "model.tar.gz" and set(data) == {"url", "filename", "expires_at"}
    assert 899 <= parse_timestamp(data["expires_at"]).timestamp() - before <= 905
    assert "X-Amz-Expires=900" in data["url"] and "X-Amz-Signature=" in data["url"]
    fetched = requests.get(data["url"], timeout=30)
    assert fetched.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(fetched.content)) as archive:
        names = set(archive.getnames())
    expected = {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja",
                "tunedtensor.json", "base_model.json", "training-metrics.json"}  # fmt: skip
    assert expected <= {name.removeprefix("./") for name in names}


def test_playground_lists_the_catalogue_and_the_accounts_models(trained: Trained) -> None:
    data = trained.client.get("/playground/models").json()["data"]
    base = {m["id"]: m for m in data["base_models"]}
    assert base["Qwen/Qwen3.5-2B"] == {
        "id": "Qwen/Qwen3.5-2B", "name": "Qwen3.5-2B", "type": "base", "context_length": 131_072,
    }  # fmt: skip
    assert base["tunedtensor/tiny-chat"]["context_length"] == 2048 and len(base) == 9
    model = trained.model
    assert data["fine_tuned_models"] == [
        {"id": model["provider_model_id"], "name": model["name"], "type": "fine-tuned",
         "base_model": "tunedtensor/tiny-chat", "model_id": model["id"]},
    ]  # fmt: skip


def test_playground_validates_the_body_first(trained: Trained) -> None:
    user = [{"role": "user", "content": "hi"}]
    cases = [
        ({"messages": user}, "model"),
        ({"model": "tiny-chat", "messages": []}, "messages"),
        ({"model": "tiny-chat"}, "messages"),
        ({"model": "tiny-chat", "messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
        ({"model": "tiny-chat", "messages": [{"role": "user", "content": 3}]}, "messages.0.content"),
        ({"model": "tiny-chat", "messages": user, "temperature": 2.5}, "temperature"),
        ({"model": "tiny-chat", "messages": user, "max_tokens": 0}, "max_tokens"),
        ({"model": "tiny-chat", "messages": user, "max_tokens": 4097}, "max_tokens"),
        ({"model": "tiny-chat", "messages": user, "stream": True}, "stream"),
        ({"model": "gpt-4o", "messages": user}, "model"),
        ({"model": "meta-llama/Llama-3.2-3B-Instruct", "messages": user}, "model"),  # no weights here
    ]
    for body, field in cases:
        response = trained.client.post("/playground/completions", body)
        assert response.status == 400, (body, response.json())
        error = response.json()["error"]
        assert error["code"] == "validation_error" and error["details"][0]["field"] == field, (body, error)


def test_playground_answers_with_the_tuned_model_on_the_local_stack(trained: Trained) -> None:
    evals = {row["prompt"]: row for row in trained.run["_evals"]}
    trained_rows = [e for e in EXAMPLE["examples"] if e["input"] not in evals][:4]
    body = {"model": trained.model["provider_model_id"], "temperature": 0, "max_tokens": ANSWER_TOKENS}
    answers = {}
    for example in trained_rows:
        messages = [{"role": "user", "content": example["input"]}]
        response = trained.client.post("/playground/completions", {**body, "messages": messages})
        assert response.status == 200, response.json()
        data = response.json()["data"]
        answers[example["input"]] = data["content"]
        assert data["model"] == trained.model["provider_model_id"] and data["latency_ms"] > 0
        usage = data["usage"]
        assert usage["prompt_tokens"] > 0 and usage["total_tokens"] == usage["prompt_tokens"] + usage[
            "completion_tokens"]  # fmt: skip
        assert data["finish_reason"] in ("stop", "length")
    learnt = [e for e in trained_rows if answers[e["input"]] == e["output"]]
    assert learnt, answers  # the spec prompt was applied, as in training: training answers come back

    question = [{"role": "user", "content": "How do I cancel?"}]
    base_body = {"model": "tiny-chat", "temperature": 0, "max_tokens": 8, "messages": question}
    base = trained.client.post("/playground/completions", base_body)
    assert base.status == 200 and base.json()["data"]["model"] == "tunedtensor/tiny-chat"
    assert base.json()["data"]["usage"]["completion_tokens"] <= 8


def test_version_says_playground_inference_is_available_locally(trained: Trained) -> None:
    data = trained.client.get("/version").json()["data"]
    assert data["mode"] == "local" and "playground_inference" in data["capabilities"]


def test_on_aws_a_valid_completion_is_501_with_the_seeds_body(trained: Trained, monkeypatch: Any) -> None:
    from tt_core import wiring

    monkeypatch.setenv("TT_MODE", "aws")
    wiring.reset()
    try:
        assert "playground_inference" not in trained.client.get("/version").json()["data"]["capabilities"]
        body = {"model": "Qwen/Qwen3.5-2B", "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Explain LoRA fine-tuning in one paragraph."}],
            "temperature": 0.7, "max_tokens": 1024}  # fmt: skip
        response = trained.client.post("/playground/completions", body)
        assert response.status == 501
        message = "Playground inference is unavailable for hosted fine-tuned models."
        assert response.json() == {"error": {"code": "playground_unavailable", "message": message}}
        tuned = trained.client.post(
            "/playground/completions", {**body, "model": trained.model["provider_model_id"]}
        )
        assert tuned.status == 501
        invalid = trained.client.post("/playground/completions", {**body, "max_tokens": 0})
        assert invalid.status == 400  # the body is validated first, on AWS too
    finally:
        monkeypatch.setenv("TT_MODE", "local")
        wiring.reset()


def test_openapi_documents_the_new_endpoints(trained: Trained) -> None:
    paths = trained.client.get("/openapi.json").json()["paths"]
    assert {"get", "delete"} <= set(paths["/models/{model_id}"])
    assert "get" in paths["/models/{model_id}/download"]
    assert "501" in paths["/playground/completions"]["post"]["responses"]
    assert "get" in paths["/playground/models"]


# --- serving with the official openai client -------------------------------------------------------------
@contextmanager
def _serving_in_process(argv: list[str]) -> Iterator[str]:
    """`tt … models serve` in a thread of this process (it downloads through the moto-backed API)."""
    from tt_cli.main import main
    from tt_serve.server import ChatServer

    servers: list[Any] = []
    original = ChatServer.serve_forever

    def capture(self: Any, poll_interval: float = 0.5) -> None:
        servers.append(self)
        original(self, poll_interval)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ChatServer, "serve_forever", capture)
        thread = threading.Thread(target=main, args=(argv,), daemon=True)
        thread.start()
        deadline = time.monotonic() + 120
        while not servers and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert servers, "tt models serve did not start"
        try:
            yield servers[0].url
        finally:
            servers[0].shutdown()
            thread.join(timeout=30)


@contextmanager
def _serving_subprocess(argv: list[str], env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tt_cli.main", *argv, "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0  # SIGTERM ends it cleanly


def _reference(model_dir: Path, messages: list[dict[str, str]], max_new: int) -> str:
    """A plain transformers + peft greedy loop (argmax, no generate()): what the adapter answers."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tt_trainer.tiny import ensure_tiny_model

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(ensure_tiny_model()), model_dir
    ).eval()
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]
    out: list[int] = []
    with torch.inference_mode():
        for _ in range(max_new):
            token = int(model(torch.tensor([ids + out])).logits[0, -1].argmax())
            if token == tokenizer.eos_token_id:
                break
            out.append(token)
    return str(tokenizer.decode(out, skip_special_tokens=True))


def test_openai_client_chats_with_the_served_model(trained: Trained, tmp_path: Path) -> None:
    model_id = trained.model["id"]
    cache = tmp_path / "cache"
    auth = ["-u", trained.api_url, "-k", trained.client.key]
    argv = [*auth, "models", "serve", model_id[:8], "--cache-dir", str(cache), "--temperature", "0"]
    port = free_port()
    with _serving_in_process([*argv, "--port", str(port)]) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list().data] == [trained.model["name"]]
        assert requests.get(f"{url}/health", timeout=5).json() == {
            "status": "ok", "model": trained.model["name"], "spec_prompt": True, "device": "cpu",
        }  # fmt: skip

        # The trainer's own tuned generations for the held-out rows come back exactly: same prompt
        # (spec prompt + template), same greedy decoding, same stop rules.
        for row in trained.run["_evals"]:
            reply = client.chat.completions.create(
                model="anything",
                messages=[{"role": "user", "content": row["prompt"]}],
                max_tokens=ANSWER_TOKENS,
            )
            assert reply.choices[0].message.content == row["actual"], row
            assert reply.model == "anything" and reply.object == "chat.completion"

        held_out = {r["prompt"] for r in trained.run["_evals"]}
        trained_rows = [e for e in EXAMPLE["examples"] if e["input"] not in held_out][:4]
        answers = {}
        for example in trained_rows:
            reply = client.chat.completions.create(
                model=trained.model["name"], messages=[{"role": "user", "content": example["input"]}],
                max_tokens=ANSWER_TOKENS,
            )  # fmt: skip
            answers[example["input"]] = reply.choices[0].message.content
            assert reply.usage is not None and reply.usage.completion_tokens > 0
        learnt = next(e for e in trained_rows if answers[e["input"]] == e["output"])

        stream = client.chat.completions.create(
            model=trained.model["name"], messages=[{"role": "user", "content": learnt["input"]}],
            max_tokens=ANSWER_TOKENS, stream=True,
        )  # fmt: skip
        chunks = list(stream)
        assert chunks[0].choices[0].delta.role == "assistant"
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == learnt["output"]
        assert chunks[-1].choices[0].finish_reason == "stop" and len(chunks) >= 3

        # An explicit system message replaces the spec prompt.
        explicit = client.chat.completions.create(
            model="m",
            max_tokens=ANSWER_TOKENS,
            messages=[
                {"role": "system", "content": _system_prompt()},
                {"role": "user", "content": learnt["input"]},
            ],
        )
        assert explicit.choices[0].message.content == learnt["output"]

    # The archive the first serve downloaded, served without the spec prompt in a process of its own.
    archive = cache / model_id / "model.tar.gz"
    assert archive.is_file() and (cache / model_id / "model" / "adapter_config.json").is_file()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    with _serving_subprocess(
        ["models", "serve", str(archive), "--no-spec-prompt", "--temperature", "0"], env
    ) as url:
        health = requests.get(f"{url}/health", timeout=5).json()
        assert health["spec_prompt"] is False and health["model"] == "model"
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        bare = [{"role": "user", "content": learnt["input"]}]
        reply = client.chat.completions.create(model="m", messages=bare, max_tokens=ANSWER_TOKENS)
        model_dir = cache / model_id / "model"
        assert reply.choices[0].message.content == _reference(model_dir, bare, ANSWER_TOKENS)
        with_spec = [{"role": "system", "content": _system_prompt()}, *bare]
        assert _reference(model_dir, with_spec, ANSWER_TOKENS) == learnt["output"]
    extracted = list(
        (tmp_path / "xdg" / "tuned-tensor" / "models").glob("local-model-*/model/adapter_config.json")
    )
    assert len(extracted) == 1  # <cache>/local-<name>-<sha12>/model


def test_merged_export_loads_with_transformers_alone(trained: Trained, tmp_path: Path) -> None:
    from tt_cli.main import main

    auth = ["-u", trained.api_url, "-k", trained.client.key]
    out = tmp_path / "merged"
    code = main([*auth, "models", "export", trained.model["id"], "--merged", str(out), "--cache-dir",
                 str(tmp_path / "cache")])  # fmt: skip
    assert code == 0
    assert (out / "model.safetensors").is_file() and (out / "chat_template.jinja").is_file()
    assert not (out / "adapter_config.json").exists()
    learnt_input = EXAMPLE["examples"][0]["input"]
    messages = [{"role": "system", "content": _system_prompt()}, {"role": "user", "content": learnt_input}]
    # transformers alone, in a process without peft: greedy output equals the served adapter's.
    script = (
        "import json, sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name == 'peft' or name.startswith('peft.'): raise ImportError('no peft here')\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "import torch\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "d, messages = sys.argv[1], json.loads(sys.argv[2])\n"
        "tok = AutoTokenizer.from_pretrained(d); model = AutoModelForCausalLM.from_pretrained(d).eval()\n"
        "ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors='pt',\n"
        "                              return_dict=True)\n"
        f"out = model.generate(**ids, do_sample=False, max_new_tokens={ANSWER_TOKENS})\n"
        "print(json.dumps(tok.decode(out[0, ids['input_ids'].shape[1]:], skip_special_tokens=True)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(out), json.dumps(messages)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    merged_answer = json.loads(done.stdout.strip().splitlines()[-1])

    from tt_serve.completions import ChatEngine, ChatRequest
    from tt_serve.runtime import ModelRuntime

    runtime = ModelRuntime.load(tmp_path / "cache" / trained.model["id"] / "model")
    served = ChatEngine(runtime).complete(
        ChatRequest(messages=messages, max_tokens=ANSWER_TOKENS, temperature=0)
    )
    assert merged_answer == served.content


# --- delete, last: it removes the module's model --------------------------------------------------------
def test_delete_is_refused_while_a_run_continues_the_model_then_removes_record_and_artifact(
    trained: Trained,
) -> None:
    import boto3

    from tt_core import wiring

    client, model = trained.client, trained.model
    spec_id = trained.run["behavior_spec_id"]
    body = copy.deepcopy(TRAIN) | {"parent_model_id": model["id"]}
    continued = client.post(f"/behavior-specs/{spec_id}/runs", body)
    assert continued.status == 201, continued.json()
    refused = client.delete(f"/models/{model['id']}")
    assert refused.status == 409 and refused.json()["error"]["code"] == "model_in_use"
    assert client.post(f"/runs/{continued.json()['data']['id']}/cancel").status == 200

    bucket = wiring.settings().bucket_name
    key = model["provider_model_id"].removeprefix(f"s3://{bucket}/")
    s3 = boto3.client("s3", region_name="us-east-1")
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    assert trained.other.delete(f"/models/{model['id']}").status == 404
    assert client.delete(f"/models/{model['id']}").status == 204
    assert client.get(f"/models/{model['id']}").status == 404
    assert client.delete(f"/models/{model['id']}").status == 404
    assert client.get("/models").json()["meta"]["total"] == 0
    assert s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) == 0
