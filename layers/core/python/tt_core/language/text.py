"""Text normalisation shared by scoring, deduplication and lint (PRODUCT.md §10.2)."""

from __future__ import annotations

import re

_WHITESPACE = re.compile(r"\s+")
# The reasoning a thinking model writes before its answer: "<think>…</think>", or its closing tag alone when
# the prompt opened the block (Qwen3.5's template with thinking on).
_LEADING_THINK = re.compile(r"\s*(?:<think>.*?)?</think>\s*", re.DOTALL)


def normalise(text: str) -> str:
    """Trim, collapse whitespace runs to one space, Unicode case-fold."""
    return _WHITESPACE.sub(" ", text.strip()).casefold()


def without_leading_think(text: str) -> str:
    """The text without a leading think block (PRODUCT.md §9.4): what a model output answers."""
    block = _LEADING_THINK.match(text)
    return text[block.end() :] if block else text
