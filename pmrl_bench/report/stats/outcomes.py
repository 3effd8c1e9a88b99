"""Per-query outcomes grouped into independent units (docs/statistics.md 1.2); the metrics themselves live in pmrl_bench.metrics."""

from __future__ import annotations

import numpy as np

from pmrl_bench.metrics import (  # noqa: F401  (re-exported: the statistics read metrics through here)
    CORRECT,
    GROUP,
    OUTCOME_KINDS,
    RANK,
    MetricDef,
    dense_groups,
    metric_def,
    metric_sort_key,
    per_query_values,
    run_metric,
    split_metric,
)


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
