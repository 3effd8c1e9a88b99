"""MSR-VTT adapter: CLIP4Clip packaging (1k-A test, 9k/7k train) or the official split of the original release."""

from __future__ import annotations

from collections import defaultdict
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
    read_json,
)
from pmrl_bench.errors import unknown_name
from pmrl_bench.registry import register_adapter

EXPECTED = (
    "MSRVTT_data.json (videos + sentences), MSRVTT_train.9k.csv / MSRVTT_train.7k.csv (column video_id), "
    "MSRVTT_JSFUSION_test.csv (columns key, vid_key, video_id, sentence) at the top or in msrvtt_data/ or "
    "annotations/, videos as videos/<video_id>.mp4 (or videos/all/, any container); optionally an audio folder "
    "(audio_dir) with <video_id>.wav/.mp3, otherwise the audio is the video's own track"
)
ANNOTATION_DIRS = (".", "msrvtt_data", "annotations", "annotation", "data")
CSV_SPLITS = {"train_9k": "MSRVTT_train.9k.csv", "train_7k": "MSRVTT_train.7k.csv"}
OFFICIAL = {"train": "train", "val": "validate", "validate": "validate", "test": "test"}


def _sentences(data: dict[str, Any]) -> dict[str, list[str]]:
    captions: dict[str, list[str]] = defaultdict(list)
    for s in data["sentences"]:
        captions[s["video_id"]].append(s["caption"])
    return captions


@register_adapter("msrvtt")
def msrvtt(split: str, data_dir: str | None = None, video_dir: str | list[str] | None = None,
           audio_dir: str | None = None, **options: Any) -> ItemSet:
    """MSR-VTT: splits train_9k, train_7k, test_1k (JSFusion, one caption per video) and train/val/test (official)."""
    check_options("msrvtt", options)
    root = data_root("msrvtt", data_dir, EXPECTED)
    files = []
    if split == "test_1k":
        test_csv = find_file(root, ["MSRVTT_JSFUSION_test.csv"], "msrvtt", EXPECTED, ANNOTATION_DIRS)
        files.append(test_csv)
        rows = read_csv(test_csv, ["video_id", "sentence"])
        entries = [(r["video_id"], (r["sentence"],), {"key": r.get("key")}) for r in rows]
    elif split in CSV_SPLITS or split in OFFICIAL:
        data_json = find_file(root, ["MSRVTT_data.json", "train_val_videodatainfo.json"], "msrvtt", EXPECTED,
                              ANNOTATION_DIRS)
        data = read_json(data_json)
        files.append(data_json)
        if data_json.name == "train_val_videodatainfo.json" and OFFICIAL.get(split) == "test":
            test_json = find_file(root, ["test_videodatainfo.json"], "msrvtt", EXPECTED, ANNOTATION_DIRS)
            data = read_json(test_json)
            files = [test_json]
        if data_json.name == "train_val_videodatainfo.json" and split in CSV_SPLITS:
            # the 9k/7k lists include videos of the official test split, whose captions are in test_videodatainfo.json
            test_json = find_file(root, ["test_videodatainfo.json"], "msrvtt", EXPECTED, ANNOTATION_DIRS)
            test_data = read_json(test_json)
            files.append(test_json)
            data = {"videos": [*data["videos"], *test_data["videos"]],
                    "sentences": [*data["sentences"], *test_data["sentences"]]}
        captions = _sentences(data)
        if split in CSV_SPLITS:
            csv_path = find_file(root, [CSV_SPLITS[split]], "msrvtt", EXPECTED, ANNOTATION_DIRS)
            files.append(csv_path)
            ids = [r["video_id"] for r in read_csv(csv_path, ["video_id"])]
        else:
            ids = [v["video_id"] for v in data["videos"] if v.get("split") == OFFICIAL[split]]
        category = {v["video_id"]: v.get("category") for v in data["videos"]}
        entries = [(vid, tuple(captions.get(vid, ())), {"category": category.get(vid)}) for vid in ids]
    else:
        raise unknown_name("msrvtt split", split, [*CSV_SPLITS, "test_1k", *OFFICIAL])
    folders = media_folders(root, video_dir, ["videos/all", "videos", "MSRVTT/videos/all", "video"])
    videos = MediaIndex(folders, VIDEO_SUFFIXES)
    audios = MediaIndex(media_folders(root, audio_dir, []), AUDIO_SUFFIXES) if audio_dir else None
    items = []
    for vid, texts, fields in entries:
        media = {}
        video = videos.find(vid)
        if video is not None:
            media["vision"] = video
        audio = audios.find(vid) if audios is not None else video
        if audio is not None:
            media["audio"] = audio
        items.append(Item(vid, split, media, texts, fields=fields))
    if not len(videos):
        raise no_media_error("msrvtt", split, folders, len(items), EXPECTED)
    return build_item_set("msrvtt", split, items, ("vision", "audio"), files)
