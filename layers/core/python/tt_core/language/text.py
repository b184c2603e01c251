"""Text normalisation shared by scoring, deduplication and lint (PRODUCT.md §10.2)."""

from __future__ import annotations

import re

_WHITESPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Trim, collapse whitespace runs to one space, Unicode case-fold."""
    return _WHITESPACE.sub(" ", text.strip()).casefold()
