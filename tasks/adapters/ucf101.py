"""UCF101 adapter (docs/datasets.md 1.8): 13,320 clips of 101 actions, three official train/test splits.

Files: `ucfTrainTestlist/classInd.txt` (`<1-based index> <ClassName>`), `trainlist0{N}.txt`
(`<ClassName>/<file>.avi <index>`) and `testlist0{N}.txt` (`<ClassName>/<file>.avi`); clips as
`UCF-101/<ClassName>/<file>.avi`. Split `split_no` (1 by default) gives the splits `train` and `test`.
Class names are the CamelCase names split into lower-case words ("ApplyEyeMakeup" -> "apply eye makeup");
a clip's text is `text_template` filled with its class name; its group (actor/scene, `g<GG>` of the file
name, per class) keeps the validation carve of train from splitting a group. A row whose class is not in
classInd.txt, or whose index disagrees with it, is bad input naming the list file and the row.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from pmrl_bench.data.items import Item, ItemSet, check_labels
from pmrl_bench.data.sources import (
    VIDEO_SUFFIXES,
    MediaIndex,
    build_item_set,
    check_options,
    data_root,
    find_file,
    media_folders,
    no_media_error,
)
from pmrl_bench.errors import BenchError, unknown_name
from pmrl_bench.registry import register_adapter

EXPECTED = ("ucfTrainTestlist/classInd.txt, trainlist0{1,2,3}.txt and testlist0{1,2,3}.txt (from "
            "UCF101TrainTestSplits-RecognitionTask.zip) and the clips as UCF-101/<ClassName>/v_<ClassName>_gGG_cCC.avi "
            "(UCF101.rar / UCF101.zip, e.g. from crcv.ucf.edu or the Hugging Face repo MichiganNLP/ucf-101)")
LIST_DIRS = ("ucfTrainTestlist", ".", "splits", "annotations")
GROUP = re.compile(r"_g(\d+)_c\d+$")


def readable(class_id: str) -> str:
    """CamelCase class name to lower-case words: 'ApplyEyeMakeup' -> 'apply eye makeup', 'YoYo' -> 'yo yo'."""
    return " ".join(re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", class_id)).lower() or class_id


def read_class_index(path: Path) -> dict[str, int]:
    """classInd.txt: class id -> 1-based index; a malformed line is bad input naming the row."""
    out: dict[str, int] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise BenchError(f"{path.name} row {n}: expected '<index> <ClassName>', got {line.strip()!r}")
        out[parts[1]] = int(parts[0])
    return out


@register_adapter("ucf101")
def ucf101(split: str, split_no: int = 1, data_dir: str | None = None, video_dir: str | list[str] | None = None,
           text_template: str = "a video of a person doing {label}", **options: Any) -> ItemSet:
    """UCF101 clips of the official split `split_no` (1-3): `train` or `test`, labelled by readable class name."""
    check_options("ucf101", options)
    if split not in ("train", "test"):
        raise unknown_name("ucf101 split", split, ("train", "test"))
    if int(split_no) not in (1, 2, 3):
        raise BenchError(f"ucf101: split_no {split_no!r} is not one of 1, 2, 3")
    root = data_root("ucf101", data_dir, EXPECTED)
    class_file = find_file(root, ["classInd.txt"], "ucf101", EXPECTED, LIST_DIRS)
    classes = read_class_index(class_file)
    list_file = find_file(root, [f"{split}list0{int(split_no)}.txt"], "ucf101", EXPECTED, LIST_DIRS)
    folders = media_folders(root, video_dir, ["UCF-101", "UCF101", "videos"])
    flat = MediaIndex(folders, VIDEO_SUFFIXES)
    names = tuple(readable(c) for c in sorted(classes, key=classes.__getitem__))
    items = []
    for n, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        rel, *index = line.split()
        class_id = rel.replace("\\", "/").split("/")[0] if "/" in rel.replace("\\", "/") else ""
        where = f"{list_file.name} row {n}"
        if index and class_id in classes and index[0] != str(classes[class_id]):
            raise BenchError(f"{where}: class index {index[0]} disagrees with {class_file.name} "
                             f"({class_id} is {classes[class_id]})")
        stem = Path(rel).stem
        media = next((folder / rel for folder in folders if (folder / rel).is_file()), None) or flat.find(Path(rel).name)
        group = GROUP.search(stem)
        items.append(Item(stem, split, {"vision": media} if media is not None else {},
                          (text_template.replace("{label}", readable(class_id)),),
                          label=readable(class_id) if class_id in classes else class_id or rel,
                          fields={"group": f"{class_id}_g{group.group(1)}" if group else stem, "where": where}))
    check_labels(items, names)
    if not any(i.media for i in items):
        raise no_media_error("ucf101", split, folders, len(items), EXPECTED)
    out = build_item_set("ucf101", f"{split}{int(split_no)}", items, ("vision",), [class_file, list_file],
                         {"text_template": text_template})
    return dataclasses.replace(out, label_names=names)
