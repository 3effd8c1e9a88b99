"""DiDeMo adapter (LocalizingMoments files): one item per video, its moment descriptions in file order."""

from __future__ import annotations

import logging
from pathlib import Path
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
    read_id_list,
    read_json,
)
from pmrl_bench.errors import unknown_name
from pmrl_bench.registry import register_adapter

LOG = logging.getLogger("pmrl_bench.adapters.didemo")

EXPECTED = (
    "train_data.json, val_data.json, test_data.json (lists of {description, video, times, ...}), optional "
    "train_list.txt/val_list.txt/test_list.txt (one video file name per line), and the videos under videos/ "
    "named as the `video` field (any container; matched by stem, so transcoded copies such as <name>.mp4 work)"
)
SPLITS = ("train", "val", "test")


def item_id_of(video: str) -> str:
    """The item id of a DiDeMo `video` field: the file name without a video extension."""
    return Path(video).stem if Path(video).suffix.lower() in VIDEO_SUFFIXES else video


@register_adapter("didemo")
def didemo(split: str, data_dir: str | None = None, video_dir: str | list[str] | None = None,
           audio_dir: str | None = None, **options: Any) -> ItemSet:
    """DiDeMo: splits train, val, test; texts = the video's descriptions (paragraph policy joins them)."""
    check_options("didemo", options)
    if split not in SPLITS:
        raise unknown_name("didemo split", split, SPLITS)
    root = data_root("didemo", data_dir, EXPECTED)
    ann = find_file(root, [f"{split}_data.json"], "didemo", EXPECTED)
    files = [ann]
    texts: dict[str, list[str]] = {}
    times: dict[str, list[Any]] = {}
    for moment in read_json(ann):
        texts.setdefault(moment["video"], []).append(moment["description"])
        times.setdefault(moment["video"], []).append(moment.get("times"))
    order = list(texts)
    list_file = next((p for p in (ann.parent / f"{split}_list.txt", root / f"{split}_list.txt",
                                  root / "annotations" / f"{split}_list.txt") if p.is_file()), None)
    if list_file is not None:
        files.append(list_file)
        listed = read_id_list(list_file)
        order = [v for v in listed if v in texts]
        listed_set = set(listed)
        unlisted = [v for v in texts if v not in listed_set]
        unannotated = [v for v in listed if v not in texts]
        if unlisted or unannotated:
            LOG.warning(f"didemo {split}: {list_file.name} defines the split: {len(unlisted)} annotated videos not "
                        f"listed (first {unlisted[:3]}), {len(unannotated)} listed videos without annotations (first "
                        f"{unannotated[:3]}) are left out")
    folders = media_folders(root, video_dir, ["videos", "video", "DiDeMo/videos"])
    videos = MediaIndex(folders, VIDEO_SUFFIXES)
    audios = MediaIndex(media_folders(root, audio_dir, []), AUDIO_SUFFIXES) if audio_dir else None
    items = []
    for video in order:
        iid = item_id_of(video)
        media = {}
        path = videos.find(video, iid)
        if path is not None:
            media["vision"] = path
        audio = audios.find(video, iid) if audios is not None else path
        if audio is not None:
            media["audio"] = audio
        items.append(Item(iid, split, media, tuple(texts[video]), fields={"video": video, "times": times[video]}))
    if not len(videos):
        raise no_media_error("didemo", split, folders, len(items), EXPECTED)
    return build_item_set("didemo", split, items, ("vision", "audio"), files)
