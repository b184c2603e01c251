"""The GPU memory plan of a LoRA training job: bytes by kind, the micro-batch token cap, checkpointing, fits.

Pure arithmetic on a model's dimensions (the catalogue's `ModelArchitecture`), so that the estimate side, the
benchmarks and — through the hyperparameters the job is given — the trainer all use the same numbers: the
trainer image may not import tt_core (ARCHITECTURE.md §1), so it receives the plan's decisions as the
hyperparameters `micro_batch_tokens` and `gradient_checkpointing` (`MemoryPlan.trainer_hyperparameters`).

What the plan counts, for bf16 weights and activations with fp32 LoRA adapters and AdamW (the trainer's
set-up on GPUs):
- parameters: every frozen weight the trainer loads, at 2 bytes;
- LoRA: adapters on every linear layer of the language model (q, k, v, o and the MLP), weights and gradients
  in fp32; optimizer: AdamW's two fp32 moments;
- activations, per token and decoder layer, what autograd keeps for backward: the two RMSNorms (fp32 input and
  normalised copy), the copy and mask LoRA dropout makes for each adapted layer, q/k/v/output of attention (k
  and v repeated to every head) and the MLP's intermediates; attention itself is memory-efficient (flash or
  sdpa's efficient kernel: no S² scores) except on `wide_head_layers`. With gradient checkpointing only each
  layer's input is kept, plus one layer recomputed during backward (counted twice: its activations and their
  gradients);
- loss: tt_trainer.loss's chunked cross-entropy — one chunk of fp32 logits (CHUNK_LOGIT_ELEMENTS) and the
  gradient of the hidden states of the micro-batch's tokens — never the logits of every token;
- runtime: the CUDA context, cuBLAS workspaces and allocator slack.

A job fits when the total leaves at least HEADROOM of the GPU free. Qwen3.5's linear-attention layers and
Gemma 4's shared-KV layers are counted as ordinary attention layers of the same width: estimates, not
measurements (bench/trainer_gpu.py measures on a GPU).
"""

from __future__ import annotations

from dataclasses import dataclass

from tt_core.models.base_models import CATALOGUE, ModelArchitecture
from tt_core.schema import TrainingProfile

HEADROOM = 0.10
GIGABYTE = 10**9
# CUDA context (~0.5 GB with torch's kernels), cuBLAS workspaces and the caching allocator's slack.
RUNTIME_BYTES = 1 * 2**30
# tt_trainer.loss.CHUNK_LOGIT_ELEMENTS (a test keeps the two equal: tt_core may not import the trainer).
CHUNK_LOGIT_ELEMENTS = 1 << 26
# tt_trainer.config: the micro-batch is min(batch_size, micro_batch_size or 4) sequences.
DEFAULT_MICRO_BATCH_SIZE = 4
WEIGHT_BYTES = 2  # bf16 frozen weights and activations
ADAPTER_BYTES = 4  # fp32 LoRA weights and their gradients
ADAM_BYTES = 8  # two fp32 moments per trainable parameter
_FP32 = 4


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes on one GPU at the plan's micro-batch."""

    parameters: int
    lora: int
    optimizer: int
    activations: int
    loss: int
    runtime: int

    @property
    def total(self) -> int:
        return self.parameters + self.lora + self.optimizer + self.activations + self.loss + self.runtime


@dataclass(frozen=True)
class MemoryPlan:
    """What a job does on its GPU: micro-batches of at most micro_batch_tokens positions (whole sequences of
    max_seq_length), with or without gradient checkpointing, and whether that fits with HEADROOM to spare."""

    gpu_memory_bytes: int
    max_seq_length: int
    micro_batch_sequences: int
    gradient_checkpointing: bool
    memory: MemoryBreakdown
    fits: bool

    @property
    def micro_batch_tokens(self) -> int:
        return self.micro_batch_sequences * self.max_seq_length

    @property
    def headroom(self) -> float:
        """The share of the GPU left free."""
        return 1 - self.memory.total / self.gpu_memory_bytes

    def trainer_hyperparameters(self) -> dict[str, str]:
        """The plan's decisions as the trainer's hyperparameters (SageMaker passes strings)."""
        return {
            "micro_batch_tokens": str(self.micro_batch_tokens),
            "gradient_checkpointing": "true" if self.gradient_checkpointing else "false",
        }


def lora_parameters(arch: ModelArchitecture, rank: int) -> int:
    """Trainable parameters of rank-`rank` adapters on every linear layer of the language model."""
    hidden, q, kv = arch.hidden_size, arch.attention_heads * arch.head_dim, arch.kv_heads * arch.head_dim
    attention = (hidden + q) + 2 * (hidden + kv) + (q + hidden)
    per_layer_input = 2 * (hidden + arch.per_layer_input_size) if arch.per_layer_input_size else 0
    total = 0
    for layer in range(arch.num_layers):
        width = _mlp_width(arch, layer)
        mlp = (3 if arch.gated_mlp else 2) * (hidden + width)
        total += rank * (attention + mlp + per_layer_input)
    return total


def _mlp_width(arch: ModelArchitecture, layer: int) -> int:
    # Gemma 4 E2B's double-wide MLPs are its last layers (the KV-sharing ones).
    wide = layer >= arch.num_layers - arch.wide_mlp_layers
    return arch.intermediate_size * (2 if wide else 1)


def _layer_bytes_per_token(arch: ModelArchitecture, mlp_width: int, *, lora_dropout: bool) -> int:
    """What autograd keeps for one token in one decoder layer (see the module docstring)."""
    b, hidden = WEIGHT_BYTES, arch.hidden_size
    q = arch.attention_heads * arch.head_dim
    norm = (2 * _FP32 + b) * hidden  # fp32 input and normalised copy, bf16 output
    dropout = b + 1 if lora_dropout else 0  # the dropped-out copy and its mask, per adapted layer
    attention = norm + 3 * dropout * hidden + dropout * q + 4 * b * q
    if arch.gated_mlp:  # gate, up and act(gate) kept; the product is copied by the down adapter's dropout
        mlp = norm + 2 * dropout * hidden + 3 * b * mlp_width + dropout * mlp_width
    else:  # c_fc output kept by the activation; its output copied by c_proj's dropout
        mlp = norm + dropout * hidden + b * mlp_width + dropout * mlp_width
    extra = 0
    if arch.per_layer_input_size:  # gate (hidden → p), product with the layer's embedding, projection back
        extra = norm + dropout * hidden + (3 * b + dropout) * arch.per_layer_input_size
    return attention + mlp + extra


def activation_bytes(
    arch: ModelArchitecture,
    *,
    sequences: int,
    max_seq_length: int,
    gradient_checkpointing: bool,
    lora_dropout: bool = True,
) -> int:
    """Activation memory of one micro-batch of `sequences` sequences of max_seq_length tokens."""
    tokens = sequences * max_seq_length
    layers = [
        _layer_bytes_per_token(arch, _mlp_width(arch, i), lora_dropout=lora_dropout)
        for i in range(arch.num_layers)
    ]
    # sdpa's math kernel on heads wider than the fused kernels take: fp32 scores and bf16 probabilities.
    scores = arch.attention_heads * max_seq_length * max_seq_length * (_FP32 + WEIGHT_BYTES) * sequences
    # Embedding output, final norm and the hidden states handed to the loss.
    outer = tokens * (WEIGHT_BYTES + 2 * _FP32 + 2 * WEIGHT_BYTES) * arch.hidden_size
    # Packed rows get block-diagonal boolean masks (sliding-window families a second one).
    masks = 2 * sequences * max_seq_length * max_seq_length
    if gradient_checkpointing:
        kept = tokens * WEIGHT_BYTES * arch.hidden_size * arch.num_layers
        working = 2 * (tokens * max(layers) + (scores if arch.wide_head_layers else 0))
        return kept + working + outer + masks
    return tokens * sum(layers) + arch.wide_head_layers * scores + outer + masks


def loss_bytes(arch: ModelArchitecture, *, tokens: int) -> int:
    """tt_trainer.loss at its default chunk: one chunk's logits (bf16 matmul output, fp32 copy, bf16 gradient
    for the backward matmul, a second fp32 buffer under a softcap) and the hidden states' gradient."""
    chunk = max(1, CHUNK_LOGIT_ELEMENTS // arch.vocab_size)
    per_logit = WEIGHT_BYTES + _FP32 + WEIGHT_BYTES + (_FP32 if arch.final_logit_softcapping else 0)
    hidden = tokens * arch.hidden_size * 2 * WEIGHT_BYTES  # the label positions' states and their gradient
    return min(chunk, tokens) * arch.vocab_size * per_logit + hidden


def memory_breakdown(
    arch: ModelArchitecture,
    *,
    sequences: int,
    max_seq_length: int,
    lora_rank: int,
    gradient_checkpointing: bool,
    lora_dropout: bool = True,
) -> MemoryBreakdown:
    adapters = lora_parameters(arch, lora_rank)
    return MemoryBreakdown(
        parameters=arch.parameters * WEIGHT_BYTES,
        lora=adapters * 2 * ADAPTER_BYTES,
        optimizer=adapters * ADAM_BYTES,
        activations=activation_bytes(
            arch,
            sequences=sequences,
            max_seq_length=max_seq_length,
            gradient_checkpointing=gradient_checkpointing,
            lora_dropout=lora_dropout,
        ),
        loss=loss_bytes(arch, tokens=sequences * max_seq_length),
        runtime=RUNTIME_BYTES,
    )


def plan_memory(
    arch: ModelArchitecture,
    *,
    gpu_memory_gb: float,
    max_seq_length: int,
    micro_batch_size: int,
    lora_rank: int,
    lora_dropout: bool = True,
) -> MemoryPlan:
    """The job's set-up on its GPU: the full micro-batch (micro_batch_size sequences) without gradient
    checkpointing when that fits; else checkpointing (a third more compute, a fraction of the activations)
    with the most sequences per micro-batch that fit. Without checkpointing the activations are most of the
    memory, so a plan that shrank the micro-batch to do without it would hang on the estimate's accuracy;
    with it they are a small share. A plan that does not fit one checkpointed sequence has fits=False."""
    budget = int(gpu_memory_gb * GIGABYTE)
    full = max(1, micro_batch_size)

    def plan(sequences: int, checkpointing: bool) -> MemoryPlan:
        memory = memory_breakdown(
            arch,
            sequences=sequences,
            max_seq_length=max_seq_length,
            lora_rank=lora_rank,
            gradient_checkpointing=checkpointing,
            lora_dropout=lora_dropout,
        )
        fits = 1 - memory.total / budget >= HEADROOM
        return MemoryPlan(budget, max_seq_length, sequences, checkpointing, memory, fits=fits)

    candidates = [plan(full, False), *(plan(sequences, True) for sequences in range(full, 0, -1))]
    return next((candidate for candidate in candidates if candidate.fits), candidates[-1])


def architecture_of(base_model: str) -> ModelArchitecture | None:
    """The catalogue's dimensions of a canonical base model id."""
    return next((m.architecture for m in CATALOGUE if m.id == base_model), None)


def plan_for_job(
    base_model: str,
    profile: TrainingProfile,
    *,
    max_seq_length: int,
    batch_size: int,
    lora_rank: int,
    lora_dropout: float = 0.05,
) -> MemoryPlan | None:
    """The plan of a run's job on its training profile's GPU; None for a CPU profile (no GPU memory to plan)
    or a model outside the catalogue."""
    arch = architecture_of(base_model)
    if arch is None or not profile.gpus or profile.gpu_memory_gb is None:
        return None
    return plan_memory(
        arch,
        gpu_memory_gb=profile.gpu_memory_gb,
        max_seq_length=max_seq_length,
        micro_batch_size=min(batch_size, DEFAULT_MICRO_BATCH_SIZE),
        lora_rank=lora_rank,
        lora_dropout=lora_dropout > 0,
    )
