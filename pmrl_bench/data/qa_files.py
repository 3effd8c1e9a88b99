"""Checks the QA adapters run on the questions of an annotation file as they read it, before anything is encoded.

Bad input is one line naming the file and the row (`Question.where`): a file without questions (an empty
answer vocabulary), a question without an answer, without media or with fewer than two candidates, an answer
index out of range. The per-question checks are `pmrl_bench.data.questions.check_questions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pmrl_bench.data.items import Question
from pmrl_bench.errors import BenchError


def check_question_file(path: Path | str, questions: Sequence[Question], item_ids: Sequence[str],
                        multiple_choice: bool) -> None:
    """Refuse a QA file with no questions, or a question without an answer, media or enough candidates."""
    from pmrl_bench.data.questions import check_questions

    name = Path(path).name
    if not questions:
        raise BenchError(f"{name}: holds no questions, so the answer vocabulary is empty; check that it is the "
                         "right file and not truncated")
    for q in questions:
        if not multiple_choice and not str(q.answer).strip():
            raise BenchError(f"{q.where or name}: question {q.qid!r} has no answer")
    check_questions(questions, item_ids, multiple_choice)


def question_type(question: str) -> str:
    """The type of a natural-language question by its first word, lower-cased ('what', 'who', 'how', ...)."""
    words = question.strip().split()
    return words[0].lower().strip("?,.") if words else ""
