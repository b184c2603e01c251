"""Tuned Tensor shared runtime code (the Lambda layer): models, services, ports, domains, adapters, wiring."""

__version__ = "0.1.0"
