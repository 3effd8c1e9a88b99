"""`--limit N`: the first N train items, and the first N test queries ranked against the whole gallery."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from test_classification import NAMES, Cosine, identity_embed, with_prompts
from test_qa import MeanCosine, identity, mc_split
from torch import nn

from pmrl_bench.data.features import (
    ModalityFeatures,
    QuestionFeatures,
    SplitFeatures,
    first_items,
    first_queries,
    query_rows,
    single_row_features,
    split_questions,
)
from pmrl_bench.evaluation.classification import evaluate_classification
from pmrl_bench.evaluation.qa import evaluate_qa
from pmrl_bench.evaluation.retrieval import evaluate_direction
from pmrl_bench.task import ClassificationSpec, QASpec, RetrievalDirection

IDS = ("a", "b", "c", "d")


def retrieval_split() -> SplitFeatures:
    """Four items; text queries t_i and vision candidates v_i (2-d). By hand, cosine ranks: t0 -> v0 is beaten by
    v2 (1.0 > 0.894), so rank 2; t1 -> v1 rank 1 (1.0 > 0.995 of v3); t2 -> v2 rank 1; t3 -> v3: v1 scores 1.0 >
    0.995, rank 2."""
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.0, 1.0]])
    vision = torch.tensor([[1.0, 0.5], [0.0, 1.0], [1.0, 0.0], [0.1, 1.0]])
    return SplitFeatures("test", IDS, {"text": single_row_features(text, IDS), "vision": single_row_features(vision, IDS)})


IDENTITY_HEADS = SimpleNamespace(heads={"text": nn.Identity(), "vision": nn.Identity()})
T2V = RetrievalDirection(name="t2v", query=["text"], candidates=["vision"])


def test_first_queries_cuts_the_query_rows_and_keeps_the_gallery():
    text = ModalityFeatures(torch.arange(10.0).view(5, 2), torch.tensor([0, 0, 1, 2, 2]), ("a#0", "a#1", "b#0", "c#0", "c#1"))
    split = SplitFeatures("test", ("a", "b", "c"), {"text": text, "vision": single_row_features(torch.eye(3), ("a", "b", "c"))})
    limited = first_queries(split, 3)
    assert limited.max_queries == 3 and limited.info["max_queries"] == 3 and limited.n_items == 3
    cut = query_rows(limited, "text")
    assert cut.modalities["text"].row_ids == ("a#0", "a#1", "b#0") and cut.modalities["text"].item_index.tolist() == [0, 0, 1]
    assert cut.modalities["vision"] is split.modalities["vision"] and cut.item_ids == ("a", "b", "c")
    assert query_rows(split, "text") is split and query_rows(first_queries(split, 9), "text").modalities["text"] is text


def test_limited_retrieval_ranks_the_first_queries_against_every_item():
    full = evaluate_direction(Cosine(["text", "vision"]), IDENTITY_HEADS, retrieval_split(), T2V, ["R@1"], "cpu")
    assert full.per_query["t2v/rank"] == [2, 1, 1, 2]
    out = evaluate_direction(Cosine(["text", "vision"]), IDENTITY_HEADS, first_queries(retrieval_split(), 2), T2V,
                             ["R@1"], "cpu")
    assert out.per_query["t2v/rank"] == [2, 1]  # t0 is still beaten by v2, an item past the limit
    assert out.metrics["t2v/R@1"] == 50.0
    assert out.protocol["t2v"]["n_queries"] == 2 and out.protocol["t2v"]["n_candidates"] == 4
    # the first-N-items cut (the old --limit) would have dropped v2 and ranked t0 first
    old = evaluate_direction(Cosine(["text", "vision"]), IDENTITY_HEADS, first_items(retrieval_split(), 2), T2V,
                             ["R@1"], "cpu")
    assert old.per_query["t2v/rank"] == [1, 1]


def test_limited_classification_keeps_every_class():
    """The hand-checked zero-shot case of test_classification ([1, 1, 1, 0] over 4 rows), limited to 3 rows."""
    spec = ClassificationSpec(name="zs", input="vision", mode="zero_shot", prompt="a {label}", prompt_modality="text")
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [1.0, 0.2]])
    test = SplitFeatures(split="test", item_ids=IDS, modalities={"vision": single_row_features(x, IDS)},
                         labels=torch.tensor([0, 1, 0, 2]), label_names=NAMES)
    prompts = with_prompts(test, spec, torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
    out = evaluate_classification(Cosine(["vision", "text"]), identity_embed, test, None, first_queries(prompts, 3), spec)
    assert out["per_query"]["zs/correct"] == [1, 1, 1] and out["metrics"]["zs/acc"] == 100.0
    assert out["protocol"]["zs"]["n_test"] == 3 and out["protocol"]["zs"]["n_classes"] == 3


def test_limited_qa_answers_the_first_questions():
    """The hand-checked multiple-choice case of test_qa ([1, 1, 1, 0] over 4 questions), limited to the first 2."""
    spec = QASpec(name="mc", mode="multiple_choice", media=["vision"])
    out = evaluate_qa(MeanCosine(["text", "vision"]), identity, mc_split(), None, first_queries(mc_split(), 2), spec)
    assert out["per_query"] == {"mc/correct": [1, 1]} and out["protocol"]["mc"]["n_test"] == 2
    assert split_questions(first_queries(mc_split(), 3)).ids == ("a", "b", "c")
    unlimited = mc_split()
    assert split_questions(unlimited) is unlimited.questions


def test_first_items_keeps_the_questions_of_the_first_items():
    questions = QuestionFeatures(ids=("q0", "q1", "q2", "q3"), item_index=torch.tensor([0, 2, 1, 0]),
                                 question=torch.arange(4.0).view(4, 1), answers=("w", "x", "y", "z"), qtypes=("t",) * 4,
                                 candidates=torch.arange(8.0).view(4, 2, 1))
    split = SplitFeatures("train", ("i0", "i1", "i2"), {"vision": single_row_features(torch.eye(3), ("i0", "i1", "i2"))},
                          questions=questions)
    cut = first_items(split, 2).questions
    assert cut.ids == ("q0", "q2", "q3") and cut.answers == ("w", "y", "z") and cut.item_index.tolist() == [0, 1, 0]
    assert cut.question.flatten().tolist() == [0.0, 2.0, 3.0] and cut.candidates[:, 0, 0].tolist() == [0.0, 4.0, 6.0]
