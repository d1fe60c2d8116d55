"""Interleaved rounds, and the ratios of their times with intervals and verdicts.

A ratio of two times taken minutes apart divides two states of a shared machine: its
speed drifts between them. Here each side runs the same unit of work once a round, one
side after the other in a freshly shuffled order, so a round's ratio divides two times
taken moments apart. The result is the median of the rounds' ratios, with a
distribution-free interval for that median, and the rounds go on until every interval is
narrow enough or the time limit is spent. Google Benchmark interleaves its repetitions in
random order for the same reason (``--benchmark_enable_random_interleaving``), and
Kalibera and Jones ("Rigorous benchmarking in reasonable time", ISMM 2013) give intervals
for ratios of execution times.

A verdict reads the interval against a target, an upper bound on the ratio: ``met``
wholly within it, ``missed`` wholly beyond it, ``undecided`` across it. An interval wholly
below a physical floor (an epoch cannot take less time than its own matrix products) is a
``measurement fault``, never a result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

CONFIDENCE = 0.95
# The fewest rounds whose 95% interval leaves the most extreme round out on each side (the
# second-smallest to the second-largest). At 6, the fewest with any interval, it is the
# smallest to the largest: a round that a hiccup made slow decides it, and in the 12-06
# publish one slow round of the fastest implementation made scaling cells ties for all
# (H 128, batch 32, 6 rounds: keras-tuned at 5.9x the fastest, interval [0.99, 6.49]).
MIN_ROUNDS = 9
NARROW = 0.10   # an interval within +-10% of its median is narrow enough
VERDICTS = ("met", "missed", "undecided", "measurement fault")


def median_interval(values: Sequence[float],
                    confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """The median of ``values`` and an interval that holds the true median with at least
    ``confidence``, whatever the distribution: the order statistics x(k) and x(n+1-k) for
    the largest k with P(k <= B <= n-k) >= confidence, B ~ Binomial(n, 1/2) (the count of
    values below the median). NaN bounds where there are too few values for any k."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    k, below = 0, 1  # below: 2^n P(B <= k), in integers (exact for any n)
    while k + 1 <= n - k - 1 and Fraction(2 ** n - 2 * below, 2 ** n) >= confidence:
        k += 1  # P(k <= B <= n-k) = 1 - 2 P(B <= k-1) holds the median at ``confidence``
        below += math.comb(n, k)
    median = float(np.median(x))
    return (median, float(x[k - 1]), float(x[n - k])) if k else (median, math.nan, math.nan)


def epoch_part(n: int, batch: int, p: int, parts: int) -> tuple[int, int]:
    """The samples [lo, hi) of part ``p`` of ``parts`` of an epoch of ``n`` samples: whole
    batches, as even as they divide (the epoch's last batch may be short)."""
    steps = -(-n // batch)
    return p * steps // parts * batch, min(n, (p + 1) * steps // parts * batch)


@dataclass(frozen=True)
class Ratio:
    """The median of per-round ratios, its interval (NaN: too few rounds) and the rounds."""

    median: float
    low: float
    high: float
    rounds: int

    @classmethod
    def of(cls, numerator: Sequence[float], denominator: Sequence[float]) -> Ratio:
        """From two sides' times, round by round (the i-th of each taken in one round)."""
        if len(numerator) != len(denominator):
            raise ValueError(f"{len(numerator)} rounds against {len(denominator)}: a ratio "
                             "pairs the two sides' times round by round")
        a, b = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
        if not (np.isfinite(a).all() and np.isfinite(b).all() and (a > 0).all()
                and (b > 0).all()):
            raise ValueError("a time that is not a positive number of seconds: a unit that "
                             "failed, or a clock that did not move")
        ratios = a / b
        return cls(*median_interval(ratios), rounds=len(ratios))

    @property
    def half_width(self) -> float:
        """The interval's larger distance from the median, relative to it (inf: none)."""
        if math.isnan(self.low):
            return math.inf
        return max(self.median - self.low, self.high - self.median) / self.median

    def verdict(self, target: float, floor: float | None = None) -> str:
        """``met``, ``missed`` or ``undecided`` against ``target`` (the most the ratio may
        be); ``measurement fault`` where the whole interval lies below ``floor``."""
        if math.isnan(self.low):
            return "undecided"
        if floor is not None and self.high < floor:
            return "measurement fault"
        if self.high <= target:
            return "met"
        return "missed" if self.low > target else "undecided"


def interleave(units: Mapping[str, Callable[[], float | None]], pairs: Sequence[tuple[str, str]],
               rng: np.random.Generator, *, min_rounds: int = MIN_ROUNDS,
               max_rounds: int = 200, time_limit_s: float = math.inf,
               narrow: float = NARROW, done: Callable[[], bool] | None = None,
               on_round: Callable[[int], None] = lambda rounds: None,
               clock: Callable[[], float] = time.monotonic,
               pause_s: float = 0.0) -> dict[str, list[float]]:
    """Run every unit once a round, in a freshly shuffled order, nothing between them but
    ``pause_s`` of sleep (untimed: the last unit's process's threads settle); a
    unit returns the seconds its work took (measured where it ran), or None where it
    failed: the rounds then end with the last whole one. Once ``min_rounds`` have run,
    stop as soon as ``done()`` (if given: every run at its target) says so and either
    every ratio of ``pairs`` (numerator, denominator) is within ``narrow`` of its median
    or ``time_limit_s`` is spent; or at ``max_rounds``. ``on_round`` is told each round's
    number as it ends. Returns each unit's times, round by round.

    Within a round the order still matters where the machine drifts: each round's ratio
    leans with the side that ran first, so the median of many is within the drift of one
    round of the truth, not on it (tests/test_rounds.py measures this)."""
    names = list(units)
    times: dict[str, list[float]] = {name: [] for name in names}
    start = clock()
    def narrow_enough() -> bool:
        return all(Ratio.of(times[a], times[b]).half_width <= narrow for a, b in pairs)

    for rounds in range(1, max_rounds + 1):
        for i in rng.permutation(len(names)):
            time.sleep(pause_s)
            seconds = units[names[i]]()
            if seconds is None:
                return {name: t[:rounds - 1] for name, t in times.items()}
            times[names[i]].append(float(seconds))
        on_round(rounds)
        if rounds >= min_rounds and (done is None or done()) and (
                clock() - start >= time_limit_s or narrow_enough()):
            break
    return times
