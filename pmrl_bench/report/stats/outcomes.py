"""Metrics as functions of per-query outcomes (stats.md 1.2): names, directions, per-query values."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

RANK, CORRECT, GROUP = "rank", "correct", "group"
OUTCOME_KINDS = (RANK, CORRECT)
_RECALL = re.compile(r"R@([1-9][0-9]*)")
CANONICAL_ORDER = ("R@1", "R@5", "R@10", "MdR", "MnR", "MRR", "acc")


@dataclass(frozen=True)
class MetricDef:
    """One metric of stats.md 1.2: which outcome it reads, its direction and how it is printed."""

    name: str
    outcome: str
    higher_is_better: bool
    unit: str

    @property
    def is_median(self) -> bool:
        """MdR has no per-query value; it is the median of the run's ranks."""
        return self.name == "MdR"

    @property
    def direction(self) -> str:
        """'higher is better' or 'lower is better'."""
        return "higher is better" if self.higher_is_better else "lower is better"


def metric_def(name: str) -> MetricDef | None:
    """The definition of a bare metric name (R@K, MRR, MnR, MdR, acc), or None if unknown."""
    if _RECALL.fullmatch(name):
        return MetricDef(name, RANK, True, "%")
    known = {
        "MRR": MetricDef("MRR", RANK, True, "% (x100)"),
        "MnR": MetricDef("MnR", RANK, False, "rank"),
        "MdR": MetricDef("MdR", RANK, False, "rank"),
        "acc": MetricDef("acc", CORRECT, True, "%"),
    }
    return known.get(name)


def metric_sort_key(name: str) -> tuple[int, int, str]:
    """Order bare metric names as R@1, R@5, R@10, ..., MdR, MnR, MRR, acc, then anything else."""
    m = _RECALL.fullmatch(name)
    if m:
        return (0, int(m.group(1)), name)
    if name in CANONICAL_ORDER:
        return (1, CANONICAL_ORDER.index(name), name)
    return (2, 0, name)


def split_metric(key: str) -> tuple[str, str]:
    """'t2v/R@1' -> ('t2v', 'R@1')."""
    prefix, _, name = key.rpartition("/")
    return prefix, name


def per_query_values(metric: MetricDef, outcomes: np.ndarray) -> np.ndarray:
    """y_q of stats.md 1.2 for every outcome (any shape), float64; not defined for MdR."""
    x = np.asarray(outcomes, dtype=np.float64)
    if metric.outcome == CORRECT:
        return 100.0 * x
    if metric.name == "MRR":
        return 100.0 / x
    if metric.name == "MnR":
        return x
    if metric.is_median:
        raise ValueError("MdR has no per-query value")
    k = int(_RECALL.fullmatch(metric.name).group(1))  # type: ignore[union-attr]
    return 100.0 * (x <= k)


def run_metric(metric: MetricDef, outcomes: np.ndarray) -> np.ndarray:
    """Run metric over the last axis: mean of y_q, or the median of the ranks for MdR."""
    if metric.is_median:
        return np.median(np.asarray(outcomes, dtype=np.float64), axis=-1)
    return per_query_values(metric, outcomes).mean(axis=-1)


def dense_groups(groups: np.ndarray) -> np.ndarray:
    """Group labels per query renumbered 0..G-1 in order of first sorted label."""
    return np.unique(np.asarray(groups), return_inverse=True)[1].reshape(-1)


def group_sums(x: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Column sums of x [Nq, C] within each group (dense ids 0..G-1): [G, C], one bincount."""
    c = x.shape[1]
    idx = groups[:, None] * c + np.arange(c)[None, :]
    return np.bincount(idx.ravel(), weights=x.ravel(), minlength=n_groups * c).reshape(n_groups, c)


def unit_means(values: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """Per-group means of y over axis 1 of [S, Nq, ...] (dense group ids 0..G-1); identity without groups."""
    if groups is None:
        return values
    n_groups = int(groups.max()) + 1
    sizes = np.bincount(groups, minlength=n_groups).astype(np.float64)
    moved = np.moveaxis(values, 1, 0)  # [Nq, S, ...]
    sums = group_sums(moved.reshape(moved.shape[0], -1), groups, n_groups)
    means = (sums / sizes[:, None]).reshape(n_groups, *moved.shape[1:])
    return np.moveaxis(means, 0, 1)
