"""MUSIC-AVQA adapter (docs/datasets.md 1.11): open-ended audio-visual questions about music videos.

Original files `avqa-{train,val,test}.json`: lists of `{video_id, question_id, type, question_content,
templ_values, anser, question_deleted}` where `type` is a JSON-encoded list (`'["Audio-Visual", "Counting"]'`,
the question type is its parts joined by '/'), `question_content` a template whose placeholders (`<Object>`,
`<LR Instrument>`, ...) are filled in order by the JSON-encoded list `templ_values`, and `anser` (sic) the
answer; rows with `question_deleted` set are left out (counted in the log). Where only the VAST-family copy
`descs_qa_<split>.json` is present (GRAM's `datasets/annotations/music/`), it is read instead (`vast_qa`
adapter: templates already filled, no question types). MUSIC-AVQA has no captions: an item's texts, on
which the heads are aligned, are its (filled) questions. Videos are `<video_id>.mp4`; the audio is the
video's own track unless `audio_dir` holds `<video_id>.wav/.mp3`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
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
from pmrl_bench.registry import get_adapter, register_adapter

LOG = logging.getLogger(__name__)
DATASET = "music-avqa"
EXPECTED = ("avqa-train.json, avqa-val.json, avqa-test.json (MUSIC-AVQA, gewu-lab.github.io/MUSIC-AVQA) or the "
            "VAST-family copies descs_qa_<split>.json, at the top or in json/ / annotations/; videos as "
            "videos/<video_id>.mp4 (MUSIC-AVQA-videos-Real and -Synthetic in one folder or several)")
ANNOTATION_DIRS = (".", "json", "annotations", "data/json", "annotations/music", "datasets/annotations/music")
PLACEHOLDER = re.compile(r"<[^<>]+>")


def json_list(value: Any, where: str, key: str) -> list[Any]:
    """A list given as a list or as a JSON-encoded string (MUSIC-AVQA's `type` and `templ_values`)."""
    if isinstance(value, list):
        return value
    try:
        parsed = json.loads(value) if isinstance(value, str) and value.strip() else []
    except ValueError:
        raise BenchError(f"{where}: {key} {value!r} is not a JSON list") from None
    if not isinstance(parsed, list):
        raise BenchError(f"{where}: {key} {value!r} is not a JSON list")
    return parsed


def fill_template(template: str, values: list[Any], where: str) -> str:
    """`template` with its placeholders replaced in order by `values` (as many values as placeholders)."""
    holes = PLACEHOLDER.findall(template)
    if len(holes) != len(values):
        raise BenchError(f"{where}: {len(holes)} placeholders in {template!r} but {len(values)} templ_values")
    filled = iter(str(v) for v in values)
    return PLACEHOLDER.sub(lambda _: next(filled), template)


def read_avqa(path: Path) -> list[Question]:
    """The questions of one avqa-<split>.json file (rows numbered from 1 in the JSON list)."""
    questions, deleted = [], 0
    for n, rec in enumerate(read_json(path), start=1):
        where = f"{path.name} row {n}"
        if not isinstance(rec, dict) or "question_content" not in rec:
            raise BenchError(f"{where}: expected an object with video_id, question_content, templ_values, anser")
        if str(rec.get("question_deleted", 0)) not in ("0", "", "False", "None"):
            deleted += 1
            continue
        vid = rec.get("video_id")
        vid = "" if vid is None else (f"{vid:08d}" if isinstance(vid, int) else str(vid).strip())
        text = fill_template(str(rec["question_content"]), json_list(rec.get("templ_values"), where, "templ_values"),
                             where)
        qtype = "/".join(str(t) for t in json_list(rec.get("type"), where, "type"))
        questions.append(Question(qid=str(rec.get("question_id", n)), item_id=vid, text=text,
                                  answer=str(rec.get("anser", rec.get("answer")) or "").strip(), qtype=qtype,
                                  where=where))
    if deleted:
        LOG.warning("%s: %d questions marked question_deleted left out", path.name, deleted)
    return questions


def _own_track(items: ItemSet) -> ItemSet:
    """Items without an audio file take the audio track of their video."""
    kept = tuple(dataclasses.replace(i, media={**i.media, "audio": i.media["vision"]})
                 if "audio" not in i.media and "vision" in i.media else i for i in items.items)
    missing = {m: tuple(i.item_id for i in kept if m not in i.media) for m in ("vision", "audio")}
    return dataclasses.replace(items, items=kept, missing={m: ids for m, ids in missing.items() if ids})


@register_adapter("music_avqa")
def music_avqa(split: str, data_dir: str | None = None, video_dir: str | list[str] | None = None,
               audio_dir: str | list[str] | None = None, **options: Any) -> ItemSet:
    """MUSIC-AVQA videos of a split (train / val / test) with their questions, from either annotation family."""
    check_options("music_avqa", options)
    root = data_root(DATASET, data_dir, EXPECTED)
    path = find_file(root, [f"avqa-{split}.json", f"descs_qa_{split}.json"], DATASET, EXPECTED, ANNOTATION_DIRS)
    video_folders = media_folders(root, video_dir, ["videos", "MUSIC-AVQA-videos-Real", "MUSIC-AVQA-videos-Synthetic"])
    if path.name.startswith("descs_qa_"):
        items = get_adapter("vast_qa")(split=split, dataset=DATASET, data_dir=str(root),
                                       annotation=str(path.relative_to(root)), vision_dir=[str(f) for f in video_folders],
                                       audio_dir=audio_dir or [])
        return _own_track(items)
    questions = read_avqa(path)
    videos = MediaIndex(video_folders, VIDEO_SUFFIXES)
    audios = MediaIndex(media_folders(root, audio_dir, []), AUDIO_SUFFIXES) if audio_dir else None
    texts: dict[str, list[str]] = {}
    for q in questions:
        if q.item_id:
            texts.setdefault(q.item_id, []).append(q.text)
    items = []
    for vid, own in texts.items():
        video = videos.find(vid)
        audio = audios.find(vid) if audios is not None else video
        media = {m: ref for m, ref in (("vision", video), ("audio", audio)) if ref is not None}
        items.append(Item(vid, split, media, tuple(dict.fromkeys(own))))
    check_question_file(path, questions, list(texts), multiple_choice=False)
    if not len(videos):
        raise no_media_error(DATASET, split, video_folders, len(items), EXPECTED)
    return dataclasses.replace(build_item_set(DATASET, split, items, ("vision", "audio"), [path]),
                               questions=tuple(questions))
