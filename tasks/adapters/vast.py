"""VAST-family annotation JSON (the files PMRL and GRAM read, docs/datasets.md 1.12) for any of their benchmarks."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pmrl_bench.data.items import Item, ItemSet, Question
from pmrl_bench.data.qa_files import check_question_file
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
    read_json,
)
from pmrl_bench.errors import BenchError
from pmrl_bench.registry import register_adapter

EXPECTED = (
    "descs_ret_<split>.json (a list of objects with an id in clip_id / video_id / image_id / image / id and the "
    "text in desc / caption / vast_cap, a string or a list), videos as <vision_dir>/<id>.mp4 and audio as "
    "<audio_dir>/<id>.mp3 or .wav"
)
QA_EXPECTED = (
    "descs_qa_<split>.json (a list of objects with an id in clip_id / video_id / image_id / image / id, `question` and "
    "`answer` as strings or as lists of the same length, optional question_id), videos as <vision_dir>/<id>.mp4 and "
    "audio as <audio_dir>/<id>.mp3 or .wav"
)
ANNOTATION_DIRS = (".", "annotations", "datasets/annotations")
ID_KEYS = ("clip_id", "video_id", "image_id", "image", "id")
TEXT_KEYS = ("desc", "caption", "vast_cap")


def record_id(record: dict[str, Any]) -> str:
    """The first present id key, in the order PMRL's IndexAnno uses."""
    for key in ID_KEYS:
        if key in record:
            return str(record[key])
    raise BenchError(f"VAST annotation record without an id key ({', '.join(ID_KEYS)}): {str(record)[:120]}")


def record_texts(record: dict[str, Any]) -> tuple[str, ...]:
    """desc, else caption, else vast_cap; a string becomes one caption, a list keeps its order."""
    for key in TEXT_KEYS:
        if key in record:
            value = record[key]
            return (value,) if isinstance(value, str) else tuple(str(v) for v in value)
    return ()


@register_adapter("vast")
def vast(split: str, dataset: str, data_dir: str | None = None, annotation: str | None = None,
         vision_dir: str | list[str] | None = None, audio_dir: str | list[str] | None = None,
         **options: Any) -> ItemSet:
    """VAST-family retrieval JSON (descs_ret_<split>.json) with vision/audio folders; `dataset` names the data."""
    check_options("vast", options)
    root = data_root(dataset, data_dir, EXPECTED)
    ann = find_file(root, [annotation.format(split=split) if annotation else f"descs_ret_{split}.json"], dataset,
                    EXPECTED, (".", "annotations", f"annotations/{dataset}", "datasets/annotations"))
    videos = MediaIndex(media_folders(root, vision_dir, ["videos", "video", "frames"]), VIDEO_SUFFIXES)
    audios = MediaIndex(media_folders(root, audio_dir, ["audios", "audio"]), AUDIO_SUFFIXES)
    items = []
    for record in read_json(ann):
        iid = record_id(record)
        media = {}
        if (video := videos.find(iid)) is not None:
            media["vision"] = video
        if (audio := audios.find(iid)) is not None:
            media["audio"] = audio
        fields = {"subtitle": record["subtitle"]} if "subtitle" in record else {}
        items.append(Item(iid, split, media, record_texts(record), fields=fields))
    if not len(videos) and not len(audios):
        raise no_media_error(dataset, split, videos.folders + audios.folders, len(items), EXPECTED)
    return build_item_set(dataset, split, items, ("vision", "audio"), [ann])


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def record_questions(record: dict[str, Any], iid: str, where: str) -> list[Question]:
    """The questions of one VAST QA record (`question` and `answer`: strings, or lists in the same order)."""
    texts, answers = _as_list(record.get("question", [])), _as_list(record.get("answer", []))
    if len(texts) != len(answers):
        raise BenchError(f"{where}: {len(texts)} questions but {len(answers)} answers")
    qids = _as_list(record["question_id"]) if "question_id" in record else [f"{iid}#{j}" for j in range(len(texts))]
    if len(qids) != len(texts):
        raise BenchError(f"{where}: {len(texts)} questions but {len(qids)} question ids")
    many = isinstance(record.get("question"), list)
    return [Question(qid=str(qid), item_id=iid, text=str(text), answer=str(answer or "").strip(),
                     where=f"{where} question {j + 1}" if many else where)
            for j, (qid, text, answer) in enumerate(zip(qids, texts, answers, strict=True))]


@register_adapter("vast_qa")
def vast_qa(split: str, dataset: str, data_dir: str | None = None, annotation: str | None = None,
            vision_dir: str | list[str] | None = None, audio_dir: str | list[str] | None = None,
            **options: Any) -> ItemSet:
    """VAST-family QA JSON (descs_qa_<split>.json): one item per record, its questions; texts = its captions
    (desc / caption / vast_cap) when the record has some, else its questions."""
    check_options("vast_qa", options)
    root = data_root(dataset, data_dir, QA_EXPECTED)
    ann = find_file(root, [annotation.format(split=split) if annotation else f"descs_qa_{split}.json"], dataset,
                    QA_EXPECTED, (*ANNOTATION_DIRS, f"annotations/{dataset}", f"datasets/annotations/{dataset}"))
    videos = MediaIndex(media_folders(root, vision_dir, ["videos", "video", "frames"]), VIDEO_SUFFIXES)
    audios = MediaIndex(media_folders(root, audio_dir, ["audios", "audio"]), AUDIO_SUFFIXES)
    items, questions = [], []
    for n, record in enumerate(read_json(ann), start=1):
        where = f"{Path(ann).name} row {n}"
        if not isinstance(record, dict):
            raise BenchError(f"{where}: expected an object with an id, question and answer")
        iid = record_id(record) if any(k in record for k in ID_KEYS) else ""
        own = record_questions(record, iid, where)
        questions.extend(own)
        if not iid:
            continue  # check_question_file names the row: a question without media
        media = {m: ref for m, ref in (("vision", videos.find(iid)), ("audio", audios.find(iid))) if ref is not None}
        items.append(Item(iid, split, media, record_texts(record) or tuple(q.text for q in own)))
    check_question_file(ann, questions, [i.item_id for i in items], multiple_choice=False)
    if not len(videos) and not len(audios):
        raise no_media_error(dataset, split, videos.folders + audios.folders, len(items), QA_EXPECTED)
    return dataclasses.replace(build_item_set(dataset, split, items, ("vision", "audio"), [ann]),
                               questions=tuple(questions))
