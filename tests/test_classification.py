"""Classification evaluator: logistic-regression probe, zero-shot through class prompts, records, prompt encoding."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from pmrl_bench.data.encoders import ENCODER_FAMILIES, register_encoder
from pmrl_bench.data.features import ModalityFeatures, SplitFeatures, single_row_features
from pmrl_bench.data.prompts import attach_class_prompts, class_prompts, prompt_key
from pmrl_bench.errors import BenchError
from pmrl_bench.evaluation.classification import (
    L2_RULE,
    PROBE_L2_GRID,
    choose_l2,
    eval_set_digest,
    evaluate_classification,
    fit_logistic,
    fit_probe,
    predict,
    single_thread,
)
from pmrl_bench.task import ClassificationSpec, TaskSpec
from pmrl_bench.train.method import Method

NAMES = ("cat", "dog", "fish")


class Cosine(Method):
    """Cosine similarity between the query modality and the single candidate modality."""

    modality_counts = (1, None)  # evaluation only: never trained, so one modality is enough

    def similarity(self, query, candidates):
        (q,), (c,) = query.values(), candidates.values()
        return torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(c, dim=1).T


def identity_embed(modality: str, split: SplitFeatures) -> torch.Tensor:
    return split.modalities[modality].values


def blobs(n_per_class: int, seed: int, split: str) -> SplitFeatures:
    """Three well-separated Gaussian blobs in 4-d (class k centred on 3 * e_k)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(3).repeat_interleave(n_per_class)
    x = 3.0 * torch.eye(4)[labels] + 0.3 * torch.randn(len(labels), 4, generator=g)
    ids = tuple(f"{split}-{i}" for i in range(len(labels)))
    return SplitFeatures(split=split, item_ids=ids, modalities={"vision": single_row_features(x, ids)},
                         labels=labels, label_names=NAMES)


def test_fit_logistic_matches_scipy_on_the_same_objective():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 3, generator=g, dtype=torch.float64)
    y = (x[:, 0] + 0.5 * torch.randn(60, generator=g, dtype=torch.float64) > 0).long() + (x[:, 1] > 1).long()
    l2 = 0.1
    with single_thread():
        w, b = fit_logistic(x, y, 3, l2)

    xn, yn = x.numpy(), y.numpy()

    def objective(theta):
        W, B = theta[:9].reshape(3, 3), theta[9:]
        logits = xn @ W + B
        logz = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
        return np.mean(logz - logits[np.arange(60), yn]) + 0.5 * l2 * np.sum(W**2)

    ref = minimize(objective, np.zeros(12), method="BFGS", options={"gtol": 1e-10}).x
    ours = np.concatenate([w.numpy().ravel(), b.numpy()])
    assert objective(ours) == pytest.approx(objective(ref), abs=1e-9)
    # the bias is unpenalised and only defined up to a constant: compare the weights and centred biases
    np.testing.assert_allclose(w.numpy().ravel(), ref[:9], atol=1e-4)
    np.testing.assert_allclose(b.numpy() - b.numpy().mean(), ref[9:] - ref[9:].mean(), atol=1e-4)


def test_l2_chosen_on_validation_where_cross_validation_on_train_picks_another():
    """Train: three class-0 points left of zero and one class-1 point at x = 1; validation: two class-1 points.

    A weak penalty draws the boundary between the classes, the strong one (1e3) shrinks W to ~0 and answers
    the majority class 0 everywhere. On validation the weak one is right twice, the strong one never: the weak
    one is chosen. Leave-one-out on train (the old rule, recomputed below) ties them at 3/4 (the class-1 point
    is missed by both when held out, the class-0 points are found by both), and a tie goes to the strong one."""
    x = torch.tensor([[-2.0], [-1.5], [-1.0], [1.0]], dtype=torch.float64)
    y = torch.tensor([0, 0, 0, 1])
    x_val, y_val = torch.tensor([[1.0], [2.0]], dtype=torch.float64), torch.tensor([1, 1])
    grid = (1e-6, 1e3)
    best, val_acc, fits = choose_l2(x, y, x_val, y_val, 2, grid)
    assert val_acc == [100.0, 0.0] and grid[best] == 1e-6 and len(fits) == 2
    loo = [sum(int(predict(*fit_logistic(x[torch.arange(4) != k], y[torch.arange(4) != k], 2, l2), x[k:k + 1])[0] == y[k])
               for k in range(4)) for l2 in grid]
    assert loo == [3, 3]  # cross-validation cannot tell them apart: it would keep the stronger penalty, 1e3


def test_validation_ties_go_to_the_stronger_penalty_and_the_final_fit_adds_validation():
    """Class 2 appears only in validation: no train-only fit predicts it (ties: every penalty scores the two
    class-0/1 validation rows right and the class-2 row wrong), the final fit on train + validation does."""
    x = torch.tensor([[1.0, 0.0], [1.1, 0.0], [0.0, 1.0], [0.0, 1.1]], dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1])
    x_val = torch.tensor([[0.9, 0.0], [0.0, 0.9], [-1.0, -1.0]], dtype=torch.float64)
    y_val = torch.tensor([0, 1, 2])
    weight, bias, settings = fit_probe(x, y, x_val, y_val, 3)
    assert settings["val_acc"] == pytest.approx([200 / 3] * len(PROBE_L2_GRID))
    assert settings["l2"] == max(PROBE_L2_GRID) and settings["n_final_fit"] == 7 and settings["n_val"] == 3
    assert predict(weight, bias, torch.tensor([[-1.2, -1.0]])).tolist() == [2]


def test_predict_breaks_ties_towards_the_lowest_class():
    w = torch.zeros(2, 3, dtype=torch.float64)
    assert predict(w, torch.zeros(3, dtype=torch.float64), torch.ones(4, 2)).tolist() == [0, 0, 0, 0]


def test_linear_probe_separable_blobs_is_perfect_and_deterministic():
    spec = ClassificationSpec(name="probe", input="vision", mode="linear_probe")
    train, val, test = blobs(20, 0, "train"), blobs(5, 2, "val"), blobs(10, 1, "test")
    a = evaluate_classification(Cosine(["vision"]), identity_embed, train, val, test, spec)
    b = evaluate_classification(Cosine(["vision"]), identity_embed, train, val, test, spec)
    assert a == b
    assert a["metrics"] == {"probe/acc": 100.0}
    assert a["per_query"] == {"probe/correct": [1] * 30}
    proto = a["protocol"]["probe"]
    assert proto["mode"] == "linear_probe" and proto["n_classes"] == 3 and proto["n_test"] == 30
    assert proto["l2"] in proto["l2_grid"] and proto["n_train"] == 60 and proto["n_classes_in_test"] == 3
    assert proto["n_val"] == 15 and proto["n_final_fit"] == 75 and proto["l2_rule"] == L2_RULE
    assert proto["val_acc"] == [100.0] * 5 and proto["l2"] == max(PROBE_L2_GRID)  # all tie: the strongest penalty
    two_classes = SplitFeatures(split="test", item_ids=test.item_ids[:20], labels=test.labels[:20], label_names=NAMES,
                                modalities={"vision": single_row_features(test.modalities["vision"].values[:20],
                                                                          test.item_ids[:20])})
    out = evaluate_classification(Cosine(["vision"]), identity_embed, train, val, two_classes, spec)
    assert out["protocol"]["probe"]["n_classes"] == 3 and out["protocol"]["probe"]["n_classes_in_test"] == 2


def test_linear_probe_counts_rows_of_a_multi_row_modality():
    """Text input with two captions per item: each caption row is one sample with its item's label."""
    train, test = blobs(20, 0, "train"), blobs(2, 1, "test")
    x = test.modalities["vision"].values
    rows = ModalityFeatures(values=torch.cat([x, -x]), item_index=torch.arange(6).repeat(2),
                            row_ids=tuple(f"{i}#{k}" for k in range(2) for i in test.item_ids))
    test = SplitFeatures(split="test", item_ids=test.item_ids, modalities={"vision": rows},
                         labels=test.labels, label_names=NAMES)
    spec = ClassificationSpec(name="p", input="vision", mode="linear_probe")
    out = evaluate_classification(Cosine(["vision"]), identity_embed, train, blobs(2, 2, "val"), test, spec)
    assert out["per_query"]["p/correct"][:6] == [1] * 6  # the negated rows point away from every class
    assert len(out["per_query"]["p/correct"]) == 12
    assert out["eval_set"]["p"] == eval_set_digest(rows.row_ids, NAMES)


def test_eval_set_digest_is_the_documented_text():
    expected = hashlib.sha256(b"a\nb\n#\ncat\ndog").hexdigest()
    assert eval_set_digest(["a", "b"], ["cat", "dog"]) == expected


def with_prompts(split: SplitFeatures, spec: ClassificationSpec, prompt_vectors: torch.Tensor) -> SplitFeatures:
    rows = ModalityFeatures(values=prompt_vectors, item_index=torch.arange(len(prompt_vectors)),
                            row_ids=tuple(f"class#{n}" for n in NAMES))
    return SplitFeatures(split=split.split, item_ids=split.item_ids,
                         modalities={**split.modalities, prompt_key(spec): rows},
                         labels=split.labels, label_names=split.label_names)


ZS_SPEC = ClassificationSpec(name="zs", input="vision", mode="zero_shot", prompt="a {label}", prompt_modality="text")
ZS_PROMPTS = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])


def zero_shot_test_split() -> SplitFeatures:
    """Four vision rows with hand-checked nearest prompts: classes 0, 1, 0, and a class-2 row nearest class 0."""
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [1.0, 0.2]])
    ids = ("a", "b", "c", "d")
    return SplitFeatures(split="test", item_ids=ids, modalities={"vision": single_row_features(x, ids)},
                         labels=torch.tensor([0, 1, 0, 2]), label_names=NAMES)


def test_zero_shot_hand_checked_accuracy():
    test = zero_shot_test_split()
    out = evaluate_classification(Cosine(["vision", "text"]), identity_embed, test, None,
                                  with_prompts(test, ZS_SPEC, ZS_PROMPTS), ZS_SPEC)
    assert out["per_query"]["zs/correct"] == [1, 1, 1, 0]
    assert out["metrics"]["zs/acc"] == 75.0
    assert out["protocol"]["zs"]["prompt"] == "a {label}"


def test_zero_shot_applies_the_prompts_sign():
    test = zero_shot_test_split()
    flipped = with_prompts(test, ZS_SPEC, -ZS_PROMPTS)
    raw = evaluate_classification(Cosine(["vision", "text"]), identity_embed, test, None, flipped, ZS_SPEC)
    signed = evaluate_classification(Cosine(["vision", "text"]), identity_embed, test, None, flipped, ZS_SPEC,
                                     {("vision", "text"): -1.0})
    assert raw["per_query"]["zs/correct"] == [0, 0, 0, 1]  # the flipped prompts pick the wrong classes
    assert signed["per_query"]["zs/correct"] == [1, 1, 1, 0] and signed["protocol"]["zs"]["sign"] == -1.0


def test_zero_shot_without_prompt_features_is_a_one_line_error():
    spec = ClassificationSpec(name="zs", input="vision", mode="zero_shot")
    with pytest.raises(BenchError, match="class-prompt features"):
        evaluate_classification(Cosine(["vision"]), identity_embed, blobs(2, 0, "train"), None, blobs(2, 1, "test"), spec)


def test_class_prompts_fill_the_template_in_label_order():
    spec = ClassificationSpec(name="zs", input="vision", mode="zero_shot", prompt="a photo of a {label}.")
    assert class_prompts(spec, NAMES) == ["a photo of a cat.", "a photo of a dog.", "a photo of a fish."]
    with pytest.raises(BenchError, match="placeholder"):
        class_prompts(ClassificationSpec(name="x", input="vision", mode="zero_shot", prompt="none"), NAMES)


class CountingText:
    """A text encoder that embeds a string as (length, vowels) and counts its calls."""

    modality = "text"
    calls = 0

    def __init__(self, spec):
        self.spec = spec

    def identity(self):
        return {"family": "test_counting_text"}

    def encode(self, inputs):
        CountingText.calls += 1
        return torch.tensor([[len(t), sum(c in "aeiou" for c in t)] for t in inputs], dtype=torch.float32)


if "test_counting_text" not in ENCODER_FAMILIES:
    register_encoder("test_counting_text")(CountingText)


def test_attach_class_prompts_encodes_once_then_reads_the_cache(tmp_path):
    task = TaskSpec(
        name="t", version=1, kind="classification", modalities=["text", "vision"], adapter="x",
        classification=[ClassificationSpec(name="zs", input="vision", mode="zero_shot", prompt="a {label}"),
                        ClassificationSpec(name="lp", input="vision", mode="linear_probe")],
        metrics=["acc"], primary_metric="zs/acc",
    )
    config = {"data": {"cache_dir": str(tmp_path)}, "encoders": {"text": {"family": "test_counting_text"}}}
    split = blobs(2, 0, "test")
    CountingText.calls = 0
    first = attach_class_prompts(task, config, split)
    second = attach_class_prompts(task, config, split)
    assert CountingText.calls == 1
    feats = second.modalities[prompt_key(task.classification[0])]
    assert feats.row_ids == ("class#cat", "class#dog", "class#fish")
    assert feats.values.tolist() == [[5.0, 2.0], [5.0, 2.0], [6.0, 2.0]]  # "a cat", "a dog", "a fish"
    assert torch.equal(first.modalities[prompt_key(task.classification[0])].values, feats.values)
    assert set(second.modalities) == {"vision", "prompts:zs"}  # the linear probe needs no prompts
