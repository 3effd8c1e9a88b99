"""MSRVTT-QA (open-ended, docs/datasets.md 1.9) and MSRVTT-MC (multiple choice, 1.10) on the MSR-VTT videos.

The items and their captions come from the `msrvtt` adapter (same data folder), so the heads are aligned on
the MSR-VTT training captions as for retrieval; the questions ride on the items:

* `msrvtt_qa`, splits `train` / `val` / `test` (the official MSR-VTT split): `<split>_qa.json`, a list of
  `{question, answer, id, video_id, category_id}` with `video_id` the integer k of MSR-VTT `video<k>`;
  the question type is the question's first word (what, who, how, when, where).
* `msrvtt_mc`: the test split `mc_test` is `MSR_MC_test.csv` (tab-separated; `video_id`, five candidate
  captions `a1` ... `a5`, `answer` = index of the right one, 0-based unless `answer_base: 1`); one item per
  video, its text the right caption; any other split is the `msrvtt` adapter's (e.g. `train_9k`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pmrl_bench.data.items import Item, ItemSet, Question, annotation_identity
from pmrl_bench.data.qa_files import check_question_file, question_type
from pmrl_bench.data.sources import (
    AUDIO_SUFFIXES,
    VIDEO_SUFFIXES,
    MediaIndex,
    build_item_set,
    check_options,
    data_root,
    find_file,
    media_folders,
    no_media_error,
    read_csv,
    read_json,
)
from pmrl_bench.errors import BenchError
from pmrl_bench.registry import get_adapter, register_adapter

QA_EXPECTED = ("train_qa.json, val_qa.json, test_qa.json (MSRVTT-QA, Xu et al. 2017: lists of {question, answer, id, "
               "video_id, category_id}) at the top or in msrvtt_qa/ / MSRVTT-QA/, next to the MSR-VTT files the msrvtt "
               "task reads (MSRVTT_data.json or train_val_videodatainfo.json + test_videodatainfo.json, videos/)")
MC_EXPECTED = ("MSR_MC_test.csv (JSFusion multiple choice: tab-separated, columns key, vid_key, video_id, a1..a5, answer) "
               "at the top or in msrvtt_data/ / annotations/, videos as videos/<video_id>.mp4 (or videos/all/)")
QA_DIRS = (".", "msrvtt_qa", "MSRVTT-QA", "annotations", "qa")
OFFICIAL = {"train": "train", "val": "val", "test": "test"}
MC_QUESTION = "Which caption describes this video?"
MC_COLUMNS = ("a1", "a2", "a3", "a4", "a5")


def video_name(value: Any) -> str:
    """MSR-VTT video id of a QA row: an integer k (or its string) is `video<k>`; `video<k>` stays."""
    text = str(value).strip()
    return f"video{int(text)}" if text.isdigit() else text


def read_qa_rows(path: Path) -> list[Question]:
    """The questions of one MSRVTT-QA file (rows numbered from 1 in the JSON list)."""
    questions = []
    for n, rec in enumerate(read_json(path), start=1):
        where = f"{path.name} row {n}"
        if not isinstance(rec, dict) or "question" not in rec:
            raise BenchError(f"{where}: expected an object with question, answer, video_id")
        vid = rec.get("video_id")
        text = str(rec["question"])
        questions.append(Question(qid=str(rec.get("id", n)), item_id="" if vid is None else video_name(vid), text=text,
                                  answer=str(rec.get("answer") or "").strip(), qtype=question_type(text), where=where))
    return questions


@register_adapter("msrvtt_qa")
def msrvtt_qa(split: str, data_dir: str | None = None, **msrvtt_args: Any) -> ItemSet:
    """MSR-VTT videos of the official split with their captions and the MSRVTT-QA questions about them."""
    if split not in OFFICIAL:
        raise BenchError(f"msrvtt_qa: unknown split {split!r}; known: {', '.join(OFFICIAL)}")
    root = data_root("msrvtt", data_dir, QA_EXPECTED)
    path = find_file(root, [f"{split}_qa.json"], "msrvtt", QA_EXPECTED, QA_DIRS)
    questions = read_qa_rows(path)
    items = get_adapter("msrvtt")(split=OFFICIAL[split], data_dir=str(root), **msrvtt_args)
    check_question_file(path, questions, [i.item_id for i in items.items], multiple_choice=False)
    return dataclasses.replace(items, questions=tuple(questions),
                               annotation_identity={**items.annotation_identity, **annotation_identity([path])})


def read_mc_rows(path: Path, answer_base: int) -> list[Question]:
    """The multiple-choice questions of MSR_MC_test.csv (rows numbered as in the file, the header being row 1)."""
    rows = read_csv(path, ["video_id", "answer"], delimiter="\t")
    questions = []
    for n, row in enumerate(rows, start=2):
        where = f"{path.name} row {n}"
        candidates = tuple(str(row.get(c) or "").strip() for c in MC_COLUMNS if str(row.get(c) or "").strip())
        answer = str(row.get("answer") or "").strip()
        if not answer.lstrip("-").isdigit():
            raise BenchError(f"{where}: answer {answer!r} is not a candidate index")
        questions.append(Question(qid=str(row.get("key") or n), item_id=str(row.get("video_id") or "").strip(),
                                  text=MC_QUESTION, answer=int(answer) - answer_base, candidates=candidates,
                                  qtype="caption", where=where))
    return questions


@register_adapter("msrvtt_mc")
def msrvtt_mc(split: str, data_dir: str | None = None, video_dir: str | list[str] | None = None,
              audio_dir: str | None = None, mc_split: str = "mc_test", answer_base: int = 0,
              **options: Any) -> ItemSet:
    """MSR-VTT retrieval splits, plus `mc_split`: the videos of MSR_MC_test.csv with one question each."""
    if split != mc_split:
        return get_adapter("msrvtt")(split=split, data_dir=data_dir, video_dir=video_dir, audio_dir=audio_dir,
                                     **options)
    check_options("msrvtt_mc", options)
    root = data_root("msrvtt", data_dir, MC_EXPECTED)
    path = find_file(root, ["MSR_MC_test.csv"], "msrvtt", MC_EXPECTED, (".", "msrvtt_data", "annotations", "data"))
    questions = read_mc_rows(path, answer_base)
    ids = list(dict.fromkeys(q.item_id for q in questions if q.item_id))
    check_question_file(path, questions, ids, multiple_choice=True)
    odd = next((q for q in questions if len(q.candidates) != len(questions[0].candidates)), None)
    if odd is not None:
        raise BenchError(f"{odd.where}: {len(odd.candidates)} candidates, while the first row has "
                         f"{len(questions[0].candidates)}")
    folders = media_folders(root, video_dir, ["videos/all", "videos", "MSRVTT/videos/all", "video"])
    videos = MediaIndex(folders, VIDEO_SUFFIXES)
    audios = MediaIndex(media_folders(root, audio_dir, []), AUDIO_SUFFIXES) if audio_dir else None
    right: dict[str, list[str]] = {}
    for q in questions:
        right.setdefault(q.item_id, []).append(q.candidates[int(q.answer)])
    items = []
    for vid in ids:
        video = videos.find(vid)
        audio = audios.find(vid) if audios is not None else video
        media = {k: v for k, v in (("vision", video), ("audio", audio)) if v is not None}
        items.append(Item(vid, split, media, tuple(dict.fromkeys(right[vid]))))
    if not len(videos):
        raise no_media_error("msrvtt", split, folders, len(items), MC_EXPECTED)
    out = build_item_set("msrvtt", split, items, ("vision", "audio"), [path], {"answer_base": str(answer_base)})
    return dataclasses.replace(out, questions=tuple(questions))
