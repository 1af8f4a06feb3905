"""Uplift statistics for campaign experiments: two-proportion tests, Welch tests, bootstrap CIs, sample sizes.

Conversion rate: difference and relative lift of a treatment group over a baseline (the holdout, or another
variant), with a 95% Newcombe (hybrid Wilson score) interval for the difference (statsmodels
`confint_proportions_2indep`; unlike the Wald interval it keeps its coverage with small groups and zero counts),
a log-ratio interval for the relative lift, and the pooled two-proportion z-test p-value
(statsmodels `proportions_ztest`). Revenue per recipient: Welch's t-test from per-group mean, variance and
size (scipy `ttest_ind_from_stats`), or a bootstrap interval from raw values (scipy `bootstrap`).
Sample size: users needed per group to detect a minimum effect (statsmodels `NormalIndPower` on Cohen's h).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_effectsize, proportions_ztest

from segmint.errors import InvalidInput


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise InvalidInput(f"alpha must be between 0 and 1, not {alpha}", where="alpha")


def _nan_to_none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True)
class ProportionUplift:
    """Treatment vs baseline on a rate: both rates, difference and relative lift with CIs, z and p."""

    rate: float | None
    baseline_rate: float | None
    diff: float | None
    diff_ci: tuple[float | None, float | None]
    relative: float | None  # rate / baseline_rate - 1
    relative_ci: tuple[float | None, float | None]
    z: float | None
    p_value: float | None
    n: int
    baseline_n: int

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether the p-value is below alpha."""
        return self.p_value is not None and self.p_value < alpha

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def proportion_uplift(successes: int, n: int, baseline_successes: int, baseline_n: int,
                      alpha: float = 0.05) -> ProportionUplift:
    """Uplift of a treatment rate (successes/n) over a baseline rate, with (1 - alpha) intervals.

    Difference CI: Newcombe's hybrid score interval from two Wilson intervals. Relative CI: log of the risk
    ratio (Katz). p-value: pooled two-proportion z-test, two-sided. Values that are undefined (an empty
    group, a zero baseline, zero variance) come back as None rather than an error, so a report can still
    show the counts.
    """
    _check_alpha(alpha)
    for name, x, size in (("treatment", successes, n), ("baseline", baseline_successes, baseline_n)):
        if size < 0 or x < 0 or x > size:
            raise InvalidInput(f"{name}: successes must be between 0 and n (got {x} of {size})", where=name)
    rate = successes / n if n else None
    base = baseline_successes / baseline_n if baseline_n else None
    none2: tuple[float | None, float | None] = (None, None)
    if rate is None or base is None:
        return ProportionUplift(rate, base, None, none2, None, none2, None, None, n, baseline_n)
    diff = rate - base
    diff_ci = none2
    z = p = None
    if 0 < successes + baseline_successes < n + baseline_n:  # some but not all converted: a test is possible
        lo, hi = confint_proportions_2indep(successes, n, baseline_successes, baseline_n, method="newcomb",
                                            compare="diff", alpha=alpha)
        diff_ci = (_nan_to_none(lo), _nan_to_none(hi))
        zs, ps = proportions_ztest([successes, baseline_successes], [n, baseline_n], alternative="two-sided")
        z, p = _nan_to_none(zs), _nan_to_none(ps)
    relative = rate / base - 1 if base > 0 else None
    relative_ci = none2
    if successes > 0 and baseline_successes > 0:
        lo, hi = confint_proportions_2indep(successes, n, baseline_successes, baseline_n, method="log",
                                            compare="ratio", alpha=alpha)
        relative_ci = (_nan_to_none(lo - 1), _nan_to_none(hi - 1))
    return ProportionUplift(rate, base, diff, diff_ci, relative, relative_ci, z, p, n, baseline_n)


@dataclass(frozen=True)
class MeanUplift:
    """Treatment vs baseline on a mean (revenue per recipient): difference, relative lift, CI, t, df, p."""

    mean: float | None
    baseline_mean: float | None
    diff: float | None
    diff_ci: tuple[float | None, float | None]
    relative: float | None
    t: float | None
    df: float | None
    p_value: float | None
    n: int
    baseline_n: int
    method: str = "welch"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def mean_uplift(mean: float, var: float, n: int, baseline_mean: float, baseline_var: float, baseline_n: int,
                alpha: float = 0.05) -> MeanUplift:
    """Welch's t-test and CI for a difference of means, from each group's mean, sample variance and size."""
    _check_alpha(alpha)
    if var < 0 or baseline_var < 0:
        raise InvalidInput("variances must be >= 0", where="var")
    none2: tuple[float | None, float | None] = (None, None)
    if n < 2 or baseline_n < 2:
        m = mean if n else None
        b = baseline_mean if baseline_n else None
        return MeanUplift(m, b, None if m is None or b is None else m - b, none2, None, None, None, None, n,
                          baseline_n)
    diff = mean - baseline_mean
    relative = diff / baseline_mean if baseline_mean else None
    se2 = var / n + baseline_var / baseline_n
    if se2 == 0:
        return MeanUplift(mean, baseline_mean, diff, none2, relative, None, None, None, n, baseline_n)
    res = stats.ttest_ind_from_stats(mean, math.sqrt(var), n, baseline_mean, math.sqrt(baseline_var), baseline_n,
                                     equal_var=False)
    df = se2**2 / ((var / n) ** 2 / (n - 1) + (baseline_var / baseline_n) ** 2 / (baseline_n - 1))
    half = stats.t.ppf(1 - alpha / 2, df) * math.sqrt(se2)
    return MeanUplift(float(mean), float(baseline_mean), float(diff), (float(diff - half), float(diff + half)),
                      None if relative is None else float(relative), float(res.statistic),
                      float(df), float(res.pvalue), n, baseline_n)


def bootstrap_mean_uplift(values: np.ndarray | list[float], baseline: np.ndarray | list[float], *, seed: int = 0,
                          resamples: int = 2000, alpha: float = 0.05) -> MeanUplift:
    """Difference of means with a BCa bootstrap interval (scipy), for skewed per-recipient revenue."""
    _check_alpha(alpha)
    x, y = np.asarray(values, dtype=float), np.asarray(baseline, dtype=float)
    if len(x) < 2 or len(y) < 2:
        raise InvalidInput("the bootstrap needs at least 2 values per group", where="values")
    diff = float(x.mean() - y.mean())
    none2: tuple[float | None, float | None] = (None, None)
    ci = none2
    if x.var() > 0 or y.var() > 0:
        res = stats.bootstrap((x, y), lambda a, b, axis=-1: a.mean(axis=axis) - b.mean(axis=axis),
                              n_resamples=resamples, confidence_level=1 - alpha, method="bca",
                              random_state=np.random.default_rng(seed), vectorized=True)
        ci = (_nan_to_none(res.confidence_interval.low), _nan_to_none(res.confidence_interval.high))
    relative = float(diff / y.mean()) if y.mean() else None
    return MeanUplift(float(x.mean()), float(y.mean()), diff, ci, relative, None, None, None, len(x), len(y),
                      method="bootstrap")


def sample_size_proportions(baseline_rate: float, mde: float, *, relative: bool = False, alpha: float = 0.05,
                            power: float = 0.8, ratio: float = 1.0) -> int:
    """Users needed in the treatment group to detect `mde` on a rate (the baseline group gets ratio x that).

    `mde` is absolute (0.02 = two points) unless relative=True (0.2 = +20%). Two-sided test at `alpha`,
    normal approximation on Cohen's h (statsmodels NormalIndPower), rounded up.
    """
    _check_alpha(alpha)
    if not 0 < baseline_rate < 1:
        raise InvalidInput(f"baseline rate must be between 0 and 1, not {baseline_rate}", where="baseline_rate")
    if not 0 < power < 1:
        raise InvalidInput(f"power must be between 0 and 1, not {power}", where="power")
    target = baseline_rate * (1 + mde) if relative else baseline_rate + mde
    if mde == 0 or not 0 < target < 1:
        raise InvalidInput(f"the effect must move the rate to a value between 0 and 1 (gives {target:.4g})",
                           where="mde")
    h = proportion_effectsize(target, baseline_rate)
    n = NormalIndPower().solve_power(effect_size=abs(h), alpha=alpha, power=power, ratio=ratio,
                                     alternative="two-sided")
    return math.ceil(n)


def sample_size_means(sd: float, mde: float, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0) -> int:
    """Users needed per group to detect a difference `mde` in a mean with standard deviation `sd` (t-test)."""
    _check_alpha(alpha)
    if sd <= 0 or mde == 0:
        raise InvalidInput("sd must be > 0 and the effect non-zero", where="mde")
    n = TTestIndPower().solve_power(effect_size=abs(mde) / sd, alpha=alpha, power=power, ratio=ratio,
                                    alternative="two-sided")
    return math.ceil(n)


@dataclass(frozen=True)
class GroupStats:
    """What a comparison needs from one group of a report: measured users, conversions, revenue moments."""

    key: str
    measured: int
    converted: int
    revenue_sum: float
    revenue_sq_sum: float

    @property
    def revenue_mean(self) -> float:
        """Revenue per measured recipient."""
        return self.revenue_sum / self.measured if self.measured else 0.0

    @property
    def revenue_var(self) -> float:
        """Sample variance of per-recipient revenue (users without revenue count as 0)."""
        n = self.measured
        if n < 2:
            return 0.0
        return max(0.0, (self.revenue_sq_sum - self.revenue_sum**2 / n) / (n - 1))


def compare_groups(treatment: GroupStats, baseline: GroupStats, alpha: float = 0.05) -> dict[str, Any]:
    """Conversion and revenue-per-recipient uplift of one group over another, JSON-ready."""
    conv = proportion_uplift(treatment.converted, treatment.measured, baseline.converted, baseline.measured, alpha)
    rev = mean_uplift(treatment.revenue_mean, treatment.revenue_var, treatment.measured, baseline.revenue_mean,
                      baseline.revenue_var, baseline.measured, alpha)
    return {"variant": treatment.key, "baseline": baseline.key, "conversion": conv.to_dict(),
            "revenue_per_recipient": rev.to_dict()}
