"""Chunked linear cross-entropy: the loss of a vocabulary head without the logits of every label position.

The full-vocabulary logits of all label positions, upcast to fp32, are the largest tensor of a training step
(4,096 label tokens × a 151,936-token vocabulary = 2.5 GB, and autograd keeps about three of them). Here
the head is applied to a few positions at a time and each chunk's gradients with respect to the hidden
states and the head's weight are computed in the forward pass (the approach of Liger Kernel's fused linear
cross-entropy), so no more than one chunk's logits exist at any time and backward only scales the stored
gradients.

Liger's own kernels need Triton on CUDA, so they can neither run nor be tested on the CPU machines that run
this project's tests: this module is plain PyTorch, our own chunking, used on every device and for every
family. Granite's `logits_scaling` and Gemma's `final_logit_softcapping` are the `logit_scale` and
`softcap` arguments (`head_options` reads them from a transformers config).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable

IGNORE_INDEX = -100
# One chunk's fp32 logits hold at most this many elements (256 MB): the loss's working memory does not grow
# with the number of label tokens, and a larger vocabulary gets proportionally fewer positions per chunk.
CHUNK_LOGIT_ELEMENTS = 1 << 26


def default_chunk_tokens(vocab_size: int) -> int:
    """Positions per chunk for a vocabulary: as many as keep a chunk's logits within CHUNK_LOGIT_ELEMENTS."""
    return max(1, CHUNK_LOGIT_ELEMENTS // max(1, vocab_size))


def head_options(config: Any) -> dict[str, Any]:
    """`logit_scale` and `softcap` for a transformers config: Granite divides its logits by `logits_scaling`,
    Gemma caps them with `final_logit_softcapping` (multimodal configs keep both in their text config)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    scaling = getattr(text, "logits_scaling", None) or 1.0
    softcap = getattr(text, "final_logit_softcapping", None)
    return {"logit_scale": 1.0 / float(scaling), "softcap": float(softcap) if softcap else None}


def linear_cross_entropy_sum(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, **options: Any
) -> torch.Tensor:
    """Summed cross-entropy only: `linear_cross_entropy`'s loss (same arguments)."""
    return linear_cross_entropy(hidden, weight, targets, **options)[0]


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    chunk_tokens: int | None = None,
    logit_scale: float = 1.0,
    softcap: float | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy of `targets` [N] under the logits softcap(hidden [N, H] @ weight [V, H]ᵀ × scale),
    and how many targets are the logits' argmax (token accuracy's numerator, no gradient).

    The matmul runs in the autocast dtype when autocast is on (else the weight's dtype), the softmax maths
    in fp32, chunk_tokens positions at a time (None: `default_chunk_tokens(V)`). Gradients flow to `hidden`
    and to `weight` when they require them (a frozen head gets none; a tied one gets its share). Positions
    whose target is ignore_index count for nothing. Returns an fp32 scalar and an int64 scalar.
    """
    if hidden.dim() != 2 or weight.dim() != 2 or targets.dim() != 1:
        raise ValueError("hidden must be [N, H], weight [V, H] and targets [N]")
    if hidden.shape[0] != targets.shape[0] or hidden.shape[1] != weight.shape[1]:
        raise ValueError(
            f"shapes do not match: hidden {tuple(hidden.shape)}, weight {tuple(weight.shape)}, "
            f"targets {tuple(targets.shape)}"
        )
    chunk = default_chunk_tokens(weight.shape[0]) if chunk_tokens is None else chunk_tokens
    if chunk < 1:
        raise ValueError(f"chunk_tokens must be at least 1, not {chunk}")
    if softcap is not None and softcap <= 0:
        raise ValueError(f"softcap must be positive, not {softcap}")
    grad_on = torch.is_grad_enabled()
    loss, hits = _LinearCrossEntropySum.apply(
        hidden,
        weight,
        targets,
        chunk,
        float(logit_scale),
        None if softcap is None else float(softcap),
        ignore_index,
        grad_on and hidden.requires_grad,
        grad_on and weight.requires_grad,
    )
    return loss, hits


def _compute_dtype(weight: torch.Tensor) -> torch.dtype:
    # What the model's own lm_head matmul would run in: autocast's dtype inside an autocast region.
    device_type = weight.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return weight.dtype


class _LinearCrossEntropySum(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        targets: torch.Tensor,
        chunk_tokens: int,
        logit_scale: float,
        softcap: float | None,
        ignore_index: int,
        need_hidden: bool,
        need_weight: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = _compute_dtype(weight)
        with torch.autocast(weight.device.type, enabled=False):
            # One cast of the head for the whole call (a no-op when it already has that dtype).
            head = weight.to(dtype)
            total = torch.zeros((), dtype=torch.float32, device=hidden.device)
            hits = torch.zeros((), dtype=torch.int64, device=hidden.device)
            grad_hidden = torch.empty_like(hidden) if need_hidden else None
            # fp32 accumulation over chunks: summing thousands of bf16 partial products would lose bits.
            grad_weight = (
                torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_weight else None
            )
            # One host sync for the whole call rather than one per chunk.
            masked = bool((targets == ignore_index).any())
            for start in range(0, hidden.shape[0], chunk_tokens):
                stop = start + chunk_tokens
                h = hidden[start:stop].to(dtype)
                loss, chunk_hits, grad_logits = _chunk(
                    h,
                    head,
                    targets[start:stop],
                    logit_scale=logit_scale,
                    softcap=softcap,
                    ignore_index=ignore_index,
                    masked=masked,
                    need_grad=need_hidden or need_weight,
                )
                total += loss
                hits += chunk_hits
                if grad_logits is None:
                    continue
                if grad_hidden is not None:
                    grad_hidden[start:stop] = grad_logits.to(dtype) @ head
                if grad_weight is not None:
                    grad_weight.addmm_(grad_logits.t(), h.float())
                del grad_logits
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.weight_dtype = weight.dtype
        ctx.mark_non_differentiable(hits)
        return total, hits

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor, _: Any) -> tuple[torch.Tensor | None, ...]:
        grad_hidden, grad_weight = ctx.saved_tensors
        # The loss is a scalar: its gradients are the ones computed in forward, scaled by the incoming one.
        d_hidden = None if grad_hidden is None else grad_hidden * grad_output.to(grad_hidden.dtype)
        d_weight = None if grad_weight is None else (grad_weight * grad_output).to(ctx.weight_dtype)
        return d_hidden, d_weight, None, None, None, None, None, None, None


def _chunk(
    h: torch.Tensor,
    head: torch.Tensor,
    targets: torch.Tensor,
    *,
    logit_scale: float,
    softcap: float | None,
    ignore_index: int,
    masked: bool,
    need_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Summed loss of one chunk, its argmax hits and, when asked, d loss / d (h @ headᵀ) in fp32. In-place
    maths throughout: one [chunk, V] fp32 buffer (two with a softcap) is all the chunk allocates."""
    logits = (h @ head.t()).float()
    valid = targets != ignore_index
    # Scaling by a positive factor and capping with tanh keep the order: the raw logits' argmax is the one.
    hits = ((logits.argmax(dim=1) == targets) & valid).sum()
    if logit_scale != 1.0:
        logits.mul_(logit_scale)
    tanh = None
    if softcap is not None:
        tanh = logits.div_(softcap).tanh_()
        logits = tanh * softcap
    safe = torch.where(valid, targets, torch.zeros_like(targets))
    target_logits = logits.gather(1, safe.unsqueeze(1)).squeeze(1)
    peak = logits.amax(dim=1, keepdim=True)
    probs = logits.sub_(peak).exp_()  # unnormalised softmax, in place of the logits
    sums = probs.sum(dim=1, keepdim=True)
    lse = peak.squeeze(1) + sums.squeeze(1).log()
    loss = torch.where(valid, lse - target_logits, torch.zeros_like(lse)).sum()
    if not need_grad:
        return loss, hits, None
    grad = probs.div_(sums)
    rows = torch.arange(grad.shape[0], device=grad.device)
    grad[rows, safe] -= valid.to(grad.dtype)
    if masked:
        grad.mul_(valid.unsqueeze(1).to(grad.dtype))
    if tanh is not None:
        # d/dz [cap · tanh(z / cap)] = 1 − tanh²
        grad.mul_(tanh.mul_(tanh).neg_().add_(1))
    if logit_scale != 1.0:
        grad.mul_(logit_scale)
    return loss, hits, grad
