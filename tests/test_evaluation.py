"""Retrieval ranks, tie rule, chunking and metrics against hand-checked values (docs/statistics.md 9; docs/protocol.md, Reference values)."""

import numpy as np
import pytest
import torch

from pmrl_bench.evaluation.retrieval import eval_set_digest, retrieval_ranks
from pmrl_bench.metrics import CORRECT, DEFAULT_RETRIEVAL_METRICS, RANK, compute_metrics


def retrieval_metrics(ranks):
    return compute_metrics(DEFAULT_RETRIEVAL_METRICS, RANK, ranks)


def _ranks(scores, query_item, cand_item, chunk=None):
    s = torch.as_tensor(scores, dtype=torch.float64)
    return retrieval_ranks(lambda a, b: s[a:b].clone(), torch.as_tensor(query_item), torch.as_tensor(cand_item), chunk)


def test_metrics_reference_values():
    m = retrieval_metrics(np.array([1, 3, 1, 12, 2, 7, 1, 25, 4, 1]))
    assert m["R@1"] == pytest.approx(40.0)
    assert m["R@5"] == pytest.approx(70.0)
    assert m["R@10"] == pytest.approx(80.0)
    assert m["MdR"] == pytest.approx(2.5)
    assert m["MnR"] == pytest.approx(5.7)
    assert m["MRR"] == pytest.approx(53.495238, abs=1e-6)


def test_pessimistic_ties_reference():
    scores = [[0.75, 0.25, 0.5], [0.5, 0.5, 0.25], [0.5, 0.5, 0.5]]
    ranks = _ranks(scores, [0, 1, 2], [0, 1, 2])
    assert ranks.tolist() == [1, 2, 3]
    m = retrieval_metrics(ranks)
    assert m["R@1"] == pytest.approx(33.333333, abs=1e-6)
    assert m["MRR"] == pytest.approx(61.111111, abs=1e-6)
    assert m["MdR"] == 2 and m["MnR"] == 2


def test_several_relevant_candidates_count_only_irrelevant():
    # relevant {0, 2}; best relevant 0.5; only candidate 1 (0.75) beats it -> rank 2
    ranks = _ranks([[0.5, 0.75, 0.5, 0.25]], [7], [7, 1, 7, 2])
    assert ranks.tolist() == [2]


def test_constant_scorer_scores_at_chance_not_perfect():
    n = 50
    ranks = _ranks(np.zeros((n, n)), np.arange(n), np.arange(n))
    assert (ranks == n).all()
    assert retrieval_metrics(ranks)["R@1"] == 0.0


def test_cosine_t2v_reference_with_tie():
    # reference batch (docs/protocol.md, Reference values): caption 1 ties items 0 and 1 at 0.707107 -> pessimistic ranks (1, 2, 1), R@1 66.7
    t = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.float64)
    v = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 2, 0]], dtype=torch.float64)
    t, v = t / t.norm(dim=1, keepdim=True), v / v.norm(dim=1, keepdim=True)
    ranks = _ranks(t @ v.T, [0, 1, 2], [0, 1, 2])
    assert ranks.tolist() == [1, 2, 1]
    assert retrieval_metrics(ranks)["R@1"] == pytest.approx(66.666667, abs=1e-5)


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_chunked_ranks_equal_full_argsort(chunk):
    g = torch.Generator().manual_seed(0)
    n_q, n_c = 40, 30
    scores = torch.randint(0, 5, (n_q, n_c), generator=g).double()  # many ties
    query_item = torch.randint(0, n_c, (n_q,), generator=g)
    ranks = _ranks(scores, query_item, torch.arange(n_c), chunk)
    # reference: full sort per row, ties broken against the relevant candidate
    for q in range(n_q):
        rel = int(query_item[q])
        order = sorted(range(n_c), key=lambda j: (-float(scores[q, j]), j == rel))
        assert ranks[q] == order.index(rel) + 1


def test_nan_scores_are_an_error():
    with pytest.raises(RuntimeError, match="NaN"):
        _ranks([[float("nan"), 0.0], [0.0, 1.0]], [0, 1], [0, 1])


def test_eval_set_digest_depends_on_order_and_ids():
    a = eval_set_digest(["q1", "q2"], ["c1", "c2"])
    assert a == eval_set_digest(["q1", "q2"], ["c1", "c2"])
    assert a != eval_set_digest(["q2", "q1"], ["c1", "c2"])
    assert a != eval_set_digest(["q1", "q2"], ["c1", "c3"])
    assert len(a) == 64


def test_accuracy():
    assert compute_metrics(["acc"], CORRECT, np.array([1, 0, 1, 1])) == {"acc": 75.0}


def test_ranks_count_exactly_beyond_the_float32_and_bf16_integer_range(monkeypatch):
    import pmrl_bench.evaluation.retrieval as retrieval

    tied = torch.zeros(3, 600, dtype=torch.bfloat16)  # bf16 counts 0/1 exactly only to 256
    assert retrieval_ranks(lambda a, b: tied[a:b].clone(), torch.arange(3), torch.arange(600)).tolist() == [600] * 3
    g = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 4, (20, 30), generator=g).float()
    items = torch.randint(0, 30, (20,), generator=g)
    expected = _ranks(scores, items, torch.arange(30))
    monkeypatch.setattr(retrieval, "EXACT_COUNT", 8)  # the float64 accumulation path
    assert (retrieval_ranks(lambda a, b: scores[a:b].clone(), items, torch.arange(30), 7) == expected).all()


def test_nan_anywhere_is_an_error_but_opposite_infinities_are_not():
    with pytest.raises(RuntimeError, match="NaN"):
        _ranks([[0.0, 1.0, float("nan")], [0.0, 1.0, 2.0]], [0, 1], [0, 1, 2])
    inf = float("inf")
    assert _ranks([[0.5, inf, -inf], [-inf, 0.0, inf]], [0, 1], [0, 1, 2]).tolist() == [2, 2]
