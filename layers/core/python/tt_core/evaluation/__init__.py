"""Evaluation: scoring, the LLM judge, the eval summary, output diagnostics and the run report."""
