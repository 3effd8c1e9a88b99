"""VAST-family annotation JSON (the files PMRL and GRAM read, docs/datasets.md 1.12) for any of their benchmarks."""

from __future__ import annotations

from typing import Any

from pmrl_bench.data.items import Item, ItemSet
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
