"""How long the run workflow waits before its next look at the training job (ARCHITECTURE.md §4).

A Step Functions execution may hold 25,000 history events, and every look at the job costs a few
(Wait, PollTraining, the Choice). So the waits grow with the run: the configured interval for the first
minutes of training (progress stays live while the machine starts and the first epoch runs), then
`POLL_GROWTH` times longer at each poll, up to a cap that the run's timeout divides into at most
`MAX_CAPPED_POLLS` waits. However long a run may last, it polls a bounded number of times.
"""

from __future__ import annotations

import math

# The first 10 minutes of polling stay at the configured interval.
POLL_STEADY_SECONDS = 600
# After them each wait is this much longer than the one before…
POLL_GROWTH = 1.25
# …up to the longest wait: the configured interval, or the run timeout divided into this many waits
# (24 h: 87 s; 672 h: 40 min), whichever is longer.
MAX_CAPPED_POLLS = 1000


def steady_polls(interval_seconds: int) -> int:
    """How many polls happen at the configured interval before the waits start to grow."""
    return math.ceil(POLL_STEADY_SECONDS / interval_seconds)


def longest_wait_seconds(interval_seconds: int, run_timeout_seconds: float) -> int:
    """The cap the waits grow to."""
    return max(interval_seconds, math.ceil(run_timeout_seconds / MAX_CAPPED_POLLS))


def next_poll_seconds(
    polls: int, *, interval_seconds: int, run_timeout_seconds: float, elapsed_seconds: float
) -> int:
    """The wait after the `polls`-th look at the job, `elapsed_seconds` into a run of that timeout.

    The wait never reaches past the run's deadline by more than the configured interval, so a run
    that runs out of time is failed (and one that finishes just in time is seen) promptly.
    """
    cap = longest_wait_seconds(interval_seconds, run_timeout_seconds)
    grown = polls - steady_polls(interval_seconds)
    # The exponent that reaches the cap: beyond it the float power would only overflow.
    to_cap = math.ceil(math.log(cap / interval_seconds, POLL_GROWTH)) if cap > interval_seconds else 0
    wait = min(cap, math.ceil(interval_seconds * POLL_GROWTH ** min(max(grown, 0), to_cap)))
    remaining = math.ceil(run_timeout_seconds - elapsed_seconds)
    return max(1, min(wait, max(interval_seconds, remaining)))
