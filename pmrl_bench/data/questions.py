"""Questions of a QA split: checked against the items, then their texts encoded into `QuestionFeatures`.

Rows "q#<qid>" hold the question texts; multiple-choice candidates are rows "q#<qid>#<c>" (the question
prepended, joined by one space, when the protocol says so). Both go through the task's text encoder and
the feature cache, like class prompts. A question whose item was dropped for missing media files is left
out and counted (`n_questions_dropped`); a question naming no item of the annotations is bad input.
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
from pmrl_bench.task import TaskSpec


def check_questions(questions: Sequence[Question], item_ids: Sequence[str], multiple_choice: bool) -> None:
    """Refuse, naming the file and row, a question without media, with < 2 candidates or an answer index out of range."""
    known = set(item_ids)
    for q in questions:
        where = q.where or f"question {q.qid}"
        if not q.item_id or q.item_id not in known:
            raise BenchError(f"{where}: question {q.qid!r} has no media (item {q.item_id!r} is not in the annotations)")
        if multiple_choice:
            if len(q.candidates) < 2:
                raise BenchError(f"{where}: a multiple-choice question needs at least 2 candidates, got {len(q.candidates)}")
            if not isinstance(q.answer, int) or not 0 <= q.answer < len(q.candidates):
                raise BenchError(f"{where}: answer index {q.answer!r} is out of range for {len(q.candidates)} candidates")


def questions_sha256(questions: Sequence[Question]) -> str:
    """sha256 of the questions as JSON rows [qid, item_id, text, answer, candidates, qtype] (their identity)."""
    rows = [[q.qid, q.item_id, q.text, q.answer, list(q.candidates), q.qtype] for q in questions]
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode("utf-8")).hexdigest()


def attach_questions(task: TaskSpec, config: dict[str, Any], split: SplitFeatures, questions: Sequence[Question],
                     all_item_ids: Sequence[str], device: str = "cpu", cache: Any = None) -> SplitFeatures:
    """`split` plus the encoded questions (and candidates) of its kept items; checks them first."""
    from pmrl_bench.data.encoding import encode_texts

    multiple_choice = any(q.mode == "multiple_choice" for q in task.qa)
    prepend = any(q.prepend_question for q in task.qa)
    check_questions(questions, all_item_ids, multiple_choice)
    index = {item: k for k, item in enumerate(split.item_ids)}
    kept = [q for q in questions if q.item_id in index]
    if not kept:
        raise BenchError(f"{task.name} {split.split}: no question is about an item with media ({len(questions)} questions)")
    dataset = str(split.info.get("dataset", task.name))
    row_ids = [f"q#{q.qid}" for q in kept]
    question = encode_texts(config, "text", [q.text for q in kept], row_ids, dataset, f"{split.split}-questions",
                            f"{task.name}/{split.split} questions", device, cache)
    candidates = None
    if multiple_choice:
        n_choices = {len(q.candidates) for q in kept}
        if len(n_choices) != 1:
            raise BenchError(f"{task.name} {split.split}: multiple-choice questions must all have the same number of "
                             f"candidates, got {sorted(n_choices)}")
        texts = [f"{q.text} {c}" if prepend else c for q in kept for c in q.candidates]
        ids = [f"q#{q.qid}#{c}" for q in kept for c in range(len(q.candidates))]
        flat = encode_texts(config, "text", texts, ids, dataset, f"{split.split}-candidates",
                            f"{task.name}/{split.split} candidates", device, cache)
        candidates = flat.reshape(len(kept), n_choices.pop(), -1)
    feats = QuestionFeatures(
        ids=tuple(q.qid for q in kept), item_index=torch.tensor([index[q.item_id] for q in kept], dtype=torch.long),
        question=question, answers=tuple(str(q.answer) for q in kept), qtypes=tuple(q.qtype for q in kept),
        candidates=candidates,
    )
    info = {**split.info, "n_questions": len(kept), "n_questions_dropped": len(questions) - len(kept),
            "questions_sha256": questions_sha256(kept)}
    return dataclasses.replace(split, questions=feats, info=info)
