"""initlab.stats against scipy.stats (the reference; a test-only dependency)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initlab import stats

scipy_stats = pytest.importorskip("scipy.stats")
scipy_special = pytest.importorskip("scipy.special")

DFS = [0.5, 1.0, 1.5, 2.0, 3.0, 4.7, 10.0, 29.0, 100.0, 1e3, 1e4]
TS = [-60.0, -7.5, -2.0, -1.0, -0.3, 0.0, 0.05, 0.3, 1.0, 1.96, 3.5, 8.0, 40.0, 1e3, 1e6]


@pytest.mark.parametrize("a,b", [(0.5, 0.5), (1.0, 3.0), (2.5, 0.5), (10.0, 20.0), (50.0, 0.5),
                                 (0.1, 7.0), (300.0, 400.0), (5e3, 0.5)])
def test_betainc_matches_scipy(a: float, b: float) -> None:
    for x in [0.0, 1e-12, 1e-4, 0.01, 0.2, 0.5, 0.73, 0.95, 0.999, 0.99999, 1.0]:
        got, want = stats.betainc(a, b, x), float(scipy_special.betainc(a, b, x))
        assert got == pytest.approx(want, rel=1e-12, abs=1e-300), (a, b, x)


def test_betainc_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        stats.betainc(0.0, 1.0, 0.5)
    with pytest.raises(ValueError):
        stats.betainc(1.0, 1.0, 1.5)
    assert math.isnan(stats.betainc(1.0, 1.0, math.nan))


@pytest.mark.parametrize("df", DFS)
def test_t_cdf_sf_pdf_match_scipy(df: float) -> None:
    for t in TS:
        # relative tolerance on both tails: the small tail keeps full precision
        assert stats.t_cdf(t, df) == pytest.approx(scipy_stats.t.cdf(t, df), rel=1e-11, abs=1e-300)
        assert stats.t_sf(t, df) == pytest.approx(scipy_stats.t.sf(t, df), rel=1e-11, abs=1e-300)
        assert stats.t_pdf(t, df) == pytest.approx(scipy_stats.t.pdf(t, df), rel=1e-11, abs=1e-300)


def test_t_large_and_infinite_df() -> None:
    for t in [-3.0, -0.5, 0.7, 2.0, 6.0]:
        assert stats.t_sf(t, 1e7) == pytest.approx(scipy_stats.t.sf(t, 1e7), rel=1e-8)
        assert stats.t_sf(t, math.inf) == pytest.approx(scipy_stats.norm.sf(t), rel=1e-13)
        assert stats.t_pdf(t, math.inf) == pytest.approx(scipy_stats.norm.pdf(t), rel=1e-13)


def test_t_cdf_random_points_match_scipy() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        df = float(np.exp(rng.uniform(np.log(0.3), np.log(5e3))))
        t = float(rng.standard_cauchy())
        assert stats.t_cdf(t, df) == pytest.approx(scipy_stats.t.cdf(t, df), rel=1e-10), (t, df)


@pytest.mark.parametrize("df", DFS + [1e5])
def test_t_ppf_matches_scipy(df: float) -> None:
    for p in [1e-12, 1e-5, 0.001, 0.025, 0.1, 0.3, 0.5, 0.6, 0.9, 0.975, 0.999, 1 - 1e-12]:
        want = float(scipy_stats.t.ppf(p, df))
        assert stats.t_ppf(p, df) == pytest.approx(want, rel=1e-10, abs=1e-14), (p, df)


def test_t_ppf_inverts_cdf_and_handles_edges() -> None:
    for df in [1.0, 3.3, 17.0]:
        for p in [1e-200, 1e-9, 0.01, 0.4, 0.77, 0.9999]:
            assert stats.t_cdf(stats.t_ppf(p, df), df) == pytest.approx(p, rel=1e-11)
    # far beyond the largest double: the quantile saturates
    assert stats.t_ppf(1e-300, 0.5) == -math.inf
    assert stats.t_ppf(0.0, 5) == -math.inf
    assert stats.t_ppf(1.0, 5) == math.inf
    assert stats.t_ppf(0.5, 5) == 0.0
    with pytest.raises(ValueError):
        stats.t_ppf(1.5, 5)
    with pytest.raises(ValueError):
        stats.t_cdf(1.0, 0.0)


def test_mean_ci_matches_scipy_interval() -> None:
    rng = np.random.default_rng(1)
    for n in [2, 3, 5, 10, 40]:
        for level in [0.8, 0.95, 0.99]:
            x = rng.normal(3.0, 2.0, n)
            mean, half = stats.mean_ci(x, level)
            lo, hi = scipy_stats.t.interval(level, n - 1, loc=np.mean(x), scale=scipy_stats.sem(x))
            assert mean == pytest.approx(np.mean(x), rel=1e-14)
            assert mean - half == pytest.approx(lo, rel=1e-11)
            assert mean + half == pytest.approx(hi, rel=1e-11)


def test_mean_ci_edge_cases() -> None:
    mean, half = stats.mean_ci([0.25])
    assert mean == 0.25 and math.isnan(half)  # n = 1: spread unknown
    assert stats.mean_ci([2.0, 2.0, 2.0]) == (2.0, 0.0)
    with pytest.raises(ValueError):
        stats.mean_ci([])
    with pytest.raises(ValueError):
        stats.mean_ci([1.0, 2.0], level=1.0)


def test_welch_matches_scipy() -> None:
    rng = np.random.default_rng(2)
    for _ in range(60):
        na, nb = rng.integers(2, 30, size=2)
        a = rng.normal(0.0, rng.uniform(0.1, 3.0), na)
        b = rng.normal(rng.uniform(-2, 2), rng.uniform(0.1, 3.0), nb)
        t, df, p = stats.welch_t(a, b)
        ref = scipy_stats.ttest_ind(a, b, equal_var=False)
        assert t == pytest.approx(ref.statistic, rel=1e-12)
        assert df == pytest.approx(ref.df, rel=1e-12)
        assert p == pytest.approx(ref.pvalue, rel=1e-10, abs=1e-300)


def test_welch_degenerate_inputs() -> None:
    t, df, p = stats.welch_t([1.0, 1.0], [2.0, 2.0, 2.0])
    assert t == -math.inf and p == 0.0 and math.isnan(df)
    assert all(math.isnan(v) for v in stats.welch_t([1.0, 1.0], [1.0, 1.0]))
    with pytest.raises(ValueError):
        stats.welch_t([1.0], [1.0, 2.0])


def test_ks_statistic_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    for n in [1, 5, 37, 500, 5000]:
        x = rng.normal(0.1, 1.0, n)
        d = stats.ks_statistic(x, scipy_stats.norm.cdf)
        assert d == pytest.approx(scipy_stats.kstest(x, "norm").statistic, rel=1e-13)


def test_ks_statistic_scalar_cdf_fallback() -> None:
    x = np.linspace(0.05, 0.95, 19)
    d = stats.ks_statistic(x, lambda v: min(max(float(v), 0.0), 1.0))
    assert d == pytest.approx(scipy_stats.kstest(x, "uniform").statistic, rel=1e-13)


@pytest.mark.parametrize("n", [1, 2, 7, 30, 100, 140])
def test_ks_sf_exact_for_small_n(n: int) -> None:
    # scipy's kstwo is exact for n <= 140
    for d in np.linspace(0.5 / n, 0.999, 25):
        assert stats.ks_sf(d, n) == pytest.approx(scipy_stats.kstwo.sf(d, n), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("n", [300, 1000, 5000, 20000, 100000])
def test_ks_sf_large_n(n: int) -> None:
    for lam in [0.4, 0.7, 1.0, 1.36, 1.8, 2.5, 4.0]:
        d = lam / math.sqrt(n)
        got, want = stats.ks_sf(d, n), scipy_stats.kstwo.sf(d, n)
        # our exact branches agree with scipy's approximations (Pelz-Good for n > 140,
        # error ~1e-6) to 1e-5; Stephens' asymptotic branch (m > 201) to about 1 %
        assert got == pytest.approx(want, rel=1e-2), (n, lam)
        if 2 * math.floor(n * d) + 1 <= 201 or got < 1e-3:
            assert got == pytest.approx(want, rel=1e-5), (n, lam)


def test_ks_test_matches_scipy_and_detects_wrong_cdf() -> None:
    rng = np.random.default_rng(4)
    x = rng.uniform(-0.5, 0.5, 120)
    d, p = stats.ks_test(x, scipy_stats.uniform(-0.5, 1.0).cdf)
    ref = scipy_stats.kstest(x, scipy_stats.uniform(-0.5, 1.0).cdf, method="exact")
    assert d == pytest.approx(ref.statistic, rel=1e-13)
    assert p == pytest.approx(ref.pvalue, rel=1e-9)
    d, p = stats.ks_test(x, scipy_stats.norm(0.0, 1.0).cdf)
    assert p < 1e-6  # U[-0.5, 0.5] is far from N(0, 1)


def test_kolmogorov_limit_matches_scipy() -> None:
    for lam in [0.05, 0.3, 0.8, 0.99, 1.0, 1.5, 3.0, 6.0]:
        assert stats.kolmogorov_sf(lam) == pytest.approx(scipy_stats.kstwobign.sf(lam), rel=1e-12, abs=1e-300)
