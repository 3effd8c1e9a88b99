"""The per-query metric definitions of pmrl_bench.report.stats agree with the evaluator's pmrl_bench.evaluate.metrics."""

import numpy as np
import pytest

from pmrl_bench.report.stats.outcomes import metric_def, metric_sort_key, per_query_values, run_metric

metrics = pytest.importorskip("pmrl_bench.evaluate.metrics")


@pytest.mark.parametrize("seed", range(4))
def test_retrieval_metrics_agree(seed):
    rng = np.random.default_rng(seed)
    ranks = rng.integers(1, 40, size=int(rng.integers(2, 300)))
    for name, value in metrics.retrieval_metrics(ranks).items():
        assert run_metric(metric_def(name), ranks) == pytest.approx(value, abs=1e-9), name


def test_accuracy_agrees():
    correct = np.random.default_rng(0).integers(0, 2, size=101)
    assert run_metric(metric_def("acc"), correct) == pytest.approx(metrics.accuracy(correct)["acc"], abs=1e-9)


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
    """stats.md 9(e): ties count against the method; other relevant candidates never count."""
    torch = pytest.importorskip("torch")
    evaluation = pytest.importorskip("pmrl_bench.evaluate.retrieval")
    scores = torch.tensor([[0.75, 0.25, 0.5], [0.5, 0.5, 0.25], [0.5, 0.5, 0.5]])
    ranks = evaluation.retrieval_ranks(lambda a, b: scores[a:b], torch.arange(3), torch.arange(3))
    np.testing.assert_array_equal(ranks, [1, 2, 3])
    several = torch.tensor([[0.5, 0.75, 0.5, 0.25]])  # relevant {0, 2}: only candidate 1 beats them
    ranks = evaluation.retrieval_ranks(lambda a, b: several, torch.tensor([0]), torch.tensor([0, 1, 0, 2]))
    np.testing.assert_array_equal(ranks, [2])
