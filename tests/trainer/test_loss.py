"""The chunked linear cross-entropy equals F.cross_entropy over the full logits: value and gradients."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from tt_trainer.loss import (
    CHUNK_LOGIT_ELEMENTS,
    IGNORE_INDEX,
    default_chunk_tokens,
    head_options,
    linear_cross_entropy,
    linear_cross_entropy_sum,
)

N, H, V = 37, 16, 50  # 37 positions: every chunk size below leaves an uneven last chunk
TOL = 1e-5


def _inputs(seed: int = 0, *, weight_grad: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(N, H, generator=generator, dtype=torch.float64).float().requires_grad_()
    weight = (torch.randn(V, H, generator=generator) * 0.5).requires_grad_(weight_grad)
    targets = torch.randint(0, V, (N,), generator=generator)
    return hidden, weight, targets


def _reference(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    logit_scale: float = 1.0,
    softcap: float | None = None,
) -> torch.Tensor:
    """What the model's head and the trainer did before: full logits, upcast, F.cross_entropy summed."""
    logits = (hidden @ weight.t()) * logit_scale
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    return F.cross_entropy(logits.float(), targets, reduction="sum", ignore_index=IGNORE_INDEX)


def _grads(loss: torch.Tensor, *tensors: torch.Tensor) -> list[torch.Tensor | None]:
    for t in tensors:
        t.grad = None
    loss.backward()
    return [t.grad for t in tensors]


def _assert_close(actual: torch.Tensor | None, expected: torch.Tensor | None) -> None:
    assert actual is not None and expected is not None
    torch.testing.assert_close(actual, expected, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("chunk_tokens", [1, 5, 8, 36, 37, 64, None])
@pytest.mark.parametrize(
    ("logit_scale", "softcap"), [(1.0, None), (1 / 8, None), (1.0, 3.0), (0.5, 2.0)], ids=str
)
def test_value_and_gradients_equal_the_full_logits(
    chunk_tokens: int | None, logit_scale: float, softcap: float | None
) -> None:
    hidden, weight, targets = _inputs()
    expected = _reference(hidden, weight, targets, logit_scale=logit_scale, softcap=softcap)
    expected_grads = _grads(expected, hidden, weight)
    loss = linear_cross_entropy_sum(
        hidden, weight, targets, chunk_tokens=chunk_tokens, logit_scale=logit_scale, softcap=softcap
    )
    assert loss.dtype == torch.float32 and loss.dim() == 0
    torch.testing.assert_close(loss, expected, rtol=TOL, atol=TOL)
    for actual, wanted in zip(_grads(loss, hidden, weight), expected_grads, strict=True):
        _assert_close(actual, wanted)


def test_a_frozen_head_gets_no_gradient() -> None:
    hidden, weight, targets = _inputs(1, weight_grad=False)
    expected = _reference(hidden, weight, targets)
    (expected_hidden,) = _grads(expected, hidden)
    loss = linear_cross_entropy_sum(hidden, weight, targets, chunk_tokens=6)
    (actual_hidden,) = _grads(loss, hidden)
    _assert_close(actual_hidden, expected_hidden)
    assert weight.grad is None


def test_a_tied_head_sums_its_share_with_the_embedding() -> None:
    """Tied embeddings: one tensor is both the input table and the head; its gradient is the sum of both."""
    hidden, weight, targets = _inputs(2)
    ids = torch.arange(N) % V

    def total(loss_fn: object) -> torch.Tensor:
        inputs = weight[ids] * 0.1 + hidden  # the embedding's use of the tied weight
        return loss_fn(inputs)  # type: ignore[operator]

    expected_grads = _grads(total(lambda x: _reference(x, weight, targets)), hidden, weight)
    actual = total(lambda x: linear_cross_entropy_sum(x, weight, targets, chunk_tokens=10))
    for got, wanted in zip(_grads(actual, hidden, weight), expected_grads, strict=True):
        _assert_close(got, wanted)


def test_ignored_positions_add_nothing() -> None:
    hidden, weight, targets = _inputs(3)
    targets[::3] = IGNORE_INDEX
    expected = _reference(hidden, weight, targets)
    expected_grads = _grads(expected, hidden, weight)
    loss = linear_cross_entropy_sum(hidden, weight, targets, chunk_tokens=4, softcap=None)
    torch.testing.assert_close(loss, expected, rtol=TOL, atol=TOL)
    for actual, wanted in zip(_grads(loss, hidden, weight), expected_grads, strict=True):
        _assert_close(actual, wanted)
    assert hidden.grad is not None and not hidden.grad[::3].any()


def test_the_incoming_gradient_scales_both_gradients() -> None:
    """The trainer divides by the step's label tokens after the sum: backward must carry that factor."""
    hidden, weight, targets = _inputs(4)
    expected_grads = _grads(_reference(hidden, weight, targets) / 17, hidden, weight)
    loss = linear_cross_entropy_sum(hidden, weight, targets, chunk_tokens=9) / 17
    for actual, wanted in zip(_grads(loss, hidden, weight), expected_grads, strict=True):
        _assert_close(actual, wanted)


def test_no_gradients_without_grad_mode() -> None:
    hidden, weight, targets = _inputs(5)
    with torch.no_grad():
        loss = linear_cross_entropy_sum(hidden, weight, targets, chunk_tokens=7)
        expected = _reference(hidden, weight, targets)
    assert not loss.requires_grad
    torch.testing.assert_close(loss, expected, rtol=TOL, atol=TOL)


def test_bf16_autocast_matches_the_autocast_head() -> None:
    """Under autocast the head's matmul runs in bf16 (as the model's lm_head would); the softmax in fp32."""
    hidden, weight, targets = _inputs(6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = F.cross_entropy((hidden @ weight.t()).float(), targets, reduction="sum")
        loss = linear_cross_entropy_sum(hidden, weight, targets, chunk_tokens=8)
    expected_grads = _grads(expected, hidden, weight)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, expected, rtol=1e-3, atol=1e-3)
    for actual, wanted in zip(_grads(loss, hidden, weight), expected_grads, strict=True):
        assert actual is not None and wanted is not None
        assert actual.dtype == wanted.dtype
        torch.testing.assert_close(actual, wanted, rtol=2e-2, atol=2e-2)


def test_bf16_weights_and_hidden_states() -> None:
    hidden, weight, targets = _inputs(7)
    hidden16 = hidden.detach().bfloat16().requires_grad_()
    weight16 = weight.detach().bfloat16().requires_grad_()
    expected = _reference(hidden16, weight16, targets)
    expected_grads = _grads(expected, hidden16, weight16)
    loss = linear_cross_entropy_sum(hidden16, weight16, targets, chunk_tokens=16)
    torch.testing.assert_close(loss, expected, rtol=1e-3, atol=1e-3)
    for actual, wanted in zip(_grads(loss, hidden16, weight16), expected_grads, strict=True):
        assert actual is not None and wanted is not None and actual.dtype == torch.bfloat16
        torch.testing.assert_close(actual.float(), wanted.float(), rtol=2e-2, atol=2e-2)


def test_shapes_and_arguments_are_checked() -> None:
    hidden, weight, targets = _inputs()
    with pytest.raises(ValueError, match="shapes"):
        linear_cross_entropy_sum(hidden, weight, targets[:-1])
    with pytest.raises(ValueError, match="chunk_tokens"):
        linear_cross_entropy_sum(hidden, weight, targets, chunk_tokens=0)
    with pytest.raises(ValueError, match="softcap"):
        linear_cross_entropy_sum(hidden, weight, targets, softcap=0.0)


def test_default_chunks_shrink_with_the_vocabulary() -> None:
    assert default_chunk_tokens(151_936) == CHUNK_LOGIT_ELEMENTS // 151_936 == 441
    assert default_chunk_tokens(262_144) == 256 < default_chunk_tokens(49_152)
    assert default_chunk_tokens(10**9) == 1


def test_head_options_read_granite_and_gemma_configs() -> None:
    granite = SimpleNamespace(logits_scaling=8.0)
    assert head_options(granite) == {"logit_scale": 0.125, "softcap": None}
    text = SimpleNamespace(final_logit_softcapping=30.0)
    gemma = SimpleNamespace(get_text_config=lambda: text)
    assert head_options(gemma) == {"logit_scale": 1.0, "softcap": 30.0}
    assert head_options(SimpleNamespace()) == {"logit_scale": 1.0, "softcap": None}


@pytest.mark.parametrize("family", ["granite-3.3", "gemma-4", "llama-3.2"])
def test_the_tiny_families_heads_give_their_own_loss(family: str) -> None:
    """With each family's head options, the chunked loss equals the loss of the model's own logits."""
    from tests.trainer.families import build

    model = build(family)
    if family == "gemma-4":  # the hub config caps at 30; a low cap makes the tiny model's logits feel it
        model.config.get_text_config().final_logit_softcapping = 0.5
    ids = torch.randint(3, 100, (1, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True)
        targets = ids[0, 1:]
        expected = F.cross_entropy(out.logits[0, :-1].float(), targets, reduction="sum")
        hidden = out.hidden_states[-1][0, :-1]
        options = head_options(model.config)
        assert options == {"granite-3.3": {"logit_scale": 0.125, "softcap": None}}.get(family, options)
        loss = linear_cross_entropy_sum(hidden, model.get_output_embeddings().weight, targets, **options)
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("chunk_tokens", [1, 8, None])
@pytest.mark.parametrize(("logit_scale", "softcap"), [(1.0, None), (0.5, 2.0)], ids=str)
def test_hits_count_the_targets_that_are_the_argmax(
    chunk_tokens: int | None, logit_scale: float, softcap: float | None
) -> None:
    hidden, weight, targets = _inputs(3)
    logits = (hidden @ weight.t()) * logit_scale
    predicted = logits.argmax(dim=1)
    # Make a third of the targets right and ignore a few, so every kind of position is there.
    targets = torch.where(torch.arange(N) % 3 == 0, predicted, targets)
    targets[::7] = IGNORE_INDEX
    expected = int(((predicted == targets) & (targets != IGNORE_INDEX)).sum())
    assert 0 < expected < N
    loss, hits = linear_cross_entropy(
        hidden, weight, targets, chunk_tokens=chunk_tokens, logit_scale=logit_scale, softcap=softcap
    )
    assert int(hits) == expected and not hits.requires_grad
    _assert_close(loss, _reference(hidden, weight, targets, logit_scale=logit_scale, softcap=softcap))
