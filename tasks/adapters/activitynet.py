"""ActivityNet Captions adapter: one item per video (`v_<youtube id>`), its sentences in annotation order."""

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
from pmrl_bench.errors import unknown_name
from pmrl_bench.registry import register_adapter

EXPECTED = (
    "train.json, val_1.json, val_2.json (objects keyed by v_<youtube id> with duration, timestamps, sentences) "
    "and the videos under videos/ named <youtube id>.<ext> or v_<youtube id>.<ext> (any container)"
)
SPLITS = {"train": "train.json", "val_1": "val_1.json", "val_2": "val_2.json", "val": "val_1.json"}


@register_adapter("activitynet")
def activitynet(split: str, data_dir: str | None = None, video_dir: str | list[str] | None = None,
                audio_dir: str | None = None, **options: Any) -> ItemSet:
    """ActivityNet Captions: splits train, val_1 (the retrieval test set), val_2; texts = the sentences, stripped."""
    check_options("activitynet", options)
    if split not in SPLITS:
        raise unknown_name("activitynet split", split, SPLITS)
    root = data_root("activitynet", data_dir, EXPECTED)
    ann = find_file(root, [SPLITS[split]], "activitynet", EXPECTED, (".", "annotations", "captions", "raw_data", "data"))
    folders = media_folders(root, video_dir, ["videos", "video", "Activity_Videos", "ActivityNet_Videos"])
    videos = MediaIndex(folders, VIDEO_SUFFIXES)
    audios = MediaIndex(media_folders(root, audio_dir, []), AUDIO_SUFFIXES) if audio_dir else None
    items = []
    for key, value in read_json(ann).items():
        bare = key[2:] if key.startswith("v_") else key
        media = {}
        path = videos.find(key, bare)
        if path is not None:
            media["vision"] = path
        audio = audios.find(key, bare) if audios is not None else path
        if audio is not None:
            media["audio"] = audio
        texts = tuple(s.strip() for s in value["sentences"])
        items.append(Item(key, split, media, texts,
                          fields={"duration": value.get("duration"), "timestamps": value.get("timestamps")}))
    if not len(videos):
        raise no_media_error("activitynet", split, folders, len(items), EXPECTED)
    return build_item_set("activitynet", split, items, ("vision", "audio"), [ann])
