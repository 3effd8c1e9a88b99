"""Best entity of a leaderboard column and the adjusted tests of the others against it (docs/statistics.md 5)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pmrl_bench.report.stats.multiple import adjust
from pmrl_bench.report.stats.paired import SeedQueryParts, crossed_t_tests


@dataclass(frozen=True)
class ColumnVerdict:
    """Bold entities (exact ties), the test reference, and adjusted p per entity (NaN: not tested)."""

    best: tuple[int, ...]
    reference: int | None
    adjusted_p: np.ndarray
    n_comparisons: int


def column_verdict(
    values: np.ndarray,
    eligible: np.ndarray,
    higher_is_better: bool,
    parts: Sequence[SeedQueryParts | None] | None = None,
    correction: str = "holm",
) -> ColumnVerdict:
    """Best among eligible entries (entries are in label order); test the others when parts are given."""
    values = np.asarray(values, dtype=np.float64)
    adjusted = np.full(len(values), np.nan)
    idx = np.nonzero(np.asarray(eligible))[0]
    if len(idx) == 0:
        return ColumnVerdict((), None, adjusted, 0)
    target = values[idx].max() if higher_is_better else values[idx].min()
    best = tuple(int(i) for i in idx[values[idx] == target])
    ref = best[0]
    others = [int(i) for i in idx if i != ref]
    if parts is None or not others:
        return ColumnVerdict(best, ref, adjusted, 0)
    res = crossed_t_tests(parts[ref], [parts[i] for i in others])
    adjusted[others] = adjust(res.p, correction)
    return ColumnVerdict(best, ref, adjusted, len(others))
