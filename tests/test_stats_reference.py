"""pmrl_bench.report.stats against the hand-checked reference values of docs/statistics.md section 9."""

import numpy as np
import pytest
from scipy import stats as sps

from pmrl_bench.report.stats import (
    BootstrapInput,
    adjust,
    bootstrap_p,
    critical_difference,
    crossed_t_test,
    friedman_iman_davenport,
    mean_interval,
    nemenyi_p,
    percentile_interval,
    probability_of_improvement,
    seed_query_parts,
    sign_flip_p,
    task_ranks,
    two_level_bootstrap,
)
from pmrl_bench.report.stats.outcomes import metric_def, run_metric
from pmrl_bench.report.stats.ranking import cliques, nemenyi_q
from pmrl_bench.report.stats.streams import query_stream, seed_stream

P_IN = np.array([0.040, 0.001, 0.030, 0.500, 0.012, 0.020])


def test_9a_holm_and_bh():
    np.testing.assert_allclose(adjust(P_IN, "holm"), [0.09, 0.006, 0.09, 0.5, 0.06, 0.08], atol=1e-12)
    np.testing.assert_allclose(adjust(P_IN, "bh"), [0.048, 0.006, 0.045, 0.5, 0.036, 0.04], atol=1e-12)
    assert list(adjust(P_IN, "holm") < 0.05) == [False, True, False, False, False, False]
    assert list(adjust(P_IN, "bh") < 0.05) == [True, True, True, False, True, True]
    np.testing.assert_allclose(sps.false_discovery_control(P_IN, method="by"),
                               [0.1176, 0.0147, 0.11025, 1.0, 0.0882, 0.098], atol=1e-6)


def test_holm_edge_cases():
    assert adjust(np.array([]), "holm").size == 0
    np.testing.assert_allclose(adjust(np.array([0.3]), "holm"), [0.3])
    np.testing.assert_allclose(adjust(np.array([0.01, 0.01]), "holm"), [0.02, 0.02])


SCORES = np.array([[45.2, 43.1, 43.1, 40.0], [61.0, 62.5, 58.3, 58.3], [30.4, 29.9, 31.2, 27.5],
                   [77.7, 75.0, 74.1, 70.2], [52.0, 52.0, 52.0, 49.9]])


def test_9b_ranking():
    ranks = task_ranks(SCORES, [True] * 5)
    np.testing.assert_allclose(ranks[0], [1, 2.5, 2.5, 4])
    np.testing.assert_allclose(ranks[4], [2, 2, 2, 4])
    np.testing.assert_allclose(ranks.mean(axis=0), [1.6, 2.1, 2.4, 3.9])
    omni = friedman_iman_davenport(ranks)
    assert omni.chi2 == pytest.approx(10.022727, abs=1e-6)
    assert sps.chi2.sf(omni.chi2, 3) == pytest.approx(0.018374, abs=1e-6)
    assert (omni.df1, omni.df2) == (3, 12)
    assert omni.f == pytest.approx(8.054795, abs=1e-6)
    assert omni.p == pytest.approx(0.0033099, abs=1e-6)
    assert critical_difference(4, 5) == pytest.approx(2.097606, abs=1e-4)
    p = nemenyi_p(ranks.mean(axis=0), 5)
    assert p[0, 3] == pytest.approx(0.025015, abs=1e-6)
    assert p[1, 3] == pytest.approx(0.121943, abs=1e-6)
    assert p[2, 3] == pytest.approx(0.255856, abs=1e-6)
    assert p[0, 2] == pytest.approx(0.760994, abs=1e-6)
    assert p[0, 1] == pytest.approx(0.928187, abs=1e-6)
    assert p[1, 2] == pytest.approx(0.983059, abs=1e-6)
    # only A-D differs: cliques {A, B, C} and {B, C, D}
    assert cliques(np.sort(ranks.mean(axis=0)), critical_difference(4, 5)) == [(0, 2), (1, 3)]


def test_lower_is_better_ranks_and_identical_orderings():
    ranks = task_ranks(-SCORES, [False] * 5)
    np.testing.assert_allclose(ranks, task_ranks(SCORES, [True] * 5))
    same = np.tile([1.0, 2.0, 3.0], (4, 1))
    omni = friedman_iman_davenport(same)
    assert omni.f == np.inf and omni.p == 0.0
    assert friedman_iman_davenport(np.full((3, 4), 2.5)).no_differences


@pytest.mark.parametrize("k,q", [(2, 1.9600), (3, 2.3437), (4, 2.5690), (5, 2.7278), (6, 2.8497),
                                 (7, 2.9483), (8, 3.0309), (9, 3.1017), (10, 3.1637)])
def test_nemenyi_q_table(k, q):
    assert nemenyi_q(k) == pytest.approx(q, abs=1e-4)


def test_cliques_maximal_runs_without_singletons():
    assert cliques(np.array([1.0, 1.5, 3.0, 3.2, 5.0]), 1.0) == [(0, 1), (2, 3)]
    assert cliques(np.array([1.0, 2.0, 3.0]), 0.5) == []
    assert cliques(np.array([1.0, 1.9, 2.8, 3.7]), 2.0) == [(0, 2), (1, 3)]


D_9C = np.array([0.8, 1.2, -0.3, 0.5, 2.2, -1.0, 0.4, 1.5, 0.0, 0.7, -0.2, 1.1])


def test_9c_sign_flip_exact_and_monte_carlo():
    assert sign_flip_p(D_9C, "ref", "A", "B") == 0.048828125
    res = sps.permutation_test((D_9C,), np.mean, permutation_type="samples", n_resamples=np.inf)
    assert res.pvalue == pytest.approx(0.048828125, abs=1e-12)
    mc = sign_flip_p(D_9C, "ref", "A", "B", exact=False)
    assert mc == 452 / 10_001
    assert sign_flip_p(D_9C, "ref", "B", "A", exact=False) == mc  # pair order does not matter
    assert sign_flip_p(D_9C, "ref", "A", "B", exact=False, chunk_rows=7) == mc
    p = 0.048828125
    assert abs(mc - p) <= 4 * np.sqrt(p * (1 - p) / 10_000) + 1 / 10_000


A_9D = np.array([[1, 1, 1, 1, 1, 1, 0, 1], [1, 0, 1, 0, 0, 1, 0, 0], [1, 1, 1, 1, 0, 1, 0, 1]], dtype=float)
B_9D = np.array([[1, 0, 1, 0, 0, 1, 0, 0], [0, 1, 1, 0, 0, 1, 0, 0]], dtype=float)


def test_9d_primary_test():
    a, b = seed_query_parts(A_9D), seed_query_parts(B_9D)
    np.testing.assert_allclose(a.per_seed, [0.875, 0.375, 0.75])
    assert a.value == pytest.approx(0.666667, abs=1e-6)
    assert a.seed_var == pytest.approx(0.017857, abs=1e-6)
    assert b.seed_var == 0.0
    np.testing.assert_allclose(a.unit_mean - b.unit_mean, [0.5, 1 / 6, 0, 2 / 3, 1 / 3, 0, 0, 2 / 3], atol=1e-12)
    res = crossed_t_test(a, b)
    assert res.delta == pytest.approx(0.291667, abs=1e-6)
    assert res.se == pytest.approx(0.168884, abs=1e-6)
    assert res.se**2 == pytest.approx(0.028522, abs=1e-6)
    assert res.nu == pytest.approx(4.6304, abs=1e-4)
    assert res.t == pytest.approx(1.72702, abs=1e-5)
    assert res.p == pytest.approx(0.149408, abs=1e-6)
    assert res.ci_low == pytest.approx(-0.153097, abs=1e-6)
    assert res.ci_high == pytest.approx(0.736431, abs=1e-6)
    assert res.share_queries == pytest.approx(0.010665 / 0.028522, abs=1e-4)
    assert res.share_queries + res.share_seeds == pytest.approx(1.0)
    # points: values x100, variances x1e4, p and nu unchanged
    res100 = crossed_t_test(seed_query_parts(100 * A_9D), seed_query_parts(100 * B_9D))
    assert res100.p == pytest.approx(res.p, abs=1e-9) and res100.nu == pytest.approx(res.nu, abs=1e-9)
    assert res100.delta == pytest.approx(29.1667, abs=1e-4)


@pytest.mark.filterwarnings("ignore:Precision loss")
def test_9d_contrasts():
    ybar_a, ybar_b = A_9D.mean(axis=0), B_9D.mean(axis=0)
    assert sps.ttest_rel(ybar_a, ybar_b).pvalue == pytest.approx(0.025614, abs=1e-6)
    assert sps.ttest_ind(A_9D.mean(axis=1), B_9D.mean(axis=1), equal_var=False).pvalue == pytest.approx(0.191710, abs=1e-6)


def test_9d_one_method_intervals():
    ci = mean_interval(seed_query_parts(A_9D))
    assert ci.nu == pytest.approx(5.8216, abs=1e-4)
    assert ci.value - ci.half_width == pytest.approx(0.213913, abs=1e-6)
    assert ci.value + ci.half_width == pytest.approx(1.119421, abs=1e-6)
    ci = mean_interval(seed_query_parts(B_9D))
    assert ci.nu == pytest.approx(7, abs=1e-9)
    assert ci.value - ci.half_width == pytest.approx(0.004473, abs=1e-6)
    assert ci.value + ci.half_width == pytest.approx(0.745527, abs=1e-6)


def test_degenerate_test_no_variation():
    same = np.ones((3, 5))
    res = crossed_t_test(seed_query_parts(same), seed_query_parts(same))
    assert res.degenerate and res.p == 1.0 and res.ci_low == 0.0 == res.ci_high
    res = crossed_t_test(seed_query_parts(same), seed_query_parts(np.zeros((3, 5))))
    assert res.degenerate and res.p == 0.0 and res.ci_low == 1.0 == res.ci_high


A_9D2 = np.array([[1, 0, 1], [1, 1, 0]], dtype=float)[:, :, None]
B_9D2 = np.array([[0, 0, 1], [1, 0, 0]], dtype=float)[:, :, None]


def test_9d2_streams():
    np.testing.assert_array_equal(query_stream("ref").integers(0, 3, size=(3, 3), dtype=np.int64),
                                  [[1, 0, 2], [1, 2, 2], [1, 1, 2]])
    np.testing.assert_array_equal(seed_stream("ref", "A").integers(0, 2, size=(3, 2), dtype=np.int64),
                                  [[1, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(seed_stream("ref", "B").integers(0, 2, size=(3, 2), dtype=np.int64),
                                  [[0, 1], [1, 1], [1, 1]])


@pytest.mark.parametrize("chunk_rows", [None, 1, 7, 4096, 10_000])
def test_9d2_bootstrap_engine(chunk_rows):
    draws = two_level_bootstrap("ref", [BootstrapInput("B", B_9D2), BootstrapInput("A", A_9D2)], chunk_rows=chunk_rows)
    delta = draws["A"].mean[:, 0] - draws["B"].mean[:, 0]
    assert int((delta <= 1e-12).sum()) == 1552
    assert int((delta >= -1e-12).sum()) == 9458
    assert bootstrap_p(delta) == pytest.approx(0.310569, abs=1e-6)
    assert delta.mean() == pytest.approx(0.332017, abs=1e-6)
    assert delta.var() == pytest.approx(0.076168, abs=1e-6)
    np.testing.assert_allclose(percentile_interval(delta), [-1 / 3, 1], atol=1e-12)


def test_9d2_exact_enumeration():
    """The 432 equally likely resamples: E* = 1/3, Var* = 2/27, exact p = 134/432."""
    q = np.array(np.meshgrid(*[range(3)] * 3, indexing="ij")).reshape(3, -1).T  # 27 query index rows
    s = np.array(np.meshgrid(*[range(2)] * 2, indexing="ij")).reshape(2, -1).T  # 4 seed index rows
    a, b = A_9D2[..., 0], B_9D2[..., 0]
    th_a = a[s][:, :, q].mean(axis=(1, 3))  # [4 seed rows, 27 query rows]
    th_b = b[s][:, :, q].mean(axis=(1, 3))
    delta = (th_a[:, None, :] - th_b[None, :, :]).ravel()
    assert len(delta) == 432
    assert delta.mean() == pytest.approx(1 / 3) and delta.var() == pytest.approx(2 / 27)
    assert (delta <= 1e-12).sum() == 67 and (delta >= -1e-12).sum() == 409


def test_9e_retrieval_metrics():
    ranks = np.array([1, 3, 1, 12, 2, 7, 1, 25, 4, 1])
    expect = {"R@1": 40.0, "R@5": 70.0, "R@10": 80.0, "MdR": 2.5, "MnR": 5.7, "MRR": 53.495238}
    for name, value in expect.items():
        assert run_metric(metric_def(name), ranks) == pytest.approx(value, abs=1e-6)
    ranks = np.array([1, 2, 3])  # pessimistic ranks of the 3x3 score example
    expect = {"R@1": 33.333333, "R@5": 100.0, "MdR": 2.0, "MnR": 2.0, "MRR": 61.111111}
    for name, value in expect.items():
        assert run_metric(metric_def(name), ranks) == pytest.approx(value, abs=1e-6)
    assert run_metric(metric_def("acc"), np.array([1, 0, 1, 1])) == 75.0


def test_9f_probability_of_improvement():
    x = [np.array([45.0, 46, 44]), np.array([60.0, 61, 62])]
    y = [np.array([44.0, 45, 46]), np.array([60.0, 59, 61])]
    res = probability_of_improvement(x, y, ["t1", "t2"], ["X@a", "X@a"], ["Y@b", "Y@b"])
    assert res.value == pytest.approx(0.638889, abs=1e-6)
    assert res.low <= res.value <= res.high
    for xs, ys, expect in zip(x, y, [0.5, 7 / 9], strict=True):
        u = sps.mannwhitneyu(xs, ys, alternative="greater").statistic / (len(xs) * len(ys))
        assert u == pytest.approx(expect)
