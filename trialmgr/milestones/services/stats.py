"""Estimates with exact 95 % intervals, from scipy (no hand-rolled approximations).

Proportions: Clopper-Pearson (`binomtest(...).proportion_ci(method="exact")`). Rates per
unit of exposure: the exact Poisson interval from the chi-squared quantiles,
[chi2(alpha/2; 2k) / 2, chi2(1 - alpha/2; 2k + 2) / 2] events, divided by the exposure.
A ratio n/k of two nested counts (k of the n go on) is the inverse of the proportion k/n,
and its exact interval is the proportion's interval inverted.

Each estimate also keeps its value as an exact fraction (`exact`), which the traffic
lights compare: a value exactly at a target must compare equal, and binary floats do not
promise that (0.1 * 3 != 0.3).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A value with its exact 95 % interval. The interval is computed when first read: the
    monthly trend shows values only, and scipy's exact intervals are the costly part."""

    numerator: int | float
    denominator: int | float
    value: float | None
    # The value as an exact fraction (None: no denominator). A ratio with a zero
    # denominator and a positive numerator is unbounded (`unbounded`).
    exact: Fraction | None = None
    unbounded: bool = False
    interval_of: Callable[[], tuple[float | None, float | None]] | None = field(
        default=None, repr=False, compare=False
    )

    @functools.cached_property
    def _interval(self) -> tuple[float | None, float | None]:
        return self.interval_of() if self.interval_of is not None else (None, None)

    @property
    def ci_low(self) -> float | None:
        return self._interval[0]

    @property
    def ci_high(self) -> float | None:
        return self._interval[1]

    def as_dict(self) -> dict[str, Any]:
        return {
            "numerator": self.numerator,
            "denominator": self.denominator,
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
        }


@functools.lru_cache(maxsize=8192)
def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    """The exact (Clopper-Pearson) 95 % interval of k of n (n > 0)."""
    from scipy.stats import binomtest  # scipy loads on the first interval, not with the app

    ci = binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE, method="exact")
    return float(ci.low), float(ci.high)


@functools.lru_cache(maxsize=8192)
def poisson_events(k: int) -> tuple[float, float]:
    """The exact 95 % interval of a Poisson count of k events, in events."""
    from scipy.stats import chi2

    alpha = 1 - CONFIDENCE
    low = float(chi2.ppf(alpha / 2, 2 * k)) / 2 if k > 0 else 0.0
    return low, float(chi2.ppf(1 - alpha / 2, 2 * k + 2)) / 2


def proportion(k: int, n: int) -> Estimate:
    """k of n, with its exact (Clopper-Pearson) 95 % interval; no value when n is 0."""
    if not 0 <= k <= n:
        raise ValueError(f"a proportion needs 0 <= k <= n (k={k}, n={n})")
    if n == 0:
        return Estimate(k, n, None)
    return Estimate(k, n, k / n, Fraction(k, n), interval_of=lambda: clopper_pearson(k, n))


def rate(k: int, exposure: float) -> Estimate:
    """k events over `exposure` units (site-months), with the exact Poisson 95 % interval;
    no value without exposure."""
    if k < 0 or exposure < 0:
        raise ValueError("counts and exposure are not negative")
    if exposure == 0:
        return Estimate(k, exposure, None, unbounded=k > 0)

    def interval() -> tuple[float | None, float | None]:
        low, high = poisson_events(k)
        return low / exposure, high / exposure

    return Estimate(
        k, exposure, k / exposure, Fraction(k) / Fraction(exposure), interval_of=interval
    )


def inverse_proportion(n: int, k: int) -> Estimate:
    """n per k, where the k are some of the n (screened per enrolled): the exact interval of
    k/n, inverted. With k = 0 there is no value (n > 0: unbounded); with a lower bound of
    k/n at 0 the interval has no upper end (None)."""
    if not 0 <= k <= n:
        raise ValueError(f"an inverse proportion needs 0 <= k <= n (k={k}, n={n})")
    if k == 0:
        return Estimate(n, k, None, unbounded=n > 0)

    def interval() -> tuple[float | None, float | None]:
        low, high = clopper_pearson(k, n)
        return 1 / high, (1 / low if low > 0 else None)

    return Estimate(n, k, n / k, Fraction(n, k), interval_of=interval)
