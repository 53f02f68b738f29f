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

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    numerator: int | float
    denominator: int | float
    value: float | None
    ci_low: float | None
    ci_high: float | None
    # The value as an exact fraction (None: no denominator). A ratio with a zero
    # denominator and a positive numerator is unbounded (`unbounded`).
    exact: Fraction | None = None
    unbounded: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "numerator": self.numerator,
            "denominator": self.denominator,
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
        }


def proportion(k: int, n: int) -> Estimate:
    """k of n, with its exact (Clopper-Pearson) 95 % interval; no value when n is 0."""
    if not 0 <= k <= n:
        raise ValueError(f"a proportion needs 0 <= k <= n (k={k}, n={n})")
    if n == 0:
        return Estimate(k, n, None, None, None)
    from scipy.stats import binomtest  # scipy loads on the first estimate, not with the app

    ci = binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE, method="exact")
    return Estimate(k, n, k / n, float(ci.low), float(ci.high), Fraction(k, n))


def rate(k: int, exposure: float) -> Estimate:
    """k events over `exposure` units (site-months), with the exact Poisson 95 % interval;
    no value without exposure."""
    if k < 0 or exposure < 0:
        raise ValueError("counts and exposure are not negative")
    if exposure == 0:
        return Estimate(k, exposure, None, None, None, unbounded=k > 0)
    from scipy.stats import chi2

    alpha = 1 - CONFIDENCE
    low = float(chi2.ppf(alpha / 2, 2 * k)) / 2 if k > 0 else 0.0
    high = float(chi2.ppf(1 - alpha / 2, 2 * k + 2)) / 2
    return Estimate(
        k, exposure, k / exposure, low / exposure, high / exposure, Fraction(k) / Fraction(exposure)
    )


def inverse_proportion(n: int, k: int) -> Estimate:
    """n per k, where the k are some of the n (screened per enrolled): the exact interval of
    k/n, inverted. With k = 0 there is no value (n > 0: unbounded); with a lower bound of
    k/n at 0 the interval has no upper end (None)."""
    if not 0 <= k <= n:
        raise ValueError(f"an inverse proportion needs 0 <= k <= n (k={k}, n={n})")
    if k == 0:
        return Estimate(n, k, None, None, None, unbounded=n > 0)
    inner = proportion(k, n)
    assert inner.ci_low is not None and inner.ci_high is not None
    high = 1 / inner.ci_low if inner.ci_low > 0 else None
    return Estimate(n, k, n / k, 1 / inner.ci_high, high, Fraction(n, k))
