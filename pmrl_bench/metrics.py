"""The one metric registry: each metric's name, direction and how it is computed from per-query outcomes.

Task validation (pmrl_bench.task), evaluation (pmrl_bench.evaluate) and the statistics (pmrl_bench.report)
all read this module, so a metric name means the same thing everywhere (docs/statistics.md 1.2).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pmrl_bench.errors import BenchError, unknown_name

RANK, CORRECT = "rank", "correct"
OUTCOME_KINDS = (RANK, CORRECT)
GROUP = "group"  # '<prefix>/group': the item index of each query when the task declares query_group
_RECALL = re.compile(r"R@([1-9][0-9]*)")
CANONICAL_ORDER = ("R@1", "R@5", "R@10", "MdR", "MnR", "MRR", "acc")
DEFAULT_RETRIEVAL_METRICS = ("R@1", "R@5", "R@10", "MdR", "MnR", "MRR")


@dataclass(frozen=True)
class MetricDef:
    """One metric: which outcome it reads, its direction and how it is printed."""

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


_FIXED = {
    "MRR": MetricDef("MRR", RANK, True, "% (x100)"),
    "MnR": MetricDef("MnR", RANK, False, "rank"),
    "MdR": MetricDef("MdR", RANK, False, "rank"),
    "acc": MetricDef("acc", CORRECT, True, "%"),
}


def metric_def(name: str) -> MetricDef | None:
    """The definition of a bare metric name (R@K for any K >= 1, MRR, MnR, MdR, acc), or None if unknown."""
    if _RECALL.fullmatch(name):
        return MetricDef(name, RANK, True, "%")
    return _FIXED.get(name)


def require_metric(name: str, outcome: str | None = None) -> MetricDef:
    """The definition of `name`; BenchError with close matches when unknown or not computed from `outcome`."""
    mdef = metric_def(name)
    if mdef is None:
        raise unknown_name("metric", name, [*DEFAULT_RETRIEVAL_METRICS, "acc"], "(R@K takes any K >= 1)")
    if outcome is not None and mdef.outcome != outcome:
        raise BenchError(f"metric {name!r} is computed from '{mdef.outcome}' outcomes, not '{outcome}' outcomes")
    return mdef


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
    """y_q of docs/statistics.md 1.2 for every outcome (any shape), float64; not defined for MdR."""
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


def compute_metrics(names: Sequence[str], outcome: str, values: np.ndarray) -> dict[str, float]:
    """The named metrics of one run from its per-query outcomes of kind `outcome` (ranks or 0/1)."""
    x = np.asarray(values)
    if x.size == 0:
        raise ValueError("no queries")
    return {n: float(run_metric(require_metric(n, outcome), x)) for n in names}


def dense_groups(groups: np.ndarray) -> np.ndarray:
    """Group labels per query renumbered 0..G-1 in order of first sorted label."""
    return np.unique(np.asarray(groups), return_inverse=True)[1].reshape(-1)
