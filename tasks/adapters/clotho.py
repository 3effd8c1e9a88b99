"""Clotho v2.1 adapter: clotho_captions_<split>.csv (file_name, caption_1..5), audio under one folder per split."""

from __future__ import annotations

from typing import Any

from pmrl_bench.data.items import Item, ItemSet
from pmrl_bench.data.sources import (
    AUDIO_SUFFIXES,
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
    "clotho_captions_development.csv, clotho_captions_validation.csv, clotho_captions_evaluation.csv (columns "
    "file_name, caption_1 ... caption_5), optional clotho_metadata_<split>.csv, and the audio files (original "
    "Freesound names) under <split>/ or clotho_audio_<split>/ or audio/<split>/"
)
SPLITS = {"development": "development", "validation": "validation", "evaluation": "evaluation",
          "train": "development", "val": "validation", "test": "evaluation"}
N_CAPTIONS = 5


@register_adapter("clotho")
def clotho(split: str, data_dir: str | None = None, audio_dir: str | list[str] | None = None,
           **options: Any) -> ItemSet:
    """Clotho: splits development, validation, evaluation (aliases train, val, test); 5 captions per clip."""
    check_options("clotho", options)
    if split not in SPLITS:
        raise unknown_name("clotho split", split, SPLITS)
    name = SPLITS[split]
    root = data_root("clothov2", data_dir, EXPECTED)
    ann = find_file(root, [f"clotho_captions_{name}.csv"], "clothov2", EXPECTED)
    files = [ann]
    caption_cols = [f"caption_{k}" for k in range(1, N_CAPTIONS + 1)]
    rows = read_csv(ann, ["file_name", *caption_cols])
    meta_path = next((p for p in (ann.parent / f"clotho_metadata_{name}.csv",) if p.is_file()), None)
    meta = {}
    if meta_path is not None:
        files.append(meta_path)
        meta = {r["file_name"]: r for r in read_csv(meta_path, ["file_name"])}
    folders = media_folders(root, audio_dir, [name, f"clotho_audio_{name}", f"audio/{name}", "audio"])
    audios = MediaIndex(folders, AUDIO_SUFFIXES)
    items = []
    for row in rows:
        fname = row["file_name"]
        media = {}
        audio = audios.find(fname)
        if audio is not None:
            media["audio"] = audio
        extra = meta.get(fname, {})
        fields = {k: extra[k] for k in ("keywords", "sound_id", "license") if k in extra}
        items.append(Item(fname, split, media, tuple(row[c] for c in caption_cols), fields=fields))
    if not len(audios):
        raise no_media_error("clothov2", split, folders, len(items), EXPECTED)
    return build_item_set("clothov2", split, items, ("audio",), files)
