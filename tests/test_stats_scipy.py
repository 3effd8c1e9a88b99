"""pmrl_bench.report.stats against scipy's tests on random inputs, and the engine against plain loops."""

import numpy as np
import pytest
from scipy import stats as sps

from pmrl_bench.report.stats import (
    BootstrapInput,
    adjust,
    crossed_t_test,
    friedman_iman_davenport,
    mean_interval,
    seed_query_parts,
    sign_flip_p,
    task_ranks,
    two_level_bootstrap,
)
from pmrl_bench.report.stats import bootstrap as bootstrap_module
from pmrl_bench.report.stats.outcomes import dense_groups, unit_means
from pmrl_bench.report.stats.streams import counts, query_stream, seed_counts, seed_stream


@pytest.mark.parametrize("seed", range(5))
def test_one_seed_limit_is_ttest_rel(seed):
    rng = np.random.default_rng(seed)
    ya, yb = rng.normal(0.3, 1, 200), rng.normal(0, 1, 200)
    res = crossed_t_test(seed_query_parts(ya[None]), seed_query_parts(yb[None]))
    ref = sps.ttest_rel(ya, yb)
    assert res.p == pytest.approx(ref.pvalue, rel=1e-9)
    assert res.t == pytest.approx(ref.statistic, rel=1e-9)
    assert res.nu == pytest.approx(199)
    lo, hi = ref.confidence_interval()
    assert (res.ci_low, res.ci_high) == (pytest.approx(lo, rel=1e-9), pytest.approx(hi, rel=1e-9))


@pytest.mark.parametrize("seed", range(5))
def test_constant_within_run_limit_is_welch(seed):
    rng = np.random.default_rng(seed)
    ma, mb = rng.normal(50, 3, 4), rng.normal(48, 1, 3)
    ya, yb = np.repeat(ma[:, None], 50, axis=1), np.repeat(mb[:, None], 50, axis=1)
    res = crossed_t_test(seed_query_parts(ya), seed_query_parts(yb))
    ref = sps.ttest_ind(ma, mb, equal_var=False)
    assert res.p == pytest.approx(ref.pvalue, rel=1e-7)
    assert res.nu == pytest.approx(ref.df, rel=1e-7)
    assert res.share_seeds == pytest.approx(1.0)


def test_vectorised_over_metrics_and_comparisons():
    rng = np.random.default_rng(3)
    ys = [rng.normal(size=(s, 100, 4)) for s in (3, 5, 2)]
    parts = [seed_query_parts(y) for y in ys]
    from pmrl_bench.report.stats import crossed_t_tests

    joint = crossed_t_tests(parts[0], parts[1:])
    for i in (1, 2):
        for p in range(4):
            single = crossed_t_test(seed_query_parts(ys[0][..., p]), seed_query_parts(ys[i][..., p]))
            assert joint.p[i - 1, p] == pytest.approx(float(single.p), rel=1e-12)
            assert joint.nu[i - 1, p] == pytest.approx(float(single.nu), rel=1e-12)


def test_one_seed_interval_close_to_bca():
    """docs/statistics.md 4: with one seed the interval is the one-sample t-interval, close to BCa."""
    y = 100.0 * (np.random.default_rng(7).random(2000) < 0.455)
    ci = mean_interval(seed_query_parts(y[None]))
    lo, hi = ci.value - ci.half_width, ci.value + ci.half_width
    bca = sps.bootstrap((y,), np.mean, method="BCa", n_resamples=2000, random_state=0).confidence_interval
    assert abs(lo - bca.low) < 0.25 and abs(hi - bca.high) < 0.25


@pytest.mark.parametrize("seed", range(4))
def test_exact_sign_flip_equals_permutation_test(seed):
    d = np.round(np.random.default_rng(seed).normal(0.3, 1, 11), 2)
    ref = sps.permutation_test((d,), np.sum, permutation_type="samples", n_resamples=np.inf)
    assert sign_flip_p(d, "s", "a", "b") == pytest.approx(ref.pvalue, abs=1e-12)


def test_monte_carlo_sign_flip_near_exact():
    d = np.random.default_rng(11).normal(0.2, 1, 40)
    ref = sps.permutation_test((d,), np.sum, permutation_type="samples", n_resamples=20_000, random_state=1)
    p = sign_flip_p(d, "s", "a", "b")
    assert abs(p - ref.pvalue) < 4 * np.sqrt(ref.pvalue * (1 - ref.pvalue) / 10_000) + 0.005


@pytest.mark.parametrize("seed", range(3))
def test_bh_and_holm_against_definitions(seed):
    """Adjusted p <= alpha rejects exactly what the textbook step-down (Holm) / step-up (BH) procedures reject."""
    p = np.random.default_rng(seed).random(9) ** 3
    m, ranked = len(p), np.sort(p)
    for alpha in (0.001, 0.01, 0.05, 0.1, 0.2, 0.5):
        holm_rejected = 0  # Holm: reject p_(1), p_(2), ... while p_(j) <= alpha / (m - j + 1)
        while holm_rejected < m and ranked[holm_rejected] <= alpha / (m - holm_rejected):
            holm_rejected += 1
        assert (adjust(p, "holm") <= alpha).sum() == holm_rejected
        bh_rejected = max([j for j in range(1, m + 1) if ranked[j - 1] <= j * alpha / m], default=0)
        assert (adjust(p, "bh") <= alpha).sum() == bh_rejected  # BH: the largest j with p_(j) <= j alpha / m


@pytest.mark.parametrize("seed", range(3))
def test_friedman_against_scipy(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=(6, 5)), 1)  # rounding makes ties
    ranks = task_ranks(scores, [True] * 6)
    omni = friedman_iman_davenport(ranks)
    chi2 = sps.friedmanchisquare(*(-scores).T).statistic
    assert omni.chi2 == pytest.approx(chi2, rel=1e-12)
    f = 5 * chi2 / (6 * 4 - chi2)
    assert omni.f == pytest.approx(f) and omni.p == pytest.approx(sps.f.sf(f, 4, 20))


def _loop_bootstrap(scope, key, values, ranks, n_resamples, groups=None):
    """Plain loop over resamples on the same streams (the reference formulation)."""
    n_units = values.shape[1]
    qgen = query_stream(scope)
    u = seed_counts(seed_stream(scope, key), n_resamples, values.shape[0])
    means, medians = [], []
    for r in range(n_resamples):
        w = counts(qgen.integers(0, n_units, size=(1, n_units), dtype=np.int64), n_units)[0]
        per_seed = values.transpose(0, 2, 1) @ w / n_units
        means.append(u[r] @ per_seed / values.shape[0])
        qw = w if groups is None else w[groups]
        meds = [np.median(np.repeat(row, qw)) for row in ranks]
        medians.append(u[r] @ np.array(meds) / values.shape[0])
    return np.array(means), np.array(medians)


@pytest.mark.parametrize("chunk_rows", [None, 13])
@pytest.mark.parametrize("narrow", [False, True])
def test_engine_equals_loop(chunk_rows, narrow, monkeypatch):
    if narrow:  # no median window: every resample falls back to the exact order statistic
        monkeypatch.setattr(bootstrap_module, "MEDIAN_BAND", 0.0)
    rng = np.random.default_rng(5)
    ranks = {k: rng.geometric(0.25, size=(s, 120)) for k, s in (("m@1", 3), ("n@2", 2))}
    values = {k: np.stack([r <= 1, r <= 5, 1.0 / r], axis=-1).astype(float) for k, r in ranks.items()}
    inputs = [BootstrapInput(k, values[k], ranks[k]) for k in ranks]
    draws = two_level_bootstrap("t/p", inputs, n_resamples=300, chunk_rows=chunk_rows)
    for key in ranks:
        means, medians = _loop_bootstrap("t/p", key, values[key], ranks[key], 300)
        np.testing.assert_allclose(draws[key].mean, means, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(draws[key].median, medians)


def test_engine_with_query_groups_equals_loop():
    rng = np.random.default_rng(8)
    groups = dense_groups(np.sort(rng.integers(10, 60, size=150)))
    ranks = rng.geometric(0.3, size=(3, 150))
    values = unit_means((ranks <= 1).astype(float)[..., None], groups)
    draws = two_level_bootstrap("t/g", [BootstrapInput("m@1", values, ranks)], n_resamples=200, groups=groups)
    means, medians = _loop_bootstrap("t/g", "m@1", values, ranks, 200, groups)
    np.testing.assert_allclose(draws["m@1"].mean, means, atol=1e-12)
    np.testing.assert_array_equal(draws["m@1"].median, medians)


def test_entity_draws_do_not_depend_on_other_entities():
    rng = np.random.default_rng(2)
    a = BootstrapInput("a@1", rng.random((3, 50, 2)), rng.integers(1, 9, (3, 50)))
    b = BootstrapInput("b@1", rng.random((2, 50, 2)), rng.integers(1, 9, (2, 50)))
    alone = two_level_bootstrap("s", [a], n_resamples=500)["a@1"]
    both = two_level_bootstrap("s", [a, b], n_resamples=500, chunk_rows=77)["a@1"]
    np.testing.assert_allclose(alone.mean, both.mean, atol=1e-12)
    np.testing.assert_array_equal(alone.median, both.median)


def test_unit_means_equal_groups_keep_point_estimates():
    rng = np.random.default_rng(4)
    y = rng.random((3, 60, 2))
    groups = np.repeat(np.arange(20), 3)
    ym = unit_means(y, groups)
    assert ym.shape == (3, 20, 2)
    np.testing.assert_allclose(ym.mean(axis=1), y.mean(axis=1))
    np.testing.assert_allclose(ym[:, 4], y[:, 12:15].mean(axis=1))
