"""The in-memory form of one split after encoding: per-modality feature rows mapped to items."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class ModalityFeatures:
    """Feature rows of one modality: `values[r]` belongs to item `item_index[r]`, named `row_ids[r]`.

    Media modalities usually have one row per item; text may have several (one per caption).
    """

    values: Tensor
    item_index: Tensor
    row_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.values.ndim != 2:
            raise ValueError(f"feature values must be [rows, dim], got {tuple(self.values.shape)}")
        if len(self.item_index) != len(self.values) or len(self.row_ids) != len(self.values):
            raise ValueError("values, item_index and row_ids must have the same number of rows")

    @property
    def dim(self) -> int:
        return int(self.values.shape[1])

    def one_row_per_item(self, n_items: int) -> bool:
        """True if row i belongs to item i for every item (the shape candidates need)."""
        return len(self.values) == n_items and bool(
            torch.equal(self.item_index, torch.arange(n_items, dtype=self.item_index.dtype))
        )


@dataclass(frozen=True)
class QuestionFeatures:
    """The questions of a split: raw text-encoder features of the questions (and of the multiple-choice
    candidates, `[Q, C, D]`), the item each question is about, the answer and the question type.

    `answers[q]` is the answer text (open-ended) or the index of the right candidate as text (multiple choice).
    `candidate_items[q]` are the items a multiple-choice question picks among (`[Q, C]`, -1 for a question
    that has none), when its candidates are media rather than texts.
    """

    ids: tuple[str, ...]
    item_index: Tensor
    question: Tensor
    answers: tuple[str, ...]
    qtypes: tuple[str, ...]
    candidates: Tensor | None = None
    candidate_items: Tensor | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        if not (len(self.item_index) == len(self.question) == len(self.answers) == len(self.qtypes) == n):
            raise ValueError("question ids, item_index, question rows, answers and qtypes must have the same length")
        if self.candidates is not None and (self.candidates.ndim != 3 or len(self.candidates) != n):
            raise ValueError(f"candidate features must be [questions, choices, dim], got {tuple(self.candidates.shape)}")
        if self.candidate_items is not None and (self.candidate_items.ndim != 2 or len(self.candidate_items) != n):
            raise ValueError(f"candidate items must be [questions, choices], got {tuple(self.candidate_items.shape)}")


@dataclass(frozen=True)
class SplitFeatures:
    """All modalities of one split, plus item-level fields (class labels for classification)."""

    split: str
    item_ids: tuple[str, ...]
    modalities: dict[str, ModalityFeatures]
    labels: Tensor | None = None
    label_names: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    questions: QuestionFeatures | None = None
    info: dict[str, object] = field(default_factory=dict)
    max_queries: int | None = None
    """Evaluate only the first `max_queries` queries (a `--limit` quick check, `first_queries`)."""

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def single_row_features(values: Tensor, ids: tuple[str, ...]) -> ModalityFeatures:
    """Features with exactly one row per item, row i belonging to item i."""
    return ModalityFeatures(values=values, item_index=torch.arange(len(ids)), row_ids=ids)


def question_rows(questions: QuestionFeatures, keep: Tensor) -> QuestionFeatures:
    """The questions where the boolean mask `keep` is true, in order."""
    rows = torch.nonzero(keep).flatten().tolist()
    return QuestionFeatures(
        ids=tuple(questions.ids[r] for r in rows), item_index=questions.item_index[keep],
        question=questions.question[keep], answers=tuple(questions.answers[r] for r in rows),
        qtypes=tuple(questions.qtypes[r] for r in rows),
        candidates=None if questions.candidates is None else questions.candidates[keep],
        candidate_items=None if questions.candidate_items is None else questions.candidate_items[keep],
    )


def kept_questions(questions: QuestionFeatures | None, remap: Tensor) -> QuestionFeatures | None:
    """The questions whose item and candidate items are all kept (`remap[item] >= 0`), their item indices
    remapped (None stays None)."""
    if questions is None:
        return None
    keep = remap[questions.item_index] >= 0
    cands = questions.candidate_items
    if cands is not None:
        mapped = torch.where(cands >= 0, remap[cands.clamp_min(0)], -1)
        keep &= ((mapped >= 0) | (cands < 0)).all(dim=1)
    kept = question_rows(questions, keep)
    return dataclasses.replace(kept, item_index=remap[kept.item_index],
                               candidate_items=None if cands is None else mapped[keep])


def first_items(split: SplitFeatures, n: int) -> SplitFeatures:
    """The split cut to its first `n` items (every row and question of those items): a `--limit` run's train split."""
    if n >= split.n_items:
        return split
    modalities = {}
    for name, feats in split.modalities.items():
        keep = feats.item_index < n
        rows = torch.nonzero(keep).flatten().tolist()
        modalities[name] = ModalityFeatures(values=feats.values[keep], item_index=feats.item_index[keep],
                                            row_ids=tuple(feats.row_ids[r] for r in rows))
    questions = kept_questions(split.questions, torch.where(torch.arange(split.n_items) < n,
                                                            torch.arange(split.n_items), -1))
    return SplitFeatures(
        split=split.split, item_ids=split.item_ids[:n], modalities=modalities,
        labels=None if split.labels is None else split.labels[:n], label_names=split.label_names,
        groups=split.groups[:n], questions=questions, info={**split.info, "n_items": n, "limited_from": split.n_items},
    )


def first_queries(split: SplitFeatures, n: int) -> SplitFeatures:
    """The split with only its first `n` queries evaluated, against the whole gallery: a `--limit` run's test and
    validation splits. Queries are the query rows of each retrieval direction, the input rows of classification
    and the questions of QA; every item (candidate tuple), class and answer candidate stays."""
    return dataclasses.replace(split, max_queries=n, info={**split.info, "max_queries": n})


def query_rows(split: SplitFeatures, modality: str) -> SplitFeatures:
    """`split` with `modality` cut to its first `split.max_queries` rows (unchanged when unlimited)."""
    feats, n = split.modalities[modality], split.max_queries
    if n is None or n >= len(feats.values):
        return split
    cut = ModalityFeatures(values=feats.values[:n], item_index=feats.item_index[:n], row_ids=feats.row_ids[:n])
    return dataclasses.replace(split, modalities={**split.modalities, modality: cut})


def split_questions(split: SplitFeatures) -> QuestionFeatures | None:
    """The split's questions, only the first `split.max_queries` of them when limited."""
    q, n = split.questions, split.max_queries
    if q is None or n is None or n >= len(q.ids):
        return q
    return question_rows(q, torch.arange(len(q.ids)) < n)
