"""Tux Paint QA tasks on the published split: multiple choice between real descriptions, and templated questions.

* `tuxpaint_mc` (test and validation splits): each stamp's image + speech against `n_candidates` real
  descriptions, its own and distractors drawn with a fixed seed from the other stamps of the same split and
  category (topped up from the other stamps of the split when the category has too few). Both draws are
  published in tasks/tuxpaint_mc.json, built from the split and validation files by `build_mc` (run this file
  as a script to rebuild it); the validation questions select the epoch.
* `tuxpaint_qa` (every split): templated questions (not natural questions) answered from the stamp metadata:
  type `category` ("What kind of thing is this?" -> the category name) and type `match` ("Does this show:
  <a description>?" -> yes/no; the description is the stamp's own or, with a fixed seeded draw, that of
  another stamp of the same split, each half of the time); on the test and validation splits also type
  `pick` ("Which of the two pictures does this recording describe?": the stamp's recording against its own
  picture and one other stamp's, of its category when it has one; zero-shot, answered by the method's
  similarity). The pick pairs are drawn like the multiple choice (`PICK_RULE`) and published beside it in
  tasks/tuxpaint_mc.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pmrl_bench.data.items import ItemSet, Question
from pmrl_bench.errors import BenchError
from pmrl_bench.paths import TASKS_DIR, read_task_json
from pmrl_bench.registry import get_adapter, register_adapter

VAL_FILE = "tuxpaint_val.json"
MC_FILE = "tuxpaint_mc.json"
PICK_CANDIDATES = 2
PICK_QUESTION = "Which of the two pictures does this recording describe?"
MC_QUESTION = "Which description fits this stamp?"
CATEGORY_QUESTION = "What kind of thing is this?"
MATCH_TEMPLATE = "Does this show: {caption}"
MC_RULE = ("per stamp of the split (sorted ids), numpy default_rng(seed) for test and default_rng([seed, 1]) for val: "
           "distractors = a permutation of the other stamps of the split in its category, then of the other stamps of "
           "the split, first n_candidates - 1 kept; the right description is placed at a uniform position among the "
           "candidates")
PICK_RULE = ("the same draw with n_candidates = 2 (default_rng([seed, 2]) for test, default_rng([seed, 3]) for val): "
             "the stamp and one other stamp of the split, of its category when it has one; the question's recording "
             "is the stamp's, the candidates are the two pictures")


def _category(stamp_id: str) -> str:
    return stamp_id.split("/")[0]


def mc_rows(stamps: Sequence[str], rng: np.random.Generator, n_candidates: int) -> list[dict]:
    """One multiple-choice row per stamp (sorted ids): its own description among seeded same-category distractors."""
    stamps = sorted(stamps)
    if len(stamps) < n_candidates:
        raise BenchError(f"{len(stamps)} stamps cannot give {n_candidates} candidates per question")
    rows = []
    for stamp in stamps:
        same = [s for s in stamps if s != stamp and _category(s) == _category(stamp)]
        other = [s for s in stamps if _category(s) != _category(stamp)]
        pool = [same[i] for i in rng.permutation(len(same))] + [other[i] for i in rng.permutation(len(other))]
        candidates = pool[: n_candidates - 1]
        answer = int(rng.integers(n_candidates))
        candidates.insert(answer, stamp)
        rows.append({"stamp": stamp, "candidates": candidates, "answer": answer})
    return rows


def build_mc(split: dict, val: dict, seed: int = 0, n_candidates: int = 5) -> dict:
    """The published draws over the test stamps of a split file and the stamps of its validation carve: the
    multiple choice between descriptions and the "which of two pictures" pairs (see the module docstring)."""
    rows = {split_name: {"description": mc_rows(stamps, np.random.default_rng([seed, k] if k else seed), n_candidates),
                         "pick": mc_rows(stamps, np.random.default_rng([seed, k + 2]), PICK_CANDIDATES)}
            for k, (split_name, stamps) in enumerate((("test", split["splits"]["test"]), ("val", val["splits"]["val"])))}
    return {"rule": MC_RULE, "pick_rule": PICK_RULE, "seed": seed, "n_candidates": n_candidates,
            "split_test_sha256": split["sha256"]["test"], "split_val_sha256": val["sha256"]["val"],
            **{key: rows[split_name][kind] for (kind, split_name), key in MC_SECTIONS.items()}}


MC_SECTIONS = {("description", "test"): "questions", ("description", "val"): "val_questions",
               ("pick", "test"): "pick_questions", ("pick", "val"): "pick_val_questions"}


def published_rows(kind: str, split: str, mc_file: str, split_file: str, val_file: str) -> tuple[list[dict], str]:
    """The published draw `kind` ('description' or 'pick') of a split, checked against the split it was made for,
    and the name of its section (for error messages)."""
    key = MC_SECTIONS[(kind, split)]
    mc, mc_path = read_task_json(mc_file, "Tux Paint multiple-choice file")
    made_from, split_path = read_task_json(split_file, "Tux Paint split file")
    if split == "val":  # the validation carve lies beside the split file, as the tuxpaint adapter reads it
        made_from, _ = read_task_json(str(split_path.parent / val_file), "Tux Paint validation file")
    if key not in mc or mc.get(f"split_{split}_sha256") != made_from["sha256"][split]:
        raise BenchError(f"{mc_path}: has no {split} questions made for the {split} split of {split_file}; rebuild it "
                         "(python tasks/adapters/tuxpaint_qa.py)")
    return mc[key], f"{mc_path.name} {key}"


@register_adapter("tuxpaint_mc")
def tuxpaint_mc(split: str, mc_file: str = MC_FILE, split_file: str = "tuxpaint_split.json",
                **tuxpaint_args: object) -> ItemSet:
    """Tux Paint stamps with, on the test and validation splits, one multiple-choice question per stamp."""
    items = get_adapter("tuxpaint")(split=split, split_file=split_file, **tuxpaint_args)
    if split not in ("test", "val"):
        return items
    rows, where = published_rows("description", split, mc_file, split_file, str(tuxpaint_args.get("val_file", VAL_FILE)))
    caption = {i.item_id: i.texts[0] for i in items.items}
    questions = []
    for row_no, row in enumerate(rows, start=1):
        unknown = [c for c in row["candidates"] if c not in caption]
        if unknown:
            raise BenchError(f"{where} row {row_no}: candidate {unknown[0]!r} is not a {split} stamp")
        questions.append(Question(qid=row["stamp"], item_id=row["stamp"], text=MC_QUESTION, answer=int(row["answer"]),
                                  candidates=tuple(caption[c] for c in row["candidates"]), qtype="description",
                                  where=f"{where} row {row_no}"))
    return dataclasses.replace(items, questions=tuple(questions))


def pick_questions(split: str, mc_file: str, split_file: str, val_file: str) -> tuple[Question, ...]:
    """The published "which of two pictures does this recording describe" questions of a split (candidates:
    the two stamps, whose pictures are scored against the question's recording)."""
    rows, where = published_rows("pick", split, mc_file, split_file, val_file)
    return tuple(Question(qid=f"{row['stamp']}#pick", item_id=row["stamp"], text=PICK_QUESTION,
                          answer=int(row["answer"]), candidates=tuple(row["candidates"]), qtype="pick",
                          where=f"{where} row {row_no}") for row_no, row in enumerate(rows, start=1))


def templated_questions(items: ItemSet, seed: int) -> tuple[Question, ...]:
    """The `category` and `match` questions of every stamp of a split (seeded draw of the mismatched captions)."""
    rng = np.random.default_rng([seed, zlib.crc32(items.split.encode())])
    stamps = items.items
    out = []
    for k, item in enumerate(stamps):
        out.append(Question(qid=f"{item.item_id}#category", item_id=item.item_id, text=CATEGORY_QUESTION,
                            answer=str(item.label), qtype="category"))
        other = int(rng.integers(len(stamps) - 1)) if len(stamps) > 1 else 0
        other += other >= k
        matched = bool(rng.integers(2)) or len(stamps) == 1
        shown = stamps[k if matched else other].texts[0]
        out.append(Question(qid=f"{item.item_id}#match", item_id=item.item_id,
                            text=MATCH_TEMPLATE.format(caption=shown), answer="yes" if matched else "no",
                            qtype="match"))
    return tuple(out)


@register_adapter("tuxpaint_qa")
def tuxpaint_qa(split: str, question_seed: int = 0, mc_file: str = MC_FILE, **tuxpaint_args: object) -> ItemSet:
    """Tux Paint stamps with templated questions: category and description match on every split, plus the
    published "which of two pictures" questions on the test and validation splits."""
    items = get_adapter("tuxpaint")(split=split, **tuxpaint_args)
    questions = templated_questions(items, question_seed)
    if split in ("test", "val"):
        questions += pick_questions(split, mc_file, str(tuxpaint_args.get("split_file", "tuxpaint_split.json")),
                                    str(tuxpaint_args.get("val_file", VAL_FILE)))
    return dataclasses.replace(items, questions=questions)


def main(argv: Sequence[str] | None = None) -> int:
    """Rebuild tasks/tuxpaint_mc.json from the published split (maintainers only: it changes every score)."""
    parser = argparse.ArgumentParser(description="rebuild tasks/tuxpaint_mc.json from tasks/tuxpaint_split.json "
                                                 "and tasks/tuxpaint_val.json")
    parser.add_argument("--split-file", default=str(TASKS_DIR / "tuxpaint_split.json"))
    parser.add_argument("--val-file", default=str(TASKS_DIR / VAL_FILE))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(TASKS_DIR / "tuxpaint_mc.json"))
    args = parser.parse_args(argv)
    split, _ = read_task_json(args.split_file, "Tux Paint split file")
    val, _ = read_task_json(args.val_file, "Tux Paint validation file")
    mc = build_mc(split, val, args.seed)
    Path(args.out).write_text(json.dumps(mc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(mc['questions'])} test and {len(mc['val_questions'])} validation questions, "
          f"{mc['n_candidates']} candidates each; {len(mc['pick_questions'])} + {len(mc['pick_val_questions'])} "
          "two-picture questions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
