"""Questions of a QA split: checked against the items, then their texts encoded into `QuestionFeatures`.

Rows "q#<qid>" hold the question texts; multiple-choice candidate texts are rows "q#<qid>#<c>" (the question
prepended, joined by one space, when the protocol says so). Both go through the task's text encoder and
the feature cache, like class prompts. Candidates that are items (`candidates: <modality>`) become item
indices. Each question is answered by the task's first qa protocol whose `qtypes` admit its type. A question
whose item (or a candidate item) was dropped for missing media files is left out and counted
(`n_questions_dropped`); a question naming no item of the annotations is bad input.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import torch

from pmrl_bench.data.features import QuestionFeatures, SplitFeatures
from pmrl_bench.data.items import Question
from pmrl_bench.errors import BenchError
from pmrl_bench.task import QASpec, TaskSpec


def protocol_of(protocols: Sequence[QASpec], question: Question) -> QASpec:
    """The first protocol that answers the question's type (BenchError naming the file and row if none does)."""
    for spec in protocols:
        if spec.answers(question.qtype):
            return spec
    raise BenchError(f"{question.where or f'question {question.qid}'}: no qa protocol answers question type "
                     f"{question.qtype!r} (qtypes: {[p.qtypes for p in protocols]})")


def check_question(q: Question, known: set[str], multiple_choice: bool, item_candidates: bool = False) -> None:
    """Refuse, naming the file and row, a question without media, with < 2 candidates, an answer index out of
    range or (`item_candidates`) a candidate item that is not in the annotations."""
    where = q.where or f"question {q.qid}"
    if not q.item_id or q.item_id not in known:
        raise BenchError(f"{where}: question {q.qid!r} has no media (item {q.item_id!r} is not in the annotations)")
    if multiple_choice:
        if len(q.candidates) < 2:
            raise BenchError(f"{where}: a multiple-choice question needs at least 2 candidates, got {len(q.candidates)}")
        if not isinstance(q.answer, int) or not 0 <= q.answer < len(q.candidates):
            raise BenchError(f"{where}: answer index {q.answer!r} is out of range for {len(q.candidates)} candidates")
        unknown = [c for c in q.candidates if c not in known] if item_candidates else []
        if unknown:
            raise BenchError(f"{where}: candidate item {unknown[0]!r} is not in the annotations")


def check_questions(questions: Sequence[Question], item_ids: Sequence[str], multiple_choice: bool) -> None:
    """`check_question` on every question of one file (all of one mode, candidates as texts)."""
    known = set(item_ids)
    for q in questions:
        check_question(q, known, multiple_choice)


def check_task_questions(questions: Sequence[Question], item_ids: Sequence[str], protocols: Sequence[QASpec]) -> None:
    """`check_question` on every question under the protocol that answers it."""
    known = set(item_ids)
    for q in questions:
        spec = protocol_of(protocols, q)
        check_question(q, known, spec.mode == "multiple_choice", spec.candidates != "text")


def questions_sha256(questions: Sequence[Question]) -> str:
    """sha256 of the questions as JSON rows [qid, item_id, text, answer, candidates, qtype] (their identity)."""
    rows = [[q.qid, q.item_id, q.text, q.answer, list(q.candidates), q.qtype] for q in questions]
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode("utf-8")).hexdigest()


def attach_questions(task: TaskSpec, config: dict[str, Any], split: SplitFeatures, questions: Sequence[Question],
                     all_item_ids: Sequence[str], device: str = "cpu", cache: Any = None) -> SplitFeatures:
    """`split` plus the encoded questions (and candidates) of its kept items; checks them first."""
    from pmrl_bench.data.encoding import encode_texts

    check_task_questions(questions, all_item_ids, task.qa)
    index = {item: k for k, item in enumerate(split.item_ids)}
    specs = [protocol_of(task.qa, q) for q in questions]
    kept_specs = [(q, p) for q, p in zip(questions, specs, strict=True) if q.item_id in index
                  and (p.candidates == "text" or all(c in index for c in q.candidates))]
    kept = [q for q, _ in kept_specs]
    if not kept:
        raise BenchError(f"{task.name} {split.split}: no question is about an item with media ({len(questions)} questions)")
    dataset = str(split.info.get("dataset", task.name))
    row_ids = [f"q#{q.qid}" for q in kept]
    question = encode_texts(config, "text", [q.text for q in kept], row_ids, dataset, f"{split.split}-questions",
                            f"{task.name}/{split.split} questions", device, cache)
    text_mc = [p.mode == "multiple_choice" and p.candidates == "text" for _, p in kept_specs]
    candidates = None
    if any(text_mc):
        if not all(text_mc):
            raise BenchError(f"{task.name}: multiple choice between texts cannot share a task with other qa protocols")
        n_choices = {len(q.candidates) for q in kept}
        if len(n_choices) != 1:
            raise BenchError(f"{task.name} {split.split}: multiple-choice questions must all have the same number of "
                             f"candidates, got {sorted(n_choices)}")
        prepend = {q.qid: p.prepend_question for q, p in kept_specs}
        texts = [f"{q.text} {c}" if prepend[q.qid] else c for q in kept for c in q.candidates]
        ids = [f"q#{q.qid}#{c}" for q in kept for c in range(len(q.candidates))]
        flat = encode_texts(config, "text", texts, ids, dataset, f"{split.split}-candidates",
                            f"{task.name}/{split.split} candidates", device, cache)
        candidates = flat.reshape(len(kept), n_choices.pop(), -1)
    candidate_items = None
    item_mc = [(q, p) for q, p in kept_specs if p.mode == "multiple_choice" and p.candidates != "text"]
    if item_mc:
        width = {len(q.candidates) for q, _ in item_mc}
        if len(width) != 1:
            raise BenchError(f"{task.name} {split.split}: multiple-choice questions must all have the same number of "
                             f"candidates, got {sorted(width)}")
        candidate_items = torch.full((len(kept), width.pop()), -1, dtype=torch.long)
        for row, (q, p) in enumerate(kept_specs):
            if p.mode == "multiple_choice" and p.candidates != "text":
                candidate_items[row] = torch.tensor([index[c] for c in q.candidates])
    feats = QuestionFeatures(
        ids=tuple(q.qid for q in kept), item_index=torch.tensor([index[q.item_id] for q in kept], dtype=torch.long),
        question=question, answers=tuple(str(q.answer) for q in kept), qtypes=tuple(q.qtype for q in kept),
        candidates=candidates, candidate_items=candidate_items,
    )
    info = {**split.info, "n_questions": len(kept), "n_questions_dropped": len(questions) - len(kept),
            "questions_sha256": questions_sha256(kept)}
    return dataclasses.replace(split, questions=feats, info=info)
