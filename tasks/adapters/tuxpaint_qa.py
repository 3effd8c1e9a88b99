"""Tux Paint QA tasks on the published split: multiple choice between real descriptions, and templated questions.

* `tuxpaint_mc` (test split only): each test stamp's image + speech against `n_candidates` real descriptions,
  its own and distractors drawn with a fixed seed from the other test stamps of its category (topped up from
  the other test stamps when the category has too few). The draw is published in tasks/tuxpaint_mc.json,
  built from the split file by `build_mc` (run this file as a script to rebuild it).
* `tuxpaint_qa` (both splits): templated questions (not natural questions) answered from the stamp metadata:
  type `category` ("What kind of thing is this?" -> the category name) and type `match` ("Does this show:
  <a description>?" -> yes/no; the description is the stamp's own or, with a fixed seeded draw, that of
  another stamp of the same split, each half of the time).
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

MC_QUESTION = "Which description fits this stamp?"
CATEGORY_QUESTION = "What kind of thing is this?"
MATCH_TEMPLATE = "Does this show: {caption}"
MC_RULE = ("per test stamp (sorted ids), numpy default_rng(seed): distractors = a permutation of the other test stamps "
           "of its category, then of the other test stamps, first n_candidates - 1 kept; the right description is "
           "placed at a uniform position among the candidates")


def _category(stamp_id: str) -> str:
    return stamp_id.split("/")[0]


def build_mc(split: dict, seed: int = 0, n_candidates: int = 5) -> dict:
    """The published multiple-choice draw over the test stamps of a split file (see the module docstring)."""
    test = sorted(split["splits"]["test"])
    if len(test) < n_candidates:
        raise BenchError(f"{len(test)} test stamps cannot give {n_candidates} candidates per question")
    rng = np.random.default_rng(seed)
    rows = []
    for stamp in test:
        same = [s for s in test if s != stamp and _category(s) == _category(stamp)]
        other = [s for s in test if _category(s) != _category(stamp)]
        pool = [same[i] for i in rng.permutation(len(same))] + [other[i] for i in rng.permutation(len(other))]
        candidates = pool[: n_candidates - 1]
        answer = int(rng.integers(n_candidates))
        candidates.insert(answer, stamp)
        rows.append({"stamp": stamp, "candidates": candidates, "answer": answer})
    return {"rule": MC_RULE, "seed": seed, "n_candidates": n_candidates, "split_test_sha256": split["sha256"]["test"],
            "questions": rows}


@register_adapter("tuxpaint_mc")
def tuxpaint_mc(split: str, mc_file: str = "tuxpaint_mc.json", split_file: str = "tuxpaint_split.json",
                **tuxpaint_args: object) -> ItemSet:
    """Tux Paint stamps with, on the test split, one multiple-choice question per stamp (published draw)."""
    items = get_adapter("tuxpaint")(split=split, split_file=split_file, **tuxpaint_args)
    if split != "test":
        return items
    mc, mc_path = read_task_json(mc_file, "Tux Paint multiple-choice file")
    split_data, _ = read_task_json(split_file, "Tux Paint split file")
    if mc.get("split_test_sha256") != split_data["sha256"]["test"]:
        raise BenchError(f"{mc_path}: made for another test split than {split_file}; rebuild it "
                         "(python tasks/adapters/tuxpaint_qa.py)")
    caption = {i.item_id: i.texts[0] for i in items.items}
    questions = []
    for row_no, row in enumerate(mc["questions"], start=1):
        unknown = [c for c in row["candidates"] if c not in caption]
        if unknown:
            raise BenchError(f"{mc_path.name} row {row_no}: candidate {unknown[0]!r} is not a test stamp")
        questions.append(Question(qid=row["stamp"], item_id=row["stamp"], text=MC_QUESTION, answer=int(row["answer"]),
                                  candidates=tuple(caption[c] for c in row["candidates"]), qtype="description",
                                  where=f"{mc_path.name} row {row_no}"))
    return dataclasses.replace(items, questions=tuple(questions))


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
def tuxpaint_qa(split: str, question_seed: int = 0, **tuxpaint_args: object) -> ItemSet:
    """Tux Paint stamps with templated open-ended questions (category; does a description match) on every split."""
    items = get_adapter("tuxpaint")(split=split, **tuxpaint_args)
    return dataclasses.replace(items, questions=templated_questions(items, question_seed))


def main(argv: Sequence[str] | None = None) -> int:
    """Rebuild tasks/tuxpaint_mc.json from the published split (maintainers only: it changes every score)."""
    parser = argparse.ArgumentParser(description="rebuild tasks/tuxpaint_mc.json from tasks/tuxpaint_split.json")
    parser.add_argument("--split-file", default=str(TASKS_DIR / "tuxpaint_split.json"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(TASKS_DIR / "tuxpaint_mc.json"))
    args = parser.parse_args(argv)
    split, _ = read_task_json(args.split_file, "Tux Paint split file")
    mc = build_mc(split, args.seed)
    Path(args.out).write_text(json.dumps(mc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(mc['questions'])} questions, {mc['n_candidates']} candidates each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
