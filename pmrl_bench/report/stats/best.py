"""Best entity of a leaderboard column and which others are significantly worse (docs/statistics.md 5, protocol v2).

"Not significantly worse than the best" compares each entity with the best *selected from the data*.
Adjusting only the comparisons against that best does not control the family-wise error (with 6 equal
methods one is marked worse about 10% of the time), so every pair of tested entities is tested and
the k (k - 1) / 2 p-values are adjusted together: Holm over all pairs controls the family-wise error
of every pairwise claim, hence of the claims against whichever entity turns out best.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pmrl_bench.report.stats.multiple import adjust
from pmrl_bench.report.stats.paired import SeedQueryParts, pairwise_p


@dataclass(frozen=True)
class ColumnVerdict:
    """Bold entities (exact ties), the test reference, and adjusted p per entity vs it (NaN: not tested)."""

    best: tuple[int, ...]
    reference: int | None
    adjusted_p: np.ndarray
    n_comparisons: int


def all_pairs_adjusted(parts: Sequence[SeedQueryParts], correction: str = "holm") -> np.ndarray:
    """Pairwise p-values adjusted together over the k (k - 1) / 2 pairs, symmetric [k, k, *P]."""
    k = len(parts)
    p = pairwise_p(parts)
    i, j = np.triu_indices(k, 1)
    adjusted = np.ones_like(p)
    adjusted[i, j] = adjusted[j, i] = adjust(p[i, j], correction)
    return adjusted


def column_verdict(
    values: np.ndarray,
    eligible: np.ndarray,
    higher_is_better: bool,
    parts: Sequence[SeedQueryParts | None] | None = None,
    correction: str = "holm",
) -> ColumnVerdict:
    """Best among eligible entries (entries are in label order); all-pairs adjusted tests when parts are given."""
    values = np.asarray(values, dtype=np.float64)
    adjusted = np.full(len(values), np.nan)
    idx = np.nonzero(np.asarray(eligible))[0]
    if len(idx) == 0:
        return ColumnVerdict((), None, adjusted, 0)
    target = values[idx].max() if higher_is_better else values[idx].min()
    best = tuple(int(i) for i in idx[values[idx] == target])
    ref = best[0]
    if parts is None or len(idx) < 2:
        return ColumnVerdict(best, ref, adjusted, 0)
    matrix = all_pairs_adjusted([parts[i] for i in idx], correction)
    row = matrix[int(np.nonzero(idx == ref)[0][0])]
    others = idx != ref
    adjusted[idx[others]] = row[others]
    return ColumnVerdict(best, ref, adjusted, len(idx) * (len(idx) - 1) // 2)
