"""Tuned Tensor trainer: the SageMaker training container's package (`python -m tt_trainer`)."""
