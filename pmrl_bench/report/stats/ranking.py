"""Ranking across tasks: mean ranks, Friedman / Iman-Davenport, Nemenyi CD, cliques, PoI (docs/statistics.md 6)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from pmrl_bench.report.stats.bootstrap import percentile_interval
from pmrl_bench.report.stats.streams import N_RESAMPLES, STATS_SEED, friedman_stream, poi_stream, seed_counts

ALPHA = 0.05


def task_ranks(scores: np.ndarray, higher_is_better: Sequence[bool]) -> np.ndarray:
    """Ranks of k methods within each of N tasks, [N, k]: 1 = best, ties averaged."""
    sign = np.where(np.asarray(higher_is_better), -1.0, 1.0)[:, None]
    return sps.rankdata(sign * np.asarray(scores, dtype=np.float64), axis=1)


@dataclass(frozen=True)
class Omnibus:
    """Friedman chi2_F (tie-corrected) and the Iman-Davenport F test; NaN statistic: no rank differences."""

    chi2: float
    f: float
    df1: int
    df2: int
    p: float

    @property
    def no_differences(self) -> bool:
        """Every task is fully tied."""
        return bool(np.isnan(self.chi2))


def friedman_iman_davenport(ranks: np.ndarray) -> Omnibus:
    """Omnibus test over a [N tasks, k methods] rank matrix (k >= 3, N >= 2)."""
    n, k = ranks.shape
    df1, df2 = k - 1, (k - 1) * (n - 1)
    if np.all(ranks == ranks[:, :1]):
        return Omnibus(float("nan"), float("nan"), df1, df2, float("nan"))
    chi2 = float(sps.friedmanchisquare(*ranks.T).statistic)
    denom = n * (k - 1) - chi2
    if denom <= 1e-12 * n * k:
        return Omnibus(chi2, float("inf"), df1, df2, 0.0)
    f = (n - 1) * chi2 / denom
    return Omnibus(chi2, f, df1, df2, float(sps.f.sf(f, df1, df2)))


EXACT_LIMIT = 4_000_000  # distinct rank-sum vectors x k! per step of the exact enumeration
ID_MIN_TASKS = 10  # Iman-Davenport's F approximation is reported only from this many tasks on


@dataclass(frozen=True)
class FriedmanP:
    """Permutation p-value of the Friedman statistic: exact, or Monte Carlo with (b + 1) / (R + 1)."""

    p: float
    exact: bool
    n_resamples: int  # 0 when exact


def _rank_sum_stat(sums: np.ndarray) -> np.ndarray:
    """The Friedman statistic up to constants for fixed ties: sum of squared rank sums (last axis)."""
    return (sums.astype(np.float64) ** 2).sum(axis=-1)


def _exact_friedman(doubled: np.ndarray) -> float | None:
    """Exact p by enumerating every within-task permutation (rank sums merged as they repeat); None if too large."""
    n, k = doubled.shape
    perms = np.array(list(itertools.permutations(range(k))))
    sums, weight = doubled[:1].astype(np.int64), np.ones(1)  # the first task fixed: symmetry
    for row in doubled[1:]:
        if len(sums) * len(perms) > EXACT_LIMIT:
            return None
        grid = (sums[:, None, :] + row[perms][None]).reshape(-1, k)
        sums, inverse = np.unique(grid, axis=0, return_inverse=True)
        weight = np.bincount(inverse.ravel(), weights=np.repeat(weight, len(perms)))
    observed = _rank_sum_stat(doubled.sum(axis=0))
    hit = _rank_sum_stat(sums) >= observed - 1e-9 * max(1.0, observed)
    return float(weight[hit].sum() / weight.sum())


def friedman_permutation_p(ranks: np.ndarray, n_resamples: int = N_RESAMPLES, seed: int = STATS_SEED) -> FriedmanP:
    """Friedman test by permuting ranks within tasks: exact when enumerable, else Monte Carlo; never 0."""
    doubled = np.rint(2 * np.asarray(ranks, dtype=np.float64)).astype(np.int64)  # ties give halves
    exact = _exact_friedman(doubled)
    if exact is not None:
        return FriedmanP(exact, True, 0)
    gen = friedman_stream(seed)
    drawn = gen.permuted(np.broadcast_to(doubled, (n_resamples, *doubled.shape)), axis=2)
    observed = _rank_sum_stat(doubled.sum(axis=0))
    b = int((_rank_sum_stat(drawn.sum(axis=1)) >= observed - 1e-9 * max(1.0, observed)).sum())
    return FriedmanP((b + 1) / (n_resamples + 1), False, n_resamples)


def nemenyi_q(k: int, alpha: float = ALPHA) -> float:
    """q_alpha of the Nemenyi test: studentized range quantile (df = inf) / sqrt(2)."""
    return float(sps.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2))


def critical_difference(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi critical difference of mean ranks for k methods over n tasks."""
    return nemenyi_q(k, alpha) * float(np.sqrt(k * (k + 1) / (6 * n)))


def nemenyi_p(mean_ranks: np.ndarray, n: int) -> np.ndarray:
    """Pairwise Nemenyi p-values [k, k] from mean ranks over n tasks."""
    k = len(mean_ranks)
    diff = np.abs(mean_ranks[:, None] - mean_ranks[None, :])
    return sps.studentized_range.sf(diff * np.sqrt(2) / np.sqrt(k * (k + 1) / (6 * n)), k, np.inf)


def cliques(sorted_ranks: np.ndarray, cd: float) -> list[tuple[int, int]]:
    """Maximal runs [i, j] of consecutive methods (ascending mean rank) spanning less than CD; no singletons."""
    r = np.asarray(sorted_ranks, dtype=np.float64)
    last = np.searchsorted(r, r + cd, side="left") - 1  # last j with r[j] - r[i] < cd
    last = np.maximum(last, np.arange(len(r)))
    keep = (last > np.arange(len(r))) & (last > np.concatenate([[-1], last[:-1]]))
    return [(int(i), int(last[i])) for i in np.nonzero(keep)[0]]


def wilcoxon_p(differences: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p on per-task differences (k = 2); NaN when all are zero."""
    d = np.asarray(differences, dtype=np.float64)
    if np.all(d == 0):
        return float("nan")
    return float(sps.wilcoxon(d).pvalue)


@dataclass(frozen=True)
class PoI:
    """Probability of improvement of X over Y and its stratified-bootstrap percentile interval."""

    value: float
    low: float
    high: float


def probability_of_improvement(
    x: Sequence[np.ndarray],
    y: Sequence[np.ndarray],
    tasks: Sequence[str],
    x_keys: Sequence[str],
    y_keys: Sequence[str],
    n_resamples: int = N_RESAMPLES,
    seed: int = STATS_SEED,
) -> PoI:
    """P(X > Y) over per-seed scores (higher is better) per task, averaged over tasks (docs/statistics.md 6.5)."""
    points, draws = [], []
    for xs, ys, task, kx, ky in zip(x, y, tasks, x_keys, y_keys, strict=True):
        xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
        c = (xs[:, None] > ys[None, :]) + 0.5 * (xs[:, None] == ys[None, :])
        norm = len(xs) * len(ys)
        points.append(c.sum() / norm)
        ux = seed_counts(poi_stream(task, kx, seed), n_resamples, len(xs))
        uy = seed_counts(poi_stream(task, ky, seed), n_resamples, len(ys))
        draws.append(np.einsum("ri,ij,rj->r", ux, c, uy) / norm)
    lo, hi = percentile_interval(np.mean(draws, axis=0))
    return PoI(float(np.mean(points)), float(lo), float(hi))
