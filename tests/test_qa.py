"""QA evaluators (multiple choice, open-ended + baselines), question checks and the synthetic-qa task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from records_factory import write
from test_leaderboard import header_cells, section, table_rows

from pmrl_bench.cli import main
from pmrl_bench.data.features import (
    QuestionFeatures,
    SplitFeatures,
    first_items,
    kept_questions,
    single_row_features,
)
from pmrl_bench.data.items import Question
from pmrl_bench.data.questions import check_questions, check_task_questions
from pmrl_bench.data.validation import carve_validation
from pmrl_bench.errors import BenchError
from pmrl_bench.evaluation.classification import L2_RULE, PROBE_L2_GRID
from pmrl_bench.evaluation.qa import (
    answer_targets,
    answer_vocabulary,
    evaluate_qa,
    fuse,
    mc_correct,
    mc_scores,
    prior_correct,
)
from pmrl_bench.runner import RunRequest, execute
from pmrl_bench.task import QASpec, TaskSpec, load_task
from pmrl_bench.train.method import Method


class MeanCosine(Method):
    """Mean cosine of the (single) query modality against every candidate modality."""

    def similarity(self, query, candidates):
        (q,) = query.values()
        q = torch.nn.functional.normalize(q, dim=1)
        return torch.stack([q @ torch.nn.functional.normalize(c, dim=1).T for c in candidates.values()]).mean(0)


def identity(modality: str, rows: torch.Tensor) -> torch.Tensor:
    return rows


def test_mc_scores_keep_each_question_against_its_own_media():
    method = MeanCosine(["text", "vision"])
    media = {"vision": torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])}
    cands = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [-1.0, 0.0]]])
    expected = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2 ** -0.5, -(2 ** -0.5)]])
    for chunk in (1, 2, 64):  # chunking must not change the scores
        assert torch.allclose(mc_scores(method, cands, media, chunk=chunk), expected)


def test_mc_ties_count_against_the_method():
    scores = torch.tensor([[0.9, 0.1, 0.2], [0.5, 0.5, 0.1], [0.1, 0.2, 0.3]])
    assert mc_correct(scores, torch.tensor([0, 0, 1])).tolist() == [True, False, False]


def mc_split() -> SplitFeatures:
    """Three items on the axes; four questions, each with 3 candidates (the answer index as the text)."""
    vision = torch.eye(3)
    cands = torch.stack([torch.eye(3)] * 4)  # candidate c points along axis c
    questions = QuestionFeatures(ids=("a", "b", "c", "d"), item_index=torch.tensor([0, 1, 2, 2]),
                                 question=torch.zeros(4, 3), answers=("0", "1", "2", "0"), qtypes=("",) * 4,
                                 candidates=cands)
    return SplitFeatures(split="test", item_ids=("i0", "i1", "i2"),
                         modalities={"vision": single_row_features(vision, ("i0", "i1", "i2"))}, questions=questions)


def test_multiple_choice_record_parts_hand_checked():
    spec = QASpec(name="mc", mode="multiple_choice", media=["vision"])
    out = evaluate_qa(MeanCosine(["text", "vision"]), identity, mc_split(), None, mc_split(), spec)
    assert out["per_query"] == {"mc/correct": [1, 1, 1, 0]}
    assert out["metrics"] == {"mc/acc": 75.0}
    assert out["protocol"]["mc"]["n_candidates"] == 3 and set(out["eval_set"]) == {"mc"}


def test_multiple_choice_applies_the_media_signs():
    """A sign-invariant method's media that came out flipped against the text: every answer is the wrong one
    until the calibrated sign (-1) turns them back; the record keeps the sign."""
    spec = QASpec(name="mc", mode="multiple_choice", media=["vision"])
    flipped = mc_split()
    flipped.modalities["vision"].values.neg_()
    raw = evaluate_qa(MeanCosine(["text", "vision"]), identity, flipped, None, flipped, spec)
    signed = evaluate_qa(MeanCosine(["text", "vision"]), identity, flipped, None, flipped, spec,
                         {("text", "vision"): -1.0})
    assert raw["per_query"] == {"mc/correct": [0, 0, 0, 0]}
    assert signed["per_query"] == {"mc/correct": [1, 1, 1, 0]}  # = the unflipped hand-checked case
    assert (raw["protocol"]["mc"]["signs"], signed["protocol"]["mc"]["signs"]) == ({"vision": 1.0}, {"vision": -1.0})


def test_answer_vocabulary_is_the_top_k_by_frequency_then_alphabet_and_oov_is_minus_one():
    answers = ["b", "a", "c", "a", "b", "d"]
    assert answer_vocabulary(answers, 2) == ("a", "b")
    assert answer_targets(["b", "d", "a"], ("a", "b")).tolist() == [1, -1, 0]


def test_fuse_is_concatenation_plus_products_of_unit_rows():
    q, m = torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 2.0]])
    assert fuse(q, [m]).tolist() == [[0.6, 0.8, 0.0, 1.0, 0.0, 0.8]]


def qf(answers, qtypes, n=None):
    n = n or len(answers)
    return QuestionFeatures(ids=tuple(map(str, range(n))), item_index=torch.zeros(n, dtype=torch.long),
                            question=torch.zeros(n, 2), answers=tuple(answers), qtypes=tuple(qtypes))


def test_prior_baseline_answers_the_most_frequent_training_answer_of_the_type():
    train = qf(["yes", "yes", "no", "red", "blue", "red"], ["yn", "yn", "yn", "col", "col", "col"])
    test = qf(["yes", "no", "red", "blue", "yes"], ["yn", "yn", "col", "col", "new"])
    # an unseen type falls back to the overall most frequent answer ("red" and "yes" tie at 2: alphabetical -> red)
    assert prior_correct([train], test).tolist() == [True, False, True, False, False]
    # counted over training + validation questions: three more "no" make it the yes/no answer, "no" the overall one
    val = qf(["no", "no", "no"], ["yn", "yn", "yn"])
    assert prior_correct([train, val], test).tolist() == [False, True, True, False, False]


def open_split(split: str, n: int, seed: int) -> SplitFeatures:
    """Open-ended questions whose answer is the sign of the media's first coordinate (question says nothing)."""
    g = torch.Generator().manual_seed(seed)
    vision = torch.randn(n, 4, generator=g)
    ids = tuple(f"{split}{i}" for i in range(n))
    answers = tuple("pos" if v > 0 else "neg" for v in vision[:, 0].tolist())
    if split == "test":
        answers = ("maybe", *answers[1:])  # outside the training vocabulary: always wrong
    questions = QuestionFeatures(ids=ids, item_index=torch.arange(n), question=torch.ones(n, 4) + 0.01 * torch.randn(n, 4, generator=g),
                                 answers=answers, qtypes=("t",) * n)
    return SplitFeatures(split=split, item_ids=ids, modalities={"vision": single_row_features(vision, ids)},
                         questions=questions)


def test_open_ended_head_reads_the_media_the_baselines_cannot():
    spec = QASpec(name="qa", mode="open_ended", media=["vision"], top_k=5)
    out = evaluate_qa(MeanCosine(["text", "vision"]), identity, open_split("train", 200, 0), open_split("val", 50, 2),
                      open_split("test", 100, 1), spec)
    correct = out["per_query"]["qa/correct"]
    assert correct[0] == 0  # the OOV answer
    assert out["metrics"]["qa/acc"] >= 95.0
    assert 35.0 <= out["metrics"]["qa_qonly/acc"] <= 65.0 and 35.0 <= out["metrics"]["qa_prior/acc"] <= 65.0
    proto = out["protocol"]
    assert proto["qa"]["n_answers"] == 2 and proto["qa"]["test_in_vocab"] == 99.0
    assert proto["qa"]["acc_by_type"] == {"t": out["metrics"]["qa/acc"]}
    # the record says which rule chose the L2, and what it saw: one fit per value on 200 train, scored on 50 val
    for head in ("qa", "qa_qonly"):
        p = proto[head]
        assert p["l2_rule"] == L2_RULE and p["n_train"] == 200 and p["n_val"] == 50 and p["n_final_fit"] == 250
        best = max(range(len(p["l2_grid"])), key=lambda i: (p["val_acc"][i], p["l2_grid"][i]))
        assert p["l2"] == p["l2_grid"][best] and len(p["val_acc"]) == len(PROBE_L2_GRID)
    assert proto["qa_prior"]["fitted_on"] == "training + validation questions"


def test_open_ended_without_validation_questions_is_an_error():
    spec = QASpec(name="qa", mode="open_ended", media=["vision"])
    with pytest.raises(BenchError, match="needs the validation questions"):
        evaluate_qa(MeanCosine(["text", "vision"]), identity, open_split("train", 20, 0), None, open_split("test", 10, 1),
                    spec)


def test_empty_answer_vocabulary_is_an_error():
    split = open_split("train", 4, 0)
    empty = SplitFeatures(split="train", item_ids=(), modalities=split.modalities,
                          questions=QuestionFeatures(ids=(), item_index=torch.zeros(0, dtype=torch.long),
                                                     question=torch.zeros(0, 4), answers=(), qtypes=()))
    spec = QASpec(name="qa", mode="open_ended", media=["vision"])
    with pytest.raises(BenchError, match="empty answer vocabulary"):
        evaluate_qa(MeanCosine(["text", "vision"]), identity, empty, split, split, spec)


@pytest.mark.parametrize(("question", "message"), [
    (Question("q1", "", "what?", 0, ("a", "b"), where="f.csv row 3"), "f.csv row 3: .*has no media"),
    (Question("q1", "nope", "what?", 0, ("a", "b"), where="f.csv row 3"), "f.csv row 3: .*has no media"),
    (Question("q1", "v1", "what?", 0, ("a",), where="f.csv row 4"), "f.csv row 4: .*at least 2 candidates"),
    (Question("q1", "v1", "what?", 5, ("a", "b"), where="f.csv row 5"), "f.csv row 5: answer index 5 is out of range"),
])
def test_bad_questions_name_the_file_and_row(question, message):
    with pytest.raises(BenchError, match=message):
        check_questions([question], ["v1"], multiple_choice=True)


def test_question_types_pick_their_protocol_and_candidate_items_must_exist():
    pick = QASpec(name="pick", mode="multiple_choice", media=["audio"], candidates="vision", qtypes=["pick"])
    open_ = QASpec(name="qa", mode="open_ended", media=["vision"], qtypes=["category"])
    check_task_questions([Question("q1", "v1", "which?", 1, ("v2", "v1"), qtype="pick"),
                          Question("q2", "v1", "what?", "cat", qtype="category")], ["v1", "v2"], [open_, pick])
    with pytest.raises(BenchError, match="f.csv row 2: candidate item 'v9' is not in the annotations"):
        check_task_questions([Question("q1", "v1", "which?", 0, ("v1", "v9"), qtype="pick", where="f.csv row 2")],
                             ["v1", "v2"], [open_, pick])
    with pytest.raises(BenchError, match="f.csv row 3: no qa protocol answers question type 'color'"):
        check_task_questions([Question("q1", "v1", "what?", "red", qtype="color", where="f.csv row 3")], ["v1"],
                             [open_, pick])


def test_multiple_choice_between_items_scores_their_pictures_against_the_recording():
    """Items i0..i2 have pictures along the axes; question a's recording points at i1's picture, b's at i2's,
    c's half-way between its two candidates (a tie: wrong). Two candidates per question."""
    ids = ("i0", "i1", "i2")
    vision = torch.eye(3)
    audio = torch.tensor([[0.0, 1.0, 0.1], [0.0, 0.1, 1.0], [1.0, 1.0, 0.0]])
    questions = QuestionFeatures(ids=("a", "b", "c"), item_index=torch.tensor([0, 1, 2]), question=torch.zeros(3, 3),
                                 answers=("1", "0", "0"), qtypes=("pick",) * 3,
                                 candidate_items=torch.tensor([[0, 1], [2, 0], [0, 1]]))
    split = SplitFeatures(split="test", item_ids=ids, questions=questions,
                          modalities={"vision": single_row_features(vision, ids), "audio": single_row_features(audio, ids)})
    spec = QASpec(name="pick", mode="multiple_choice", media=["audio"], candidates="vision", qtypes=["pick"])
    method = MeanCosine(["vision", "audio"])
    cands = vision[questions.candidate_items]
    scores = mc_scores(method, cands, {"audio": audio}, modality="vision")
    assert torch.allclose(scores, torch.nn.functional.normalize(audio, dim=1).gather(1, questions.candidate_items))
    out = evaluate_qa(method, identity, split, None, split, spec)
    assert out["per_query"] == {"pick/correct": [1, 1, 0]}
    assert out["protocol"]["pick"]["candidates"] == "vision" and out["protocol"]["pick"]["n_candidates"] == 2


def test_synthetic_qa_needs_both_media_and_question_only_stays_near_the_prior(tmp_path):
    small = [("data.sizes", {"train": 500, "val": 100, "test": 250}), ("epochs", 3), ("batch_size", 128),
             ("head_hidden", 64), ("embed_dim", 32), ("lr", 0.003)]
    record = execute(RunRequest(task="synthetic-qa", method="clip", seed=0, overrides=small, results_dir=str(tmp_path)))
    m = record.metrics
    assert record.status == "ok" and len(record.per_query["qa/correct"]) == 500
    select = record.protocol["select"]
    assert select["rule"] == "best_val" and select["metric"] == "t2va/R@1" and "open-ended" in select["why"]
    assert record.selected_epoch == 1 + max(range(3), key=lambda e: (record.train_curve[e]["val"], -e))
    assert record.protocol["val"]["n_questions"] == 200 and record.protocol["qa"]["n_val"] == 200
    assert abs(m["qa_prior/acc"] - 25.0) < 5 and abs(m["qa_qonly/acc"] - 25.0) < 5
    assert m["qa/acc"] > m["qa_qonly/acc"] + 10


def test_leaderboard_and_compare_treat_qa_correctness_like_classification(tmp_path, capsys):
    meta = load_task("synthetic-qa").meta()
    rng = np.random.default_rng(0)
    prior, qonly = rng.random(300) < 0.25, rng.random(300) < 0.27
    for method, p in (("pmrl", 0.8), ("clip", 0.6), ("gram", 0.4)):
        for seed in range(3):
            write(tmp_path, "synthetic-qa", method, seed, {"qa/correct": rng.random(300) < p, "qa_prior/correct": prior,
                                                           "qa_qonly/correct": qonly}, task_meta=meta)
    assert main(["leaderboard", "--results-dir", str(tmp_path)]) == 0
    text = section((tmp_path / "LEADERBOARD.md").read_text(encoding="utf-8"), "synthetic-qa")
    assert header_cells(text) == ["method", "config", "n", "qa acc", "qa_prior acc", "qa_qonly acc"]
    assert list(table_rows(text)) == ["pmrl", "clip", "gram"]  # by the primary metric qa/acc
    assert " ± " in table_rows(text)["pmrl"][2]
    capsys.readouterr()
    assert main(["compare", "--results-dir", str(tmp_path), "--task", "synthetic-qa", "--methods", "pmrl", "gram"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("task synthetic-qa, metric qa/acc (higher is better), N = 300 queries")
    assert "difference pmrl - gram = " in out


def test_a_fitted_head_cannot_be_the_selection_metric_without_select_on():
    base = load_task("synthetic-qa").model_dump()
    with pytest.raises(ValueError, match="add `select_on`"):
        TaskSpec.model_validate({**base, "select_on": None})
    bad = {**base, "select_on": {**base["select_on"], "metric": "acc"}}
    with pytest.raises(ValueError, match="not a retrieval \\(rank\\) metric"):
        TaskSpec.model_validate(bad)
    assert load_task("synthetic-qa").selection_metric == "t2va/R@1"
    assert load_task("tuxpaint-mc").selection_metric == "mc/acc"  # zero-shot: selects on itself


def test_carved_validation_takes_each_question_with_its_item():
    split = open_split("train", 6, 0)
    rest, val = carve_validation(split, 0.5, seed=0)
    for part in (rest, val):
        q = part.questions
        assert [part.item_ids[i] for i in q.item_index.tolist()] == list(q.ids)  # open_split: question id = item id
        assert part.info["n_questions"] == len(q.ids) == part.n_items
        assert torch.equal(q.question, split.questions.question[[split.item_ids.index(i) for i in q.ids]])
    assert sorted(rest.item_ids + val.item_ids) == sorted(split.item_ids)
    limited = first_items(split, 2)
    assert limited.questions.ids == split.item_ids[:2] and limited.questions.item_index.tolist() == [0, 1]


def test_kept_questions_drop_a_question_whose_candidate_item_left_and_remap_the_rest():
    questions = QuestionFeatures(ids=("q0", "q1", "q2", "q3"), item_index=torch.tensor([0, 0, 3, 2]),
                                 question=torch.arange(4.0).view(4, 1), answers=("0", "1", "0", "x"),
                                 qtypes=("pick", "pick", "pick", "open"),
                                 candidate_items=torch.tensor([[0, 2], [0, 1], [3, 0], [-1, -1]]))
    remap = torch.tensor([0, -1, 1, -1])  # items 0 and 2 kept, as 0 and 1
    kept = kept_questions(questions, remap)
    assert kept.ids == ("q0", "q3") and kept.item_index.tolist() == [0, 1]
    assert kept.candidate_items.tolist() == [[0, 1], [-1, -1]] and kept.question.view(-1).tolist() == [0.0, 3.0]
