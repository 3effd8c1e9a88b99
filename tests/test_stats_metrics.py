"""The metric registry (pmrl_bench.metrics): names, directions, per-query values, refusal of unknown names."""

import numpy as np
import pytest

from pmrl_bench.errors import BenchError
from pmrl_bench.metrics import (
    RANK,
    compute_metrics,
    metric_def,
    metric_sort_key,
    per_query_values,
    require_metric,
)


def test_registry_computes_any_recall_and_refuses_typos_with_close_matches():
    ranks = np.array([1, 3, 1, 12, 2, 7, 1, 25, 4, 60])
    assert compute_metrics(["R@50", "MnR"], RANK, ranks) == {"R@50": 90.0, "MnR": 11.6}
    with pytest.raises(BenchError, match=r"unknown metric 'R@l'; did you mean .*'R@1'"):
        compute_metrics(["R@l"], RANK, ranks)
    with pytest.raises(BenchError, match="computed from 'correct' outcomes"):
        require_metric("acc", RANK)
    with pytest.raises(ValueError, match="no queries"):
        compute_metrics(["R@1"], RANK, np.array([], dtype=np.int64))


def test_definitions():
    assert metric_def("R@50").higher_is_better and metric_def("R@50").outcome == "rank"
    assert not metric_def("MnR").higher_is_better and metric_def("MdR").is_median
    assert metric_def("acc").outcome == "correct"
    assert metric_def("R@0") is None and metric_def("top5") is None
    np.testing.assert_allclose(per_query_values(metric_def("MRR"), np.array([1, 4])), [100, 25])
    with pytest.raises(ValueError):
        per_query_values(metric_def("MdR"), np.array([1, 2]))
    names = ["MRR", "acc", "R@10", "MdR", "R@1", "R@5", "MnR"]
    assert sorted(names, key=metric_sort_key) == ["R@1", "R@5", "R@10", "MdR", "MnR", "MRR", "acc"]


def test_pessimistic_ranks_from_scores_9e():
    """docs/statistics.md 9(e): ties count against the method; other relevant candidates never count."""
    torch = pytest.importorskip("torch")
    evaluation = pytest.importorskip("pmrl_bench.evaluation.retrieval")
    scores = torch.tensor([[0.75, 0.25, 0.5], [0.5, 0.5, 0.25], [0.5, 0.5, 0.5]])
    ranks = evaluation.retrieval_ranks(lambda a, b: scores[a:b], torch.arange(3), torch.arange(3))
    np.testing.assert_array_equal(ranks, [1, 2, 3])
    several = torch.tensor([[0.5, 0.75, 0.5, 0.25]])  # relevant {0, 2}: only candidate 1 beats them
    ranks = evaluation.retrieval_ranks(lambda a, b: several, torch.tensor([0]), torch.tensor([0, 1, 0, 2]))
    np.testing.assert_array_equal(ranks, [2])
