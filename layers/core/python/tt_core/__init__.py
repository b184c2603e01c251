"""Tuned Tensor shared runtime code: models, services, ports, adapters and the composition root."""

__version__ = "0.1.0"
