"""Uplift statistics against hand-computed textbook values and against statsmodels/scipy called directly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest

from segmint.analytics.uplift import (
    GroupStats,
    bootstrap_mean_uplift,
    compare_groups,
    mean_uplift,
    proportion_uplift,
    sample_size_means,
    sample_size_proportions,
)
from segmint.errors import InvalidInput

Z975 = 1.959963984540054


def _wilson(x: int, n: int) -> tuple[float, float]:
    p, z2 = x / n, Z975**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z975 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return centre - half, centre + half


def test_two_proportions_match_hand_computation() -> None:
    # 120/1000 vs 100/1000: pooled p = 0.11, SE0 = sqrt(.11 * .89 * 2/1000), z = .02 / SE0 = 1.4293, p = 0.1529
    u = proportion_uplift(120, 1000, 100, 1000)
    se0 = math.sqrt(0.11 * 0.89 * 2 / 1000)
    assert u.diff == pytest.approx(0.02)
    assert u.z == pytest.approx(0.02 / se0) and u.z == pytest.approx(1.4293, abs=1e-4)
    assert u.p_value == pytest.approx(2 * stats.norm.sf(0.02 / se0)) and u.p_value == pytest.approx(0.1529, abs=1e-4)
    # Newcombe's hybrid score interval: from the two Wilson intervals
    (l1, u1), (l2, u2) = _wilson(120, 1000), _wilson(100, 1000)
    assert u.diff_ci[0] == pytest.approx(0.02 - math.sqrt((0.12 - l1) ** 2 + (u2 - 0.10) ** 2))
    assert u.diff_ci[1] == pytest.approx(0.02 + math.sqrt((u1 - 0.12) ** 2 + (0.10 - l2) ** 2))
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 vs 48/80 -> 0.0524 to 0.3339 (method 10)
    textbook = proportion_uplift(56, 70, 48, 80)
    assert textbook.diff == pytest.approx(0.2)
    assert textbook.diff_ci == (pytest.approx(0.0524, abs=5e-5), pytest.approx(0.3339, abs=5e-5))
    assert u.relative == pytest.approx(0.2)
    # Katz log interval of the risk ratio, minus one
    se_log = math.sqrt(1 / 120 - 1 / 1000 + 1 / 100 - 1 / 1000)
    assert u.relative_ci[0] == pytest.approx(1.2 * math.exp(-Z975 * se_log) - 1)
    assert u.relative_ci[1] == pytest.approx(1.2 * math.exp(Z975 * se_log) - 1)
    assert not u.significant()


def test_two_proportions_match_statsmodels_directly() -> None:
    for counts in [(45, 300, 30, 310), (530, 5000, 470, 5000), (7, 90, 1, 100)]:
        x1, n1, x2, n2 = counts
        u = proportion_uplift(x1, n1, x2, n2)
        z, p = proportions_ztest([x1, x2], [n1, n2])
        assert (u.z, u.p_value) == (pytest.approx(z), pytest.approx(p))
    strong = proportion_uplift(530, 5000, 400, 5000)
    assert strong.significant() and strong.diff_ci[0] > 0
    # small groups with a zero count: the interval still covers what the test says (Wald would exclude 0 here)
    small = proportion_uplift(8, 80, 0, 30)
    assert small.p_value > 0.05 and small.diff_ci[0] < 0 < small.diff_ci[1]


def test_degenerate_groups_give_none_not_errors() -> None:
    empty = proportion_uplift(0, 0, 5, 100)
    assert empty.rate is None and empty.diff is None and empty.p_value is None
    nothing = proportion_uplift(0, 100, 0, 100)  # no conversions anywhere: no test is possible
    assert nothing.diff == 0 and nothing.p_value is None and nothing.relative is None
    with pytest.raises(InvalidInput, match="between 0 and n"):
        proportion_uplift(11, 10, 1, 10)


def test_welch_matches_scipy_and_satterthwaite() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.gamma(2.0, 15_000, 400), rng.gamma(2.0, 12_000, 350)
    u = mean_uplift(a.mean(), a.var(ddof=1), len(a), b.mean(), b.var(ddof=1), len(b))
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert u.t == pytest.approx(ref.statistic) and u.p_value == pytest.approx(ref.pvalue)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    assert u.df == pytest.approx(df)
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert u.diff_ci == (pytest.approx(u.diff - half), pytest.approx(u.diff + half))
    ci = ref.confidence_interval(0.95)
    assert u.diff_ci == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_bootstrap_interval_is_seeded_and_covers_the_difference() -> None:
    rng = np.random.default_rng(3)
    a = np.where(rng.random(2000) < 0.1, rng.gamma(2, 20_000, 2000), 0)
    b = np.where(rng.random(2000) < 0.08, rng.gamma(2, 20_000, 2000), 0)
    u1 = bootstrap_mean_uplift(a, b, seed=11, resamples=500)
    u2 = bootstrap_mean_uplift(a, b, seed=11, resamples=500)
    assert u1 == u2 and u1.method == "bootstrap"
    assert u1.diff == pytest.approx(a.mean() - b.mean())
    assert u1.diff_ci[0] < u1.diff < u1.diff_ci[1]


def test_sample_size_textbook_values() -> None:
    # Fleiss (no continuity correction) for 10% -> 12% at alpha .05, power .8 gives 3,841 per group; the
    # arcsine (Cohen's h) approximation statsmodels uses gives 3,835: within 0.5%.
    p1, p2 = 0.10, 0.12
    pbar = (p1 + p2) / 2
    fleiss = (Z975 * math.sqrt(2 * pbar * (1 - pbar)) + stats.norm.ppf(0.8) * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2)))
    fleiss = math.ceil(fleiss**2 / (p2 - p1) ** 2)
    assert fleiss == 3841
    n = sample_size_proportions(0.10, 0.02)
    assert n == 3835 and abs(n - fleiss) / fleiss < 0.005
    h = 2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(p1))
    assert n == math.ceil(2 * ((Z975 + stats.norm.ppf(0.8)) / h) ** 2)
    assert sample_size_proportions(0.10, 0.20, relative=True) == n
    assert sample_size_proportions(0.10, 0.01) > 4 * n * 0.9  # half the effect needs ~4x the users
    # means: d = 0.5 needs 64 per group (Cohen's table)
    assert sample_size_means(sd=10.0, mde=5.0) == 64
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        sample_size_proportions(0.95, 0.1)


def test_compare_groups_from_report_moments() -> None:
    values_t = np.array([0, 0, 30_000, 0, 12_000, 0, 0, 55_000] * 25, dtype=float)
    values_c = np.array([0, 0, 0, 18_000, 0, 0, 0, 0] * 25, dtype=float)
    t = GroupStats("A", len(values_t), int((values_t > 0).sum()), values_t.sum(), (values_t**2).sum())
    c = GroupStats("control", len(values_c), int((values_c > 0).sum()), values_c.sum(), (values_c**2).sum())
    assert t.revenue_var == pytest.approx(values_t.var(ddof=1))
    out = compare_groups(t, c)
    assert out["variant"] == "A" and out["baseline"] == "control"
    assert out["conversion"]["diff"] == pytest.approx(75 / 200 - 25 / 200)
    ref = stats.ttest_ind(values_t, values_c, equal_var=False)
    assert out["revenue_per_recipient"]["p_value"] == pytest.approx(ref.pvalue)
