"""The model runtime: greedy decoding that no generation_config.json can change, the artifact's chat
template, streaming pieces, budgets and load errors (tiny-chat with a random LoRA adapter, no training)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from tt_serve.runtime import ModelRuntime, PromptError, RuntimeLoadError  # noqa: E402

# Settings a hub model may ship in generation_config.json that would change "greedy" output if inherited.
HOSTILE_GENERATION_CONFIG = {
    "repetition_penalty": 1.8,
    "no_repeat_ngram_size": 2,
    "min_new_tokens": 30,
    "do_sample": True,
    "temperature": 0.01,
    "top_k": 3,
}
ARTIFACT_TEMPLATE = (
    "{% for message in messages %}### {{ message['role'] }}: {{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}### assistant: {% endif %}"
)
MESSAGES = [{"role": "user", "content": "Describe item 3."}]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tt_trainer.tiny import ensure_tiny_model

    root = tmp_path_factory.mktemp("runtime")
    base = shutil.copytree(ensure_tiny_model(), root / "base")
    config = json.loads((base / "generation_config.json").read_text())
    (base / "generation_config.json").write_text(json.dumps({**config, **HOSTILE_GENERATION_CONFIG}))
    model = AutoModelForCausalLM.from_pretrained(base)
    torch.manual_seed(0)
    lora = LoraConfig(r=8, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
    adapter = root / "artifact"
    get_peft_model(model, lora).save_pretrained(str(adapter))
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.chat_template = ARTIFACT_TEMPLATE  # what "training" used: not the base model's template
    tokenizer.save_pretrained(adapter)
    (adapter / "base_model.json").write_text(json.dumps({"id": "tunedtensor/tiny-chat", "revision": "v1"}))
    return {"base": base, "artifact": adapter}


@pytest.fixture(scope="module")
def runtime(artifact: dict[str, Path]) -> ModelRuntime:
    return ModelRuntime.load(artifact["artifact"], device="cpu", base_model_dir=artifact["base"])


def _argmax(artifact: dict[str, Path], ids: list[int], stop: list[int], steps: int) -> list[int]:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(artifact["base"]), artifact["artifact"]
    )
    out: list[int] = []
    with torch.inference_mode():
        for _ in range(steps):
            token = int(model.eval()(torch.tensor([ids + out])).logits[0, -1].argmax())
            out.append(token)
            if token in stop:
                break
    return out


def test_greedy_equals_a_plain_argmax_loop_whatever_the_base_generation_config(
    runtime: ModelRuntime, artifact: dict[str, Path]
) -> None:
    from transformers import GenerationConfig

    ids = runtime.prompt_ids(MESSAGES)
    expected = _argmax(artifact, ids, runtime.stop_ids, 40)
    result = runtime.generate(MESSAGES, max_tokens=40, temperature=0)
    finished = expected[-1] in runtime.stop_ids
    assert result.text == runtime.tokenizer.decode(
        expected[:-1] if finished else expected, skip_special_tokens=True
    )
    assert result.completion_tokens == len(expected) and result.prompt_tokens == len(ids)
    assert result.finish_reason == ("stop" if finished else "length")

    # The trap this avoids: a "greedy" GenerationConfig passed to generate() inherits the unset knobs
    # from the weights' generation_config.json and answers something else.
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    naive = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(artifact["base"]), artifact["artifact"]
    )
    torch.manual_seed(0)
    inherited = (
        naive.eval()
        .generate(
            input_ids=torch.tensor([ids]),
            generation_config=GenerationConfig(do_sample=False, max_new_tokens=40),
        )[0, len(ids) :]
        .tolist()
    )
    assert inherited != expected


def test_the_artifacts_chat_template_renders_the_prompt(
    runtime: ModelRuntime, artifact: dict[str, Path]
) -> None:
    from transformers import AutoTokenizer

    text = runtime.tokenizer.decode(runtime.prompt_ids(MESSAGES))
    assert text == "### user: Describe item 3.<|im_end|>\n### assistant: "
    base_tokenizer: Any = AutoTokenizer.from_pretrained(artifact["base"])
    rendered = base_tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, return_dict=True)
    base_ids = rendered["input_ids"]
    assert list(base_ids) != runtime.prompt_ids(MESSAGES)


def test_streamed_pieces_add_up_to_the_answer_and_budgets_hold(runtime: ModelRuntime) -> None:
    pieces: list[str] = []
    result = runtime.generate(MESSAGES, max_tokens=12, temperature=0, on_text=pieces.append)
    assert "".join(pieces) == result.text and len(pieces) >= 1
    assert result.completion_tokens > 3  # the random adapter does not stop that soon
    short = runtime.generate(MESSAGES, max_tokens=3, temperature=0)
    assert (short.completion_tokens, short.finish_reason) == (3, "length")
    assert result.text.startswith(short.text)
    sampled = runtime.generate(MESSAGES, max_tokens=8, temperature=1.0, top_p=0.9)
    assert 1 <= sampled.completion_tokens <= 8
    with pytest.raises(PromptError, match="context is 2048 tokens"):
        runtime.generate([{"role": "user", "content": "word " * 5000}], max_tokens=4, temperature=0)


def test_load_errors_are_plain_messages(tmp_path: Path, artifact: dict[str, Path]) -> None:
    with pytest.raises(RuntimeLoadError, match=r"adapter_config\.json"):
        ModelRuntime.load(tmp_path, device="cpu")
    unknown = shutil.copytree(artifact["artifact"], tmp_path / "unknown")
    (unknown / "base_model.json").write_text(json.dumps({"id": "nobody/no-such-model", "revision": None}))
    with pytest.raises(RuntimeLoadError, match="Unknown base model 'nobody/no-such-model'"):
        ModelRuntime.load(unknown, device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeLoadError, match="no CUDA GPU"):
            ModelRuntime.load(artifact["artifact"], device="cuda", base_model_dir=artifact["base"])
    with pytest.raises(RuntimeLoadError, match="Unknown device"):
        ModelRuntime.load(artifact["artifact"], device="tpu")


def test_a_base_model_alone_uses_its_own_template(artifact: dict[str, Any]) -> None:
    base = ModelRuntime.load(None, base_model="tiny-chat", device="cpu")
    assert base.base_model == "tunedtensor/tiny-chat"
    assert base.tokenizer.decode(base.prompt_ids(MESSAGES)).startswith("<|bos|><|im_start|>user\n")
    assert base.generate(MESSAGES, max_tokens=4, temperature=0).completion_tokens <= 4


def test_pieces_never_disagree_with_the_full_decode(runtime: ModelRuntime) -> None:
    import random

    from tt_serve.runtime import _Detokenizer

    rng = random.Random(7)
    vocab = len(runtime.tokenizer)
    # Words, bytes of multi-byte characters and special tokens, in random orders.
    pool = [*range(vocab), *runtime.tokenizer.encode("héllo wörld — ☃ 日本語 ok", add_special_tokens=False)]
    for _ in range(60):
        ids = [rng.choice(pool) for _ in range(rng.randint(1, 40))]
        pieces = _Detokenizer(runtime.encoder.decode)
        streamed = "".join(pieces.add(token) for token in ids)
        assert runtime.encoder.decode(ids).startswith(streamed), ids


@pytest.mark.parametrize("temperature", [1e-45, 9e-6])
def test_a_tiny_positive_temperature_is_greedy(runtime: ModelRuntime, temperature: float) -> None:
    # Sampling at 1e-45 divides the logits into inf and nan: torch.multinomial fails (a 500 in serving).
    greedy = runtime.generate(MESSAGES, max_tokens=6, temperature=0)
    assert runtime.generate(MESSAGES, max_tokens=6, temperature=temperature) == greedy


def test_the_engine_refuses_a_prompt_too_long_for_the_context_by_bytes_before_tokenising(
    runtime: ModelRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tt_serve.completions import BYTES_PER_TOKEN, ChatEngine, ChatRequest, RequestError

    tokenised: list[int] = []
    prompt_ids = runtime.prompt_ids
    monkeypatch.setattr(runtime, "prompt_ids", lambda messages: tokenised.append(1) or prompt_ids(messages))
    engine = ChatEngine(runtime)
    huge = [{"role": "user", "content": "x" * (2048 * BYTES_PER_TOKEN + 1)}]
    with pytest.raises(RequestError, match="bytes: more than the model's context of 2,048 tokens"):
        engine.complete(ChatRequest(messages=huge))
    assert tokenised == []
    with pytest.raises(RequestError, match="context is 2048 tokens"):
        engine.complete(ChatRequest(messages=[{"role": "user", "content": "word " * 5000}]))
    assert tokenised == [1]
    answer = engine.complete(ChatRequest(messages=MESSAGES, max_tokens=6, temperature=0))
    assert answer.content == runtime.generate(MESSAGES, max_tokens=6, temperature=0).text
    assert tokenised == [1, 1, 1]  # the engine's prompt went to the model as it was: tokenised once


def test_a_seed_repeats_a_sampled_answer_and_leaves_the_global_generator_alone(
    runtime: ModelRuntime,
) -> None:
    before = torch.get_rng_state()
    first = runtime.generate(MESSAGES, max_tokens=10, temperature=1.0, seed=5)
    assert runtime.generate(MESSAGES, max_tokens=10, temperature=1.0, seed=5) == first
    assert runtime.generate(MESSAGES, max_tokens=10, temperature=1.0, seed=6).text != first.text
    assert torch.equal(torch.get_rng_state(), before)  # unseeded requests stay as random as they were


def test_the_openai_client_gets_stop_seed_and_n_as_the_api_defines_them(runtime: ModelRuntime) -> None:
    import threading

    import openai

    from tt_serve.completions import ChatEngine
    from tt_serve.server import ServedModel, make_server

    server = make_server(ChatEngine(runtime), ServedModel("tiny", "cpu", 0), port=0)
    server.quiet = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)

        def ask(**settings: Any) -> Any:
            return client.chat.completions.create(model="tiny", messages=MESSAGES, **settings)

        full = ask(max_tokens=24, temperature=0)
        answer = full.choices[0].message.content
        stop = answer[10:16]  # a piece of what this (random) adapter answers; its first occurrence ends it
        stopped = ask(max_tokens=24, temperature=0, stop=[stop, "not in the answer"])
        assert stopped.choices[0].message.content == answer[: answer.index(stop)]
        assert stopped.choices[0].finish_reason == "stop"
        assert stopped.usage.completion_tokens < full.usage.completion_tokens  # generation ended there
        chunks = ask(max_tokens=24, temperature=0, stop=stop, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == answer[: answer.index(stop)]

        sampled = [ask(max_tokens=12, temperature=1, seed=42).choices[0].message.content for _ in range(2)]
        assert sampled[0] == sampled[1]
        with pytest.raises(openai.BadRequestError, match="'n'"):
            ask(max_tokens=4, n=2)
    finally:
        server.shutdown()
        server.server_close()
