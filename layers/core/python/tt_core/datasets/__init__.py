"""Datasets: the streaming validator of uploaded JSONL files (PRODUCT.md §8)."""
