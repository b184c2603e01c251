"""How sure an evaluation is (PRODUCT.md §10.3): Wilson intervals, a paired bootstrap, the verdict."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from tt_core.models.evaluation import Interval, Verdict

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile
BOOTSTRAP_RESAMPLES = 2000
MIN_VERDICT_ROWS = 10
NARROW_ENOUGH_ROWS = 30  # under this many rows an insight says how wide the pass-rate interval is
# Resamples are drawn in chunks of about this many row indices, so a 10,000-row split needs a few
# megabytes at a time instead of 2,000 × 10,000 indices at once.
_CHUNK_CELLS = 2_000_000


def wilson_interval(passed: int, total: int) -> Interval | None:
    """The Wilson score 95% interval of passed / total, 4 decimals; None over zero rows."""
    if total <= 0:
        return None
    share, z2 = passed / total, Z95 * Z95
    centre = share + z2 / (2 * total)
    spread = Z95 * math.sqrt(share * (1 - share) / total + z2 / (4 * total * total))
    scale = 1 + z2 / total
    # Clamped: at 0 or total passes one bound is 0 or 1 exactly, give or take a float's last bit.
    return (round(max(0.0, (centre - spread) / scale), 4), round(min(1.0, (centre + spread) / scale), 4))


def _seed(run_id: str) -> int:
    """A seed from the run id that is the same in every process (str hashes are salted per process)."""
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big")


def delta_interval(deltas: Sequence[float], *, seed: str) -> Interval | None:
    """95% percentile interval of the mean per-row delta over 2,000 paired bootstrap resamples.

    Each resample draws the rows (both scores of a row together) with replacement; `seed` (the run
    id) fixes the draws, so a run's interval never changes when it is computed again.
    """
    if not deltas:
        return None
    values = np.asarray(deltas, dtype=np.float64)
    rows = len(values)
    rng = np.random.default_rng(_seed(seed))
    chunk = max(1, _CHUNK_CELLS // rows)
    means = np.empty(BOOTSTRAP_RESAMPLES)
    for start in range(0, BOOTSTRAP_RESAMPLES, chunk):
        stop = min(BOOTSTRAP_RESAMPLES, start + chunk)
        picks = rng.integers(0, rows, size=(stop - start, rows))
        means[start:stop] = values[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return (round(float(low), 4), round(float(high), 4))


def verdict(rows: int, interval: Interval | None) -> Verdict:
    """`better` / `worse` when at least 10 rows put the whole delta interval above / below 0."""
    if rows < MIN_VERDICT_ROWS or interval is None:
        return "inconclusive"
    low, high = interval
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "inconclusive"


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def sample_size_insights(rows: int, pass_rate_interval: Interval | None) -> list[str]:
    """Sentences for small evaluations: how wide the tuned pass rate's interval is, and why no verdict."""
    if rows <= 0 or pass_rate_interval is None:
        return []
    insights = []
    if rows < NARROW_ENOUGH_ROWS:
        low, high = pass_rate_interval
        were = "was" if rows == 1 else "were"
        insights.append(
            f"Only {_rows(rows)} {were} evaluated: the tuned pass rate could be anywhere from "
            f"{low:.0%} to {high:.0%}."
        )
    if rows < MIN_VERDICT_ROWS:
        insights.append(
            f"Tuned vs base is inconclusive on {_rows(rows)}: no verdict under {MIN_VERDICT_ROWS} rows."
        )
    return insights
