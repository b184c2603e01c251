"""The model runtime: base weights + LoRA adapter, the artifact's chat template, greedy or sampled decoding.

Stop rules, pad token and prompt rendering are the trainer's own (tt_trainer.base_model and
tt_trainer.data), so a served model answers a prompt exactly as the run's evaluation generated it.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

ADAPTER_CONFIG = "adapter_config.json"
BASE_MODEL_FILE = "base_model.json"
SPEC_FILE = "tunedtensor.json"
DEVICES = ("auto", "cpu", "cuda", "mps")
# Below this, sampling is greedy anyway; near 0 the logits divide into inf and nan (torch.multinomial fails).
MIN_SAMPLING_TEMPERATURE = 1e-5


class RuntimeLoadError(Exception):
    """The model cannot be loaded: missing files, unknown base weights, an unavailable device."""


class PromptError(ValueError):
    """The conversation cannot be rendered or does not fit the model's context."""


@dataclass(frozen=True)
class Generation:
    text: str
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int  # every generated token, the end-of-turn token included (as the trainer counts)


def pick_device(requested: str) -> Any:
    import torch

    if requested not in DEVICES:
        raise RuntimeLoadError(f"Unknown device {requested!r}: use one of {', '.join(DEVICES)}.")
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeLoadError("--device cuda was asked for, but torch sees no CUDA GPU.")
    if requested == "mps" and not mps_ok:
        raise RuntimeLoadError("--device mps was asked for, but torch sees no Apple GPU (MPS).")
    return torch.device(requested)


def _dtype(device: Any) -> Any:
    import torch

    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float16 if device.type == "mps" else torch.float32


def base_identity(model_dir: Path) -> tuple[str, str | None]:
    """The base model id and revision the artifact names (base_model.json, else adapter_config.json)."""
    try:
        data = json.loads((model_dir / BASE_MODEL_FILE).read_text())
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            revision = data.get("revision")
            return data["id"], revision if isinstance(revision, str) else None
    except (OSError, ValueError):
        pass
    try:
        config = json.loads((model_dir / ADAPTER_CONFIG).read_text())
    except (OSError, ValueError):
        raise RuntimeLoadError(
            f"{model_dir} has no readable {BASE_MODEL_FILE} or {ADAPTER_CONFIG}."
        ) from None
    name = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if not name:
        raise RuntimeLoadError(f"{model_dir / ADAPTER_CONFIG} does not name its base model.")
    return str(name), None


def greedy_config(**values: Any) -> Any:
    """A fresh GenerationConfig whose every decoding knob is set, so nothing is taken from the model's
    own generation_config.json (repetition_penalty, top_k, no_repeat_ngram_size, min_new_tokens, …)."""
    from transformers import GenerationConfig

    return GenerationConfig(
        num_beams=1,
        repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        encoder_no_repeat_ngram_size=0,
        min_length=0,
        length_penalty=1.0,
        bad_words_ids=None,
        suppress_tokens=None,
        begin_suppress_tokens=None,
        forced_bos_token_id=None,
        forced_eos_token_id=None,
        renormalize_logits=False,
        use_cache=True,
        **values,
    )


class _TokenSink:
    """A transformers streamer: drops the prompt, hands each new token id to `on_token`."""

    def __init__(self, on_token: Callable[[int], None]) -> None:
        self._on_token = on_token
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self._on_token(int(token))

    def end(self) -> None:
        pass


class _Detokenizer:
    """New text per token in constant time: each token is decoded with the one or two before it, so
    spaces and multi-token characters come out as the full decode has them."""

    def __init__(self, decode: Callable[[list[int]], str]) -> None:
        self._decode = decode
        self._ids: list[int] = []
        self._prefix = 0  # context start
        self._read = 0  # what has been emitted ends here

    def add(self, token: int) -> str:
        self._ids.append(token)
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :])
        # A multi-byte character still incomplete decodes to U+FFFD: wait for its last byte.
        if len(after) <= len(before) or after.endswith("\ufffd") or not after.startswith(before):
            return ""
        self._prefix, self._read = self._read, len(self._ids)
        return after[len(before) :]


@contextmanager
def _seeded(seed: int | None, device: Any) -> Iterator[None]:
    """The sampler seeded for one generation; the generators are restored after it, so a seeded request
    leaves the requests without a seed as random as they were."""
    if seed is None:
        yield
        return
    import torch

    accelerator = device.type in ("cuda", "mps")
    devices = [device.index or 0] if accelerator else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if accelerator else None):
        torch.manual_seed(seed)
        yield


class ModelRuntime:
    """One loaded model. Callers serve one generation at a time; `prompt_ids` may run beside one (the
    tokenizer is only read: no truncation or padding is ever set on it)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        stop_ids: Sequence[int],
        pad_id: int,
        context_length: int | None,
        device: Any,
        base_model: str,
        base_dtype: Any = None,
    ) -> None:
        from tt_trainer.data import ChatEncoder

        self.model = model
        self.tokenizer = tokenizer
        self.encoder = ChatEncoder(tokenizer)
        self.stop_ids = sorted(set(stop_ids))
        self.pad_id = pad_id
        self.context_length = context_length
        self.device = device
        self.base_model = base_model
        # The dtype the base weights are published in (what a merged export writes); None when unknown.
        self.base_dtype = base_dtype

    # --- loading -------------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        model_dir: Path | None,
        *,
        base_model: str | None = None,
        device: str = "auto",
        base_model_dir: Path | None = None,
        trust_remote_code: bool = False,
    ) -> ModelRuntime:
        """An artifact directory (adapter + tokenizer), or with `model_dir` None the base model alone."""
        from transformers import AutoTokenizer, GenerationConfig

        from tt_trainer.base_model import (
            choose_pad_id,
            config_dtype,
            context_length,
            ensure_chat_template,
            load_config,
            load_model,
            resolve_base_model,
            stop_token_ids,
        )
        from tt_trainer.errors import TrainerError

        if model_dir is not None and not (model_dir / ADAPTER_CONFIG).is_file():
            raise RuntimeLoadError(f"{model_dir} has no {ADAPTER_CONFIG}: it is not a model artifact.")
        base_id, revision = base_identity(model_dir) if model_dir is not None else (base_model or "", None)
        torch_device = pick_device(device)
        with tempfile.TemporaryDirectory(prefix="tt-serve-") as scratch:
            try:
                source = resolve_base_model(
                    base_id, revision, staged_dir=base_model_dir, scratch=Path(scratch)
                )
                model = load_model(
                    source,
                    dtype=_dtype(torch_device),
                    device=torch_device,
                    trust_remote_code=trust_remote_code,
                )
                base_dtype = config_dtype(load_config(source, trust_remote_code=trust_remote_code))
            except TrainerError as error:
                raise RuntimeLoadError(str(error)) from None
            # The artifact's tokenizer carries the chat template the model was trained with.
            tokenizer_dir = model_dir if model_dir is not None else source.path
            try:
                tokenizer = AutoTokenizer.from_pretrained(
                    tokenizer_dir, local_files_only=True, trust_remote_code=trust_remote_code
                )
            except (OSError, ValueError) as error:
                raise RuntimeLoadError(
                    f"The tokenizer in {tokenizer_dir} cannot be loaded ({error})."
                ) from None
        # A base model without a template gets the trainer's ChatML fallback, as its training rows did (an
        # artifact carries the template it was trained with, so this only serves a base model alone).
        ensure_chat_template(tokenizer)
        if not getattr(tokenizer, "chat_template", None):
            raise RuntimeLoadError(f"The tokenizer in {tokenizer_dir} has no chat template and no eos token.")
        try:
            stop_ids = stop_token_ids(tokenizer, model)
        except TrainerError as error:
            raise RuntimeLoadError(str(error)) from None
        pad_id = choose_pad_id(tokenizer)
        # Decoding is set per request, never by the weights' own defaults: a clean config to inherit from.
        model.generation_config = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id, eos_token_id=stop_ids, pad_token_id=pad_id
        )
        if model_dir is not None:
            from peft import PeftModel

            with (
                warnings.catch_warnings()
            ):  # peft calls transformers APIs deprecated for v6: not the user's concern
                warnings.simplefilter("ignore", FutureWarning)
                model = PeftModel.from_pretrained(model, str(model_dir), is_trainable=False)
        model.eval()
        return cls(
            model,
            tokenizer,
            stop_ids=stop_ids,
            pad_id=pad_id,
            context_length=context_length(model.config),
            device=torch_device,
            base_model=source.id,
            base_dtype=base_dtype,
        )

    # --- generation ----------------------------------------------------------------------------
    def prompt_ids(self, messages: Sequence[dict[str, str]]) -> list[int]:
        try:
            return self.encoder.prompt_ids(messages)
        except Exception as error:  # jinja2 TemplateError and friends: the template refused the chat
            raise PromptError(f"The chat template cannot render these messages: {error}") from None

    def generate(
        self,
        messages: Sequence[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        on_text: Callable[[str], None] | None = None,
        prompt_ids: Sequence[int] | None = None,
        seed: int | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Generation:
        """Greedy when temperature is (nearly) 0, else sampling; `on_text` gets each new piece of the answer.

        `prompt_ids`: the messages already tokenised (ChatEngine.prepare does it before the queue).
        `seed`: the sampler's seed for this generation alone. `should_stop`: asked after each token (a stop
        string seen in `on_text`'s pieces); the model stops within a token of its saying yes."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        ids = self.prompt_ids(messages) if prompt_ids is None else list(prompt_ids)
        budget = max_tokens
        if self.context_length is not None:
            room = self.context_length - len(ids)
            if room < 1:
                raise PromptError(
                    f"The prompt has {len(ids)} tokens; the model's context is {self.context_length} tokens."
                )
            budget = min(budget, room)
        values: dict[str, Any] = {
            "max_new_tokens": budget,
            "eos_token_id": self.stop_ids,
            "pad_token_id": self.pad_id,
        }
        if temperature >= MIN_SAMPLING_TEMPERATURE:
            config = greedy_config(do_sample=True, temperature=temperature, top_p=top_p, top_k=0, **values)
        else:
            config = greedy_config(do_sample=False, **values)
        new: list[int] = []
        pieces = _Detokenizer(self.encoder.decode)
        sent: list[str] = []

        def collect(token: int) -> None:
            new.append(token)
            if on_text is None or token in self.stop_ids:
                return
            piece = pieces.add(token)
            if piece:
                sent.append(piece)
                on_text(piece)

        class _AskCaller(StoppingCriteria):
            # Asked before the streamer gets the step's token: a stop string ends it a token later.
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                stop = should_stop is not None and should_stop()
                return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

        input_ids = torch.tensor([ids], device=self.device)
        with torch.inference_mode(), _seeded(seed, self.device):
            self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                generation_config=config,
                streamer=_TokenSink(collect),
                stopping_criteria=StoppingCriteriaList([_AskCaller()] if should_stop is not None else []),
            )
        finished = bool(new) and new[-1] in self.stop_ids
        text = self.encoder.decode(new[:-1] if finished else new)
        streamed = "".join(sent)
        if on_text is not None and text.startswith(streamed) and len(text) > len(streamed):
            on_text(text[len(streamed) :])  # what the last pieces held back (an incomplete character)
        return Generation(
            text=text,
            finish_reason="stop" if finished else "length",
            prompt_tokens=len(ids),
            completion_tokens=len(new),
        )
