"""ESC-50 adapter (docs/datasets.md 1.7): 2,000 five-second clips, 50 classes, 5 folds, from the original files
(`meta/esc50.csv` + `audio/*.wav`) or a Hugging Face copy with the same columns plus an audio column.

Splits of fold k (`fold` argument, 1-5): `test` = the clips of fold k, `train` = the other four folds, `all`.
Fragments of one source recording (`src_file`) share a fold; they are one item group, so the validation
carve of the training folds never splits a recording. Each clip's text is `text_template` filled with its
class name (underscores to spaces), the class list is the category of each target in target order, and
`fields["where"]` names the CSV row (or the dataset row) for error messages.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
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
from pmrl_bench.errors import BenchError, unknown_name
from pmrl_bench.registry import register_adapter

EXPECTED = ("meta/esc50.csv (columns filename, fold, target, category, esc10, src_file, take) and the clips as "
            "audio/<filename> ({FOLD}-{CLIP_ID}-{TAKE}-{TARGET}.wav), from github.com/karolpiczak/ESC-50; or a "
            "Hugging Face copy with the same columns and an audio column (adapter_args.hf_dataset, e.g. ashraq/esc50)")
COLUMNS = ("filename", "fold", "target", "category", "src_file")
FOLDS = (1, 2, 3, 4, 5)
SPLITS = ("train", "test", "all")


def class_name(category: str) -> str:
    """The readable class name of an ESC-50 category (underscores to spaces)."""
    return category.replace("_", " ").strip()


def class_list(rows: list[dict[str, Any]], where: list[str]) -> tuple[str, ...]:
    """Class names in target order; a target whose rows name two categories is bad input (file and row)."""
    by_target: dict[int, tuple[str, str]] = {}
    for row, at in zip(rows, where, strict=True):
        target, name = int(row["target"]), class_name(str(row["category"]))
        first = by_target.setdefault(target, (name, at))
        if first[0] != name:
            raise BenchError(f"{at}: target {target} is {name!r} here but {first[0]!r} in {first[1]}")
    return tuple(by_target[t][0] for t in sorted(by_target))


def _hf_rows(source: str, revision: str | None, hf_split: str) -> tuple[list[dict[str, Any]], list[Any], dict[str, str]]:
    """Metadata rows, lazy audio references and the identity of a Hugging Face copy."""
    from pmrl_bench.data.hf_source import hf_media_refs, load_hf_split

    ds = load_hf_split(source, None, revision, hf_split)
    absent = [c for c in [*COLUMNS, "audio"] if c not in ds.column_names]
    if absent:
        raise BenchError(f"esc50: dataset {source!r} has no column {absent[0]!r} (columns: {', '.join(ds.column_names)})")
    table = ds.select_columns(list(COLUMNS)).to_dict()
    rows = [dict(zip(COLUMNS, values, strict=True)) for values in zip(*(table[c] for c in COLUMNS), strict=True)]
    identity = {"hf_dataset": Path(source).name, "revision": str(revision), "split": hf_split,
                "fingerprint": str(getattr(ds, "_fingerprint", ""))}
    return rows, hf_media_refs(ds, "audio", "audio", f"esc50:{hf_split}", None), identity


@register_adapter("esc50")
def esc50(split: str, fold: int = 1, data_dir: str | None = None, audio_dir: str | None = None,
          text_template: str = "the sound of {label}", hf_dataset: str | None = None, hf_revision: str | None = None,
          hf_split: str = "train", **options: Any) -> ItemSet:
    """ESC-50 clips of fold `fold` (`test`), of the other folds (`train`) or all (`all`), labelled by class name."""
    check_options("esc50", options)
    if split not in SPLITS:
        raise unknown_name("esc50 split", split, SPLITS)
    if int(fold) not in FOLDS:
        raise BenchError(f"esc50: fold {fold!r} is not one of {', '.join(map(str, FOLDS))}")
    if hf_dataset:
        rows, refs, identity = _hf_rows(data_dir or hf_dataset, hf_revision, hf_split)
        where = [f"{hf_dataset} {hf_split} row {n}" for n in range(len(rows))]
        files: list[Path] = []
        folders: list[Path] = []
    else:
        root = data_root("esc50", data_dir, EXPECTED)
        meta = find_file(root, ["esc50.csv"], "esc50", EXPECTED, ("meta", ".", "ESC-50-master/meta"))
        rows = read_csv(meta, COLUMNS)
        where = [f"{meta.name} row {n}" for n in range(2, len(rows) + 2)]  # row 1 is the header
        folders = media_folders(root, audio_dir, ["audio", "ESC-50-master/audio"])
        audios = MediaIndex(folders, AUDIO_SUFFIXES)
        refs = [audios.find(r["filename"]) for r in rows]
        files, identity = [meta], {}
    for row, at in zip(rows, where, strict=True):
        if str(row["fold"]).strip() not in {str(f) for f in FOLDS} or not str(row["target"]).strip().isdigit():
            raise BenchError(f"{at}: fold {row['fold']!r} / target {row['target']!r} are not a fold 1-5 and a class index")
    names = class_list(rows, where)
    items = []
    for row, ref, at in zip(rows, refs, where, strict=True):
        in_fold = int(row["fold"]) == int(fold)
        if split == "all" or in_fold == (split == "test"):
            label = class_name(str(row["category"]))
            items.append(Item(Path(str(row["filename"])).stem, split, {"audio": ref} if ref is not None else {},
                              (text_template.replace("{label}", label),), label=label,
                              fields={"fold": int(row["fold"]), "group": str(row["src_file"]), "where": at,
                                      "esc10": str(row.get("esc10", "")).lower() == "true"}))
    if not hf_dataset and not any("audio" in i.media for i in items):
        raise no_media_error("esc50", split, folders, len(items), EXPECTED)
    fold_key = {} if split == "all" else {"fold": str(fold)}  # `all` is the same for every fold: encoded once
    out = build_item_set("esc50", split if split == "all" else f"{split}_fold{fold}", items, ("audio",), files,
                         {**identity, **fold_key, "text_template": text_template})
    return dataclasses.replace(out, label_names=names)
