"""VATEX adapter: official JSON files (videoID, enCap), with the HGR retrieval split from id lists."""

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
    read_id_list,
    read_json,
)
from pmrl_bench.errors import BenchError, unknown_name
from pmrl_bench.registry import register_adapter

EXPECTED = (
    "vatex_training_v1.0.json, vatex_validation_v1.0.json, vatex_public_test_english_v1.1.json (lists of "
    "{videoID, enCap, ...}); for the HGR retrieval split (1,500 val / 1,500 test carved from the validation "
    "file) hgr_val_ids.txt and hgr_test_ids.txt (one videoID per line; .json lists or .npy string arrays also "
    "work); videos as videos/<videoID>.mp4"
)
FILES = {"train": "vatex_training_v1.0.json", "validation": "vatex_validation_v1.0.json",
         "public_test": "vatex_public_test_english_v1.1.json"}
HGR = {"hgr_val": "hgr_val_ids", "hgr_test": "hgr_test_ids"}
HELD_OUT = "val_minus_hgr_test"  # the validation file without the HGR test ids: the retrieval tasks' validation


@register_adapter("vatex")
def vatex(split: str, data_dir: str | None = None, video_dir: str | list[str] | None = None,
          audio_dir: str | None = None, **options: Any) -> ItemSet:
    """VATEX: splits train, validation, public_test, hgr_val / hgr_test (subsets of validation), val_minus_hgr_test."""
    check_options("vatex", options)
    if split not in FILES and split not in HGR and split != HELD_OUT:
        raise unknown_name("vatex split", split, [*FILES, *HGR, HELD_OUT])
    root = data_root("vatex", data_dir, EXPECTED)
    ann = find_file(root, [FILES.get(split, FILES["validation"])], "vatex", EXPECTED)
    files = [ann]
    records = read_json(ann)
    if split in HGR:
        id_file = find_file(root, [f"{HGR[split]}{ext}" for ext in (".txt", ".json", ".npy")], "vatex", EXPECTED)
        files.append(id_file)
        by_id = {r["videoID"]: r for r in records}
        wanted = read_id_list(id_file)
        absent = [v for v in wanted if v not in by_id]
        if absent:
            raise BenchError(f"{id_file}: {len(absent)} ids are not in {ann.name} (first: {absent[0]})")
        records = [by_id[v] for v in wanted]
    elif split == HELD_OUT:
        id_file = find_file(root, [f"{HGR['hgr_test']}{ext}" for ext in (".txt", ".json", ".npy")], "vatex", EXPECTED)
        files.append(id_file)
        test_ids = set(read_id_list(id_file))
        records = [r for r in records if r["videoID"] not in test_ids]
    folders = media_folders(root, video_dir, ["videos", "video", "vatex_videos"])
    videos = MediaIndex(folders, VIDEO_SUFFIXES)
    audios = MediaIndex(media_folders(root, audio_dir, []), AUDIO_SUFFIXES) if audio_dir else None
    items = []
    for r in records:
        vid = r["videoID"]
        youtube_id = vid.rsplit("_", 2)[0]
        media = {}
        path = videos.find(vid, youtube_id)
        if path is not None:
            media["vision"] = path
        audio = audios.find(vid, youtube_id) if audios is not None else path
        if audio is not None:
            media["audio"] = audio
        items.append(Item(vid, split, media, tuple(r.get("enCap", ())), fields={"n_zh_captions": len(r.get("chCap", ()))}))
    if not len(videos):
        raise no_media_error("vatex", split, folders, len(items), EXPECTED)
    return build_item_set("vatex", split, items, ("vision", "audio"), files)
