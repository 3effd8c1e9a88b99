"""Question answering on frozen trained embeddings: multiple choice (zero-shot) and open-ended (answer head).

* `multiple_choice`: for each question, the method's own `similarity` scores every candidate (a text through
  the text head, or with `candidates: <modality>` an item of the split through that modality's head) against
  the question's media tuple (their heads); the best candidate is the answer. Ties count against the method:
  a question is right only when the right candidate scores strictly above every other one.
* `open_ended`: answer classification over the `top_k` most frequent training answers (ties: alphabetical).
  The input is the same fusion for every method, [q, m_1.., q*m_1..] of the L2-normalised head outputs of the
  question (text head) and the media; the head is the linear probe of `evaluation.classification` (L-BFGS,
  fixed iteration budget, `L2_RULE`: L2 chosen on the validation questions, then one final fit on the
  training + validation questions). Exact match: a validation or test answer outside the vocabulary counts
  as wrong. Accuracy per question type goes to the protocol. Two method-independent baselines are reported
  beside it, under the same rule (identical in every run): `<name>_prior`, the most frequent answer of the
  question's type over the training + validation questions, and `<name>_qonly`, the same probe on the raw
  question features alone (no media, no trained head).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pmrl_bench.data.features import QuestionFeatures, SplitFeatures, question_rows, split_questions
from pmrl_bench.errors import BenchError
from pmrl_bench.evaluation.classification import fit_probe, predict
from pmrl_bench.metrics import CORRECT, compute_metrics
from pmrl_bench.task import QASpec
from pmrl_bench.train.method import Method

Project = Callable[[str, Tensor], Tensor]
"""(modality, raw feature rows) -> head outputs of that modality."""

MC_CHUNK = 64  # questions scored together: one [chunk * C, chunk] similarity block, its diagonal kept
MC_TIE_RULE = "right only if the right candidate scores strictly above every other candidate"
FUSION = "[q, m..., q*m...] of L2-normalised head outputs (q: question, m: each media modality)"


def _questions(split: SplitFeatures, spec: QASpec) -> QuestionFeatures:
    """The split's questions that `spec` answers (its `qtypes`; all when it names none; the first
    `split.max_queries` questions of the split in a `--limit` run)."""
    qf = split_questions(split)
    if qf is None:
        raise BenchError(f"qa {spec.name!r}: split {split.split!r} has no questions")
    if spec.qtypes:
        qf = question_rows(qf, torch.tensor([spec.answers(t) for t in qf.qtypes], dtype=torch.bool))
        if not qf.ids:
            raise BenchError(f"qa {spec.name!r}: split {split.split!r} has no questions of types {spec.qtypes}")
    return qf


def _media(project: Project, split: SplitFeatures, spec: QASpec, item_index: Tensor) -> dict[str, Tensor]:
    """Head outputs of each media modality, one row per question (its item's row)."""
    out = {}
    for m in spec.media:
        feats = split.modalities[m]
        if not feats.one_row_per_item(split.n_items):
            raise BenchError(f"qa {spec.name!r}: media modality {m!r} needs exactly one row per item")
        out[m] = project(m, feats.values)[item_index]
    return out


def mc_scores(method: Method, candidates: Tensor, media: dict[str, Tensor], chunk: int = MC_CHUNK,
              modality: str = "text") -> Tensor:
    """`[Q, C]` similarity of each question's candidate embeddings `[Q, C, E]` (of `modality`) against its own
    media tuple."""
    n_q, n_c, dim = candidates.shape
    blocks = []
    for a in range(0, n_q, chunk):
        b = min(a + chunk, n_q)
        s = method.similarity({modality: candidates[a:b].reshape(-1, dim)}, {m: v[a:b] for m, v in media.items()})
        blocks.append(s.reshape(b - a, n_c, b - a).diagonal(dim1=0, dim2=2).T)
    return torch.cat(blocks) if blocks else torch.empty(0, n_c)


def mc_correct(scores: Tensor, answer: Tensor) -> Tensor:
    """Per-question correctness: the right candidate strictly above all others (ties count against)."""
    right = scores.gather(1, answer.view(-1, 1))
    others = scores.scatter(1, answer.view(-1, 1), float("-inf"))
    return (right.squeeze(1) > others.max(dim=1).values)


def multiple_choice(method: Method, project: Project, test: SplitFeatures, spec: QASpec,
                    signs: dict[tuple[str, str], float] | None = None) -> tuple[Tensor, dict[str, Any]]:
    """Per-question correctness of zero-shot multiple choice and its settings; `signs` (calibration.train_signs)
    orient each media modality relative to the candidates' modality."""
    qf = _questions(test, spec)
    with torch.no_grad():
        if spec.candidates == "text":
            if qf.candidates is None:
                raise BenchError(f"qa {spec.name!r}: the questions of split {test.split!r} have no candidates")
            n_q, n_c, dim = qf.candidates.shape
            cands = project("text", qf.candidates.reshape(-1, dim)).reshape(n_q, n_c, -1)
        else:
            if qf.candidate_items is None or bool((qf.candidate_items < 0).any()):
                raise BenchError(f"qa {spec.name!r}: the questions of split {test.split!r} have no candidate items")
            n_c = qf.candidate_items.shape[1]
            cands = _media(project, test, spec.model_copy(update={"media": [spec.candidates]}),
                           qf.candidate_items.reshape(-1))[spec.candidates].reshape(len(qf.ids), n_c, -1)
        media_signs = {m: (signs or {}).get((spec.candidates, m), 1.0) for m in spec.media}
        media = {m: v * media_signs[m] for m, v in _media(project, test, spec, qf.item_index).items()}
        scores = mc_scores(method, cands, media, modality=spec.candidates)
    answer = torch.tensor([int(a) for a in qf.answers], dtype=torch.long)
    settings = {"n_candidates": n_c, "candidates": spec.candidates, "prepend_question": spec.prepend_question,
                "score": "method.similarity", "signs": media_signs, "tie_rule": MC_TIE_RULE,
                "qtypes": list(spec.qtypes)}
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


def probe_correct(x_train: Tensor, y_train: Tensor, x_val: Tensor, y_val: Tensor, x_test: Tensor, y_test: Tensor,
                  n_classes: int) -> tuple[Tensor, dict[str, Any]]:
    """Correctness of the linear probe (L2 chosen on validation, final fit on train + validation), and its settings."""
    weight, bias, settings = fit_probe(x_train, y_train, x_val, y_val, n_classes)
    return predict(weight, bias, x_test) == y_test, settings


_QONLY: dict[str, tuple[Tensor, dict[str, Any]]] = {}


def question_only(questions: Sequence[QuestionFeatures], targets: Sequence[Tensor],
                  n_classes: int) -> tuple[Tensor, dict[str, Any]]:
    """The question-only baseline on (train, val, test): method-independent, so fitted once per process."""
    digest = hashlib.sha256()
    for t in (*(q.question for q in questions), *targets):
        digest.update(t.contiguous().numpy().tobytes())
    key = f"{digest.hexdigest()}:{n_classes}"
    if key not in _QONLY:
        (x_tr, x_val, x_te), (y_tr, y_val, y_te) = [fuse(q.question, []) for q in questions], targets
        _QONLY[key] = probe_correct(x_tr, y_tr, x_val, y_val, x_te, y_te, n_classes)
    return _QONLY[key]


def prior_correct(fitted: Sequence[QuestionFeatures], test: QuestionFeatures) -> Tensor:
    """Correctness of answering every question with the most frequent answer of its type over `fitted`."""
    answers = [a for q in fitted for a in q.answers]
    overall = answer_vocabulary(answers, 1)[0]
    by_type: dict[str, list[str]] = {}
    for t, a in zip([t for q in fitted for t in q.qtypes], answers, strict=True):
        by_type.setdefault(t, []).append(a)
    best = {t: answer_vocabulary(a, 1)[0] for t, a in by_type.items()}
    return torch.tensor([best.get(t, overall) == a for t, a in zip(test.qtypes, test.answers, strict=True)])


def by_type(correct: Tensor, qtypes: Sequence[str]) -> dict[str, float]:
    """Accuracy (percent) per question type."""
    types = np.asarray(qtypes)
    c = correct.numpy()
    return {str(t): compute_metrics(["acc"], CORRECT, c[types == t])["acc"] for t in sorted(set(qtypes))}


def open_ended(project: Project, train: SplitFeatures, val: SplitFeatures | None, test: SplitFeatures,
               spec: QASpec) -> dict[str, tuple[Tensor, dict[str, Any]]]:
    """Per-question correctness and settings of the answer head and of the two baselines, by metric prefix."""
    if val is None:
        raise BenchError(f"qa {spec.name!r}: the open-ended head needs the validation questions to choose its L2")
    splits = (train, val, test)
    qs = [_questions(s, spec) for s in splits]
    vocab = answer_vocabulary(qs[0].answers, spec.top_k)
    if not vocab:
        raise BenchError(f"qa {spec.name!r}: the training split has an empty answer vocabulary")
    ys = [answer_targets(q.answers, vocab) for q in qs]
    with torch.no_grad():
        xs = [fuse(project("text", q.question), list(_media(project, s, spec, q.item_index).values()))
              for s, q in zip(splits, qs, strict=True)]
    head, settings = probe_correct(xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], len(vocab))
    qonly, q_settings = question_only(qs, ys, len(vocab))
    common = {"top_k": spec.top_k, "n_answers": len(vocab), "answers_first": list(vocab[:10]),
              "vocabulary_from": "training questions",
              "test_in_vocab": float(100.0 * (ys[2] >= 0).float().mean())}
    test_q = qs[2]
    return {
        spec.name: (head, {**common, **settings, "fusion": FUSION, "media": list(spec.media),
                           "solver": "linear probe (full-batch L-BFGS, float64, L2 path from zeros)",
                           "acc_by_type": by_type(head, test_q.qtypes)}),
        f"{spec.name}_prior": (prior_correct(qs[:2], test_q),
                               {**common, "baseline": "most frequent answer per type",
                                "fitted_on": "training + validation questions"}),
        f"{spec.name}_qonly": (qonly, {**common, **q_settings, "baseline": "linear probe on raw question features",
                                       "acc_by_type": by_type(qonly, test_q.qtypes)}),
    }


def evaluate_qa(method: Method, project: Project, train: SplitFeatures, val: SplitFeatures | None,
                test: SplitFeatures, spec: QASpec, signs: dict[tuple[str, str], float] | None = None) -> dict[str, Any]:
    """Metrics, per-question correctness, eval-set digests and protocol of one QA protocol (and its baselines);
    `signs` (calibration.train_signs) orient a multiple-choice protocol's media."""
    from pmrl_bench.evaluation.retrieval import eval_set_digest

    if spec.mode == "multiple_choice":
        outcomes = {spec.name: multiple_choice(method, project, test, spec, signs)}
    else:
        outcomes = open_ended(project, train, val, test, spec)
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
