"""Question answering on frozen trained embeddings: multiple choice (zero-shot) and open-ended (answer head).

* `multiple_choice`: for each question, the method's own `similarity` scores every candidate text (text head)
  against the question's media tuple (their heads); the best candidate is the answer. Ties count against the
  method: a question is right only when the right candidate scores strictly above every other one.
* `open_ended`: answer classification over the `top_k` most frequent training answers (ties: alphabetical).
  The input is the same fusion for every method, [q, m_1.., q*m_1..] of the L2-normalised head outputs of the
  question (text head) and the media; the head is the linear probe of `evaluate.classification` (L-BFGS,
  fixed iteration budget, L2 chosen by cross-validation on the training questions). Exact match: a test
  answer outside the vocabulary counts as wrong. Accuracy per question type goes to the protocol.
  Two method-independent baselines are reported beside it (fixed seed 0, so identical in every run):
  `<name>_prior`, the most frequent training answer of the question's type, and `<name>_qonly`, the same
  probe on the raw question features alone (no media, no trained head).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pmrl_bench.data.features import QuestionFeatures, SplitFeatures, split_questions
from pmrl_bench.errors import BenchError
from pmrl_bench.evaluation.classification import choose_l2, fit_logistic, predict, single_thread
from pmrl_bench.metrics import CORRECT, compute_metrics
from pmrl_bench.task import QASpec
from pmrl_bench.train.method import Method

Project = Callable[[str, Tensor], Tensor]
"""(modality, raw feature rows) -> head outputs of that modality."""

MC_CHUNK = 64  # questions scored together: one [chunk * C, chunk] similarity block, its diagonal kept
MC_TIE_RULE = "right only if the right candidate scores strictly above every other candidate"
BASELINE_SEED = 0
FUSION = "[q, m..., q*m...] of L2-normalised head outputs (q: question, m: each media modality)"


def _questions(split: SplitFeatures, spec: QASpec) -> QuestionFeatures:
    """The split's questions (the first `split.max_queries` of them in a `--limit` run)."""
    questions = split_questions(split)
    if questions is None:
        raise BenchError(f"qa {spec.name!r}: split {split.split!r} has no questions")
    return questions


def _media(project: Project, split: SplitFeatures, spec: QASpec, item_index: Tensor) -> dict[str, Tensor]:
    """Head outputs of each media modality, one row per question (its item's row)."""
    out = {}
    for m in spec.media:
        feats = split.modalities[m]
        if not feats.one_row_per_item(split.n_items):
            raise BenchError(f"qa {spec.name!r}: media modality {m!r} needs exactly one row per item")
        out[m] = project(m, feats.values)[item_index]
    return out


def mc_scores(method: Method, candidates: Tensor, media: dict[str, Tensor], chunk: int = MC_CHUNK) -> Tensor:
    """`[Q, C]` similarity of each question's candidate embeddings `[Q, C, E]` against its own media tuple."""
    n_q, n_c, dim = candidates.shape
    blocks = []
    for a in range(0, n_q, chunk):
        b = min(a + chunk, n_q)
        s = method.similarity({"text": candidates[a:b].reshape(-1, dim)}, {m: v[a:b] for m, v in media.items()})
        blocks.append(s.reshape(b - a, n_c, b - a).diagonal(dim1=0, dim2=2).T)
    return torch.cat(blocks) if blocks else torch.empty(0, n_c)


def mc_correct(scores: Tensor, answer: Tensor) -> Tensor:
    """Per-question correctness: the right candidate strictly above all others (ties count against)."""
    right = scores.gather(1, answer.view(-1, 1))
    others = scores.scatter(1, answer.view(-1, 1), float("-inf"))
    return (right.squeeze(1) > others.max(dim=1).values)


def multiple_choice(method: Method, project: Project, test: SplitFeatures, spec: QASpec) -> tuple[Tensor, dict[str, Any]]:
    """Per-question correctness of zero-shot multiple choice and its settings."""
    qf = _questions(test, spec)
    if qf.candidates is None:
        raise BenchError(f"qa {spec.name!r}: the questions of split {test.split!r} have no candidates")
    n_q, n_c, dim = qf.candidates.shape
    with torch.no_grad():
        cands = project("text", qf.candidates.reshape(-1, dim)).reshape(n_q, n_c, -1)
        scores = mc_scores(method, cands, _media(project, test, spec, qf.item_index))
    answer = torch.tensor([int(a) for a in qf.answers], dtype=torch.long)
    settings = {"n_candidates": n_c, "prepend_question": spec.prepend_question, "score": "method.similarity",
                "tie_rule": MC_TIE_RULE}
    return mc_correct(scores.cpu(), answer), settings


def answer_vocabulary(answers: Sequence[str], top_k: int) -> tuple[str, ...]:
    """The `top_k` most frequent answers (ties: alphabetical order)."""
    counts = Counter(answers)
    return tuple(sorted(counts, key=lambda a: (-counts[a], a))[:top_k])


def answer_targets(answers: Sequence[str], vocab: Sequence[str]) -> Tensor:
    """Index of each answer in the vocabulary, -1 outside it (never predicted, so always wrong)."""
    lookup = {a: k for k, a in enumerate(vocab)}
    return torch.tensor([lookup.get(a, -1) for a in answers], dtype=torch.long)


def fuse(question: Tensor, media: Sequence[Tensor]) -> Tensor:
    """[q, m..., q*m...] of the L2-normalised rows (float64)."""
    q = torch.nn.functional.normalize(question.detach().to(torch.float64), dim=1)
    ms = [torch.nn.functional.normalize(m.detach().to(torch.float64), dim=1) for m in media]
    return torch.cat([q, *ms, *(q * m for m in ms)], dim=1)


def probe_correct(x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor, n_classes: int,
                  seed: int) -> tuple[Tensor, dict[str, Any]]:
    """Correctness of the linear probe fitted on the in-vocabulary training rows, and its settings."""
    keep = y_train >= 0
    with single_thread():
        l2, cv_acc = choose_l2(x_train[keep], y_train[keep], n_classes, seed)
        weight, bias = fit_logistic(x_train[keep], y_train[keep], n_classes, l2)
    return predict(weight, bias, x_test) == y_test, {"l2": l2, "cv_acc": cv_acc, "n_train": int(keep.sum())}


_QONLY: dict[str, tuple[Tensor, dict[str, Any]]] = {}


def question_only(q_train: QuestionFeatures, q_test: QuestionFeatures, y_train: Tensor, y_test: Tensor,
                  n_classes: int) -> tuple[Tensor, dict[str, Any]]:
    """The question-only baseline: method-independent, so fitted once per process for the same questions."""
    digest = hashlib.sha256()
    for t in (q_train.question, q_test.question, y_train, y_test):
        digest.update(t.contiguous().numpy().tobytes())
    key = f"{digest.hexdigest()}:{n_classes}"
    if key not in _QONLY:
        _QONLY[key] = probe_correct(fuse(q_train.question, []), y_train, fuse(q_test.question, []), y_test,
                                    n_classes, BASELINE_SEED)
    return _QONLY[key]


def prior_correct(train: QuestionFeatures, test: QuestionFeatures) -> Tensor:
    """Correctness of answering every question with the most frequent training answer of its type."""
    overall = answer_vocabulary(train.answers, 1)[0]
    by_type: dict[str, list[str]] = {}
    for t, a in zip(train.qtypes, train.answers, strict=True):
        by_type.setdefault(t, []).append(a)
    best = {t: answer_vocabulary(a, 1)[0] for t, a in by_type.items()}
    return torch.tensor([best.get(t, overall) == a for t, a in zip(test.qtypes, test.answers, strict=True)])


def by_type(correct: Tensor, qtypes: Sequence[str]) -> dict[str, float]:
    """Accuracy (percent) per question type."""
    types = np.asarray(qtypes)
    c = correct.numpy()
    return {str(t): compute_metrics(["acc"], CORRECT, c[types == t])["acc"] for t in sorted(set(qtypes))}


def open_ended(project: Project, train: SplitFeatures, test: SplitFeatures, spec: QASpec,
               seed: int) -> dict[str, tuple[Tensor, dict[str, Any]]]:
    """Per-question correctness and settings of the answer head and of the two baselines, by metric prefix."""
    q_train, q_test = _questions(train, spec), _questions(test, spec)
    vocab = answer_vocabulary(q_train.answers, spec.top_k)
    if not vocab:
        raise BenchError(f"qa {spec.name!r}: the training split has an empty answer vocabulary")
    y_train, y_test = answer_targets(q_train.answers, vocab), answer_targets(q_test.answers, vocab)
    with torch.no_grad():
        x_train = fuse(project("text", q_train.question), list(_media(project, train, spec, q_train.item_index).values()))
        x_test = fuse(project("text", q_test.question), list(_media(project, test, spec, q_test.item_index).values()))
    head, settings = probe_correct(x_train, y_train, x_test, y_test, len(vocab), seed)
    qonly, q_settings = question_only(q_train, q_test, y_train, y_test, len(vocab))
    common = {"top_k": spec.top_k, "n_answers": len(vocab), "answers_first": list(vocab[:10]),
              "test_in_vocab": float(100.0 * (y_test >= 0).float().mean())}
    return {
        spec.name: (head, {**common, **settings, "fusion": FUSION, "media": list(spec.media),
                           "solver": "linear probe (full-batch L-BFGS, float64, zero init)",
                           "acc_by_type": by_type(head, q_test.qtypes)}),
        f"{spec.name}_prior": (prior_correct(q_train, q_test), {**common, "baseline": "most frequent answer per type"}),
        f"{spec.name}_qonly": (qonly, {**common, **q_settings, "baseline": "linear probe on raw question features",
                                       "seed": BASELINE_SEED, "acc_by_type": by_type(qonly, q_test.qtypes)}),
    }


def evaluate_qa(method: Method, project: Project, train: SplitFeatures, test: SplitFeatures, spec: QASpec,
                seed: int) -> dict[str, Any]:
    """Metrics, per-question correctness, eval-set digests and protocol of one QA protocol (and its baselines)."""
    from pmrl_bench.evaluation.retrieval import eval_set_digest

    if spec.mode == "multiple_choice":
        outcomes = {spec.name: multiple_choice(method, project, test, spec)}
    else:
        outcomes = open_ended(project, train, test, spec, seed)
    qf = _questions(test, spec)
    digest = eval_set_digest(qf.ids, [f"{i}\t{a}" for i, a in zip(qf.ids, qf.answers, strict=True)])
    out: dict[str, Any] = {"metrics": {}, "per_query": {}, "eval_set": {}, "protocol": {}}
    for prefix, (correct, settings) in outcomes.items():
        outcome = correct.to(torch.int64).numpy()
        out["metrics"][f"{prefix}/acc"] = compute_metrics(["acc"], CORRECT, outcome)["acc"]
        out["per_query"][f"{prefix}/correct"] = outcome.tolist()
        out["eval_set"][prefix] = digest
        out["protocol"][prefix] = {"mode": spec.mode, "n_test": len(outcome), **settings}
    return out
