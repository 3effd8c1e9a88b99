"""AudioCaps adapter: {train,val,test}.csv (one row per caption), clips grouped by YouTube id and start time."""

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
    read_csv,
)
from pmrl_bench.errors import unknown_name
from pmrl_bench.registry import register_adapter

EXPECTED = (
    "train.csv, val.csv, test.csv with columns audiocap_id, youtube_id, start_time, caption (at the top or in "
    "dataset/ or dataset2.0/), and the 10-second clips under audio/ (or audio/<split>/) named by one of the "
    "templates in `audio_templates` (default: {youtube_id}_{start_time}, Y{youtube_id}, {youtube_id}, "
    "Y{youtube_id}_{start:.3f}_{end:.3f}, {audiocap_id}; any audio extension)"
)
SPLITS = ("train", "val", "test")
DEFAULT_TEMPLATES = ("{youtube_id}_{start_time}", "Y{youtube_id}", "{youtube_id}",
                     "Y{youtube_id}_{start:.3f}_{end:.3f}", "{audiocap_id}")


@register_adapter("audiocaps")
def audiocaps(split: str, data_dir: str | None = None, audio_dir: str | list[str] | None = None,
              video_dir: str | list[str] | None = None, audio_templates: list[str] | None = None,
              **options: Any) -> ItemSet:
    """AudioCaps: splits train, val, test; one item per (youtube_id, start_time), captions in row order."""
    check_options("audiocaps", options)
    if split not in SPLITS:
        raise unknown_name("audiocaps split", split, SPLITS)
    root = data_root("audiocaps", data_dir, EXPECTED)
    ann = find_file(root, [f"{split}.csv"], "audiocaps", EXPECTED, (".", "dataset", "dataset2.0", "annotations", "data"))
    grouped: dict[str, dict[str, Any]] = {}
    for row in read_csv(ann, ["audiocap_id", "youtube_id", "start_time", "caption"]):
        key = f"{row['youtube_id']}_{row['start_time']}"
        entry = grouped.setdefault(key, {"row": row, "captions": [], "ids": []})
        entry["captions"].append(row["caption"])
        entry["ids"].append(row["audiocap_id"])
    folders = media_folders(root, audio_dir, [f"audio/{split}", "audio", split, "waveforms", "wav"])
    audios = MediaIndex(folders, AUDIO_SUFFIXES)
    videos = MediaIndex(media_folders(root, video_dir, []), VIDEO_SUFFIXES) if video_dir else None
    templates = tuple(audio_templates or DEFAULT_TEMPLATES)
    items = []
    for key, entry in grouped.items():
        row = entry["row"]
        start = float(row["start_time"])
        names = [t.format(youtube_id=row["youtube_id"], start_time=row["start_time"], audiocap_id=row["audiocap_id"],
                          start=start, end=start + 10.0) for t in templates]
        media = {}
        audio = audios.find(*names)
        if audio is not None:
            media["audio"] = audio
        if videos is not None and (video := videos.find(*names)) is not None:
            media["vision"] = video
        items.append(Item(key, split, media, tuple(entry["captions"]),
                          fields={"youtube_id": row["youtube_id"], "start_time": start, "audiocap_ids": entry["ids"]}))
    if not len(audios):
        raise no_media_error("audiocaps", split, folders, len(items), EXPECTED)
    return build_item_set("audiocaps", split, items, ("audio", "vision") if videos is not None else ("audio",), [ann])
