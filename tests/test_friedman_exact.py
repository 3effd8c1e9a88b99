"""Permutation Friedman p: exact enumeration against brute force, Monte Carlo against exact, never 0."""

import itertools

import numpy as np
import pytest

import pmrl_bench.report.stats.ranking as ranking
from pmrl_bench.report.stats.ranking import friedman_permutation_p, task_ranks


def brute_force_p(ranks: np.ndarray) -> float:
    """Every assignment of a reordering to every task, counted directly."""
    n, k = ranks.shape
    observed = (ranks.sum(axis=0) ** 2).sum()
    hits = total = 0
    for choice in itertools.product(itertools.permutations(range(k)), repeat=n):
        sums = sum(ranks[t][list(p)] for t, p in enumerate(choice))
        hits += (sums**2).sum() >= observed - 1e-9
        total += 1
    return hits / total


@pytest.mark.parametrize("ranks", [
    np.tile([1.0, 2.0, 3.0], (3, 1)),  # identical orderings: 1/36, where Iman-Davenport gives F = inf, p = 0
    np.array([[1, 2.5, 2.5, 4], [2, 1, 3, 4], [1, 3, 2, 4]]),  # ties
    task_ranks(np.random.default_rng(0).normal(size=(3, 4)), [True] * 3),
])
def test_exact_matches_brute_force(ranks):
    res = friedman_permutation_p(ranks)
    assert res.exact and res.p == pytest.approx(brute_force_p(ranks), abs=1e-12)
    assert res.p > 0


def test_identical_orderings_of_three_methods_on_three_tasks():
    assert friedman_permutation_p(np.tile([1.0, 2.0, 3.0], (3, 1))).p == pytest.approx(1 / 36)


def test_monte_carlo_when_enumeration_is_too_large(monkeypatch):
    ranks = np.array([[1, 2.5, 2.5, 4], [2, 1, 3, 4], [1, 3, 2, 4]])
    exact = friedman_permutation_p(ranks).p
    monkeypatch.setattr(ranking, "EXACT_LIMIT", 0)
    res = friedman_permutation_p(ranks)
    assert not res.exact and res.n_resamples == 10_000
    assert abs(res.p - exact) < 4 * np.sqrt(exact * (1 - exact) / 10_000)
    assert friedman_permutation_p(ranks).p == res.p  # fixed stream
    assert friedman_permutation_p(np.tile(np.arange(1.0, 5.0), (8, 1))).p == pytest.approx(1 / 10_001)  # never 0
