"""Helpers the dataset adapters share: the data root, annotation lookup, media lookup by name, clear errors.

Data root: an adapter's `data_dir` argument (`--set data_dir=/path`), else `$PMRL_BENCH_DATA/<folder>`
with one folder per dataset (msrvtt, didemo, activitynet, vatex, audiocaps, clothov2, ...).
Missing data raise one `BenchError` paragraph: what was looked for, where, and how to provide it.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pmrl_bench.data.items import Item, ItemSet, annotation_identity
from pmrl_bench.errors import BenchError, unknown_name

DATA_ENV = "PMRL_BENCH_DATA"
# data keys every adapter accepts and ignores (used by the cache and encode_split, not by the adapter)
PASS_THROUGH = frozenset({"cache_dir", "caption_policy", "features_root"})
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".3gp", ".mpg", ".mpeg", ".flv", ".wmv")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".opus", ".webm")


def check_options(adapter: str, options: Mapping[str, Any]) -> None:
    """Refuse adapter arguments nobody reads (a typo in a task file or --set key)."""
    for key in options:
        if key not in PASS_THROUGH:
            raise unknown_name(f"argument for adapter {adapter!r}", key, PASS_THROUGH)


def missing_data_error(dataset: str, what: str, looked: Sequence[Path], expected: str) -> BenchError:
    """The one-paragraph error for absent data: what, where, and how to provide it."""
    places = ", ".join(str(p) for p in looked[:6]) + (" ..." if len(looked) > 6 else "")
    return BenchError(
        f"{dataset}: {what} not found (looked in: {places}). Expected layout of the dataset folder: {expected}. "
        f"Provide it by setting {DATA_ENV}=/path/to/data so that /path/to/data/{dataset}/ holds these files, or "
        f"pass --set data_dir=/path/to/{dataset}; to read a Hugging Face dataset instead (a hub id or a local "
        f"`datasets` directory), use a task file with `adapter: hf` and a column mapping (see the docstring of "
        f"tasks/adapters/hf.py)."
    )


def data_root(dataset: str, data_dir: str | None, expected: str) -> Path:
    """The dataset folder: `data_dir`, else $PMRL_BENCH_DATA/<dataset>."""
    if data_dir:
        root = Path(data_dir).expanduser()
    elif os.environ.get(DATA_ENV):
        root = Path(os.environ[DATA_ENV]).expanduser() / dataset
    else:
        raise BenchError(
            f"{dataset}: no data location given. Set {DATA_ENV}=/path/to/data (one folder per dataset, here "
            f"/path/to/data/{dataset}/) or pass --set data_dir=/path/to/{dataset}. Expected layout: {expected}."
        )
    if not root.is_dir():
        raise missing_data_error(dataset, "dataset folder", [root], expected)
    return root


def find_file(root: Path, names: Sequence[str], dataset: str, expected: str,
              subdirs: Sequence[str] = (".", "annotations", "annotation", "anns", "data")) -> Path:
    """The first existing `<root>/<subdir>/<name>`; a missing-data error listing every place otherwise."""
    looked = []
    for sub in subdirs:
        for name in names:
            path = (root / sub / name) if sub != "." else root / name
            if path.is_file():
                return path
            looked.append(path)
    raise missing_data_error(dataset, " or ".join(names), looked, expected)


def read_json(path: Path) -> Any:
    """Parsed JSON, or a BenchError naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BenchError(f"{path}: cannot read JSON ({exc})") from None


def read_csv(path: Path, required: Iterable[str], delimiter: str = ",") -> list[dict[str, str]]:
    """Rows of a CSV file with a header (UTF-8, latin-1 fallback); refuses files lacking `required` columns."""
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            with open(path, newline="", encoding=encoding) as fh:
                reader = csv.DictReader(fh, delimiter=delimiter)
                rows = list(reader)
                header = reader.fieldnames or []
            break
        except UnicodeDecodeError:
            continue
    absent = [c for c in required if c not in header]
    if absent:
        raise BenchError(f"{path}: missing column(s) {', '.join(absent)} (found: {', '.join(header)})")
    return rows


def read_id_list(path: Path) -> list[str]:
    """Ids from a .txt (one per line), .json (a list) or .npy (an array of strings, no pickles) file."""
    if path.suffix == ".json":
        return [str(x) for x in read_json(path)]
    if path.suffix == ".npy":
        import numpy as np

        try:
            return [str(x) for x in np.load(path, allow_pickle=False).tolist()]
        except ValueError as exc:
            raise BenchError(f"{path}: cannot read the id array without pickle ({exc})") from None
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class MediaIndex:
    """Media files of some folders, found by file name, by stem, or by name without its last extension."""

    def __init__(self, folders: Iterable[Path], suffixes: Sequence[str]) -> None:
        self.folders = [f for f in folders if f.is_dir()]
        self.suffixes = tuple(s.lower() for s in suffixes)
        self._by_key: dict[str, Path] = {}
        for folder in reversed(self.folders):  # earlier folders win
            for path in sorted(folder.iterdir()):
                if path.is_file() and path.suffix.lower() in self.suffixes:
                    self._by_key[path.stem] = path
                    self._by_key[path.name] = path

    def find(self, *names: str) -> Path | None:
        """The first file whose name or stem equals one of `names` (extensions of names are tried both ways)."""
        for name in names:
            for key in (name, Path(name).stem):
                if key in self._by_key:
                    return self._by_key[key]
        return None

    def __len__(self) -> int:
        return len({str(p) for p in self._by_key.values()})


def media_folders(root: Path, option: str | Sequence[str] | None, defaults: Sequence[str]) -> list[Path]:
    """Folders to search for media: the adapter option (relative to the data root or absolute), else defaults."""
    names = [option] if isinstance(option, str) else list(option or defaults)
    return [Path(n).expanduser() if Path(n).expanduser().is_absolute() else root / n for n in names]


def build_item_set(dataset: str, split: str, items: Sequence[Item], media_modalities: Sequence[str],
                   annotation_files: Sequence[Path], extra_identity: Mapping[str, str] | None = None) -> ItemSet:
    """An ItemSet whose `missing` lists, per media modality, the items that have no file for it."""
    missing = {m: tuple(i.item_id for i in items if m not in i.media) for m in media_modalities}
    ident = {**annotation_identity(annotation_files), **(extra_identity or {})}
    return ItemSet(dataset=dataset, split=split, items=tuple(items),
                   missing={m: ids for m, ids in missing.items() if ids}, annotation_identity=ident)


def no_media_error(dataset: str, split: str, folders: Sequence[Path], n_items: int, expected: str) -> BenchError:
    """The error when not one media file of a split was found (a wrong folder, not attrition)."""
    return missing_data_error(dataset, f"media for the {n_items} items of split {split!r}", list(folders), expected)
