"""Tux Paint stamps (Debian `tuxpaint-stamps-default`, GPL-2): image + English description + spoken description.

Layout inside the package [measured on 2022.06.04-1]: `tuxpaint/stamps/<category>/<sub...>/<name>.png`
(some stamps are SVG only, some have a `<name>_mirror.png` variant), `<name>.txt` (line 1 = English
description, then `<lang>.utf8=<translation>` lines), `<name>_desc_<lang>.ogg` (recorded speech; French
for 928 stamps, ro/ru/bg/ca/es for ~900 each) and, for some, a sound effect `<name>.ogg|.wav`.

An item is a stamp with a PNG, an English description and a French recording (767 in 2022.06.04-1);
its id is the stamp's path under `stamps/` without suffix. Modalities: text (the description), vision
(the PNG), audio (the recording in `speech_lang`). Label: the top-level category (16; `people` has a
single stamp, hence one group, which stays in train: 15 categories occur in the test split).

The split is published in tasks/tuxpaint_split.json so that numbers compare across machines; it was
made by `build_split` (run this file as a script to rebuild it): stamps that share a description
(after whitespace/case folding), an image file or a recording in any of the large languages (by content
sha256) form one group; groups are split per category with a fixed seed, every category with >= 2 groups in both splits;
the test split keeps one stamp per group (the first id), so every test query has exactly one match.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pmrl_bench.data.items import Item, ItemSet, file_sha256, ids_sha256
from pmrl_bench.data.prepare import TUXPAINT_PACKAGE, find_tuxpaint_stamps, tuxpaint_version
from pmrl_bench.errors import BenchError
from pmrl_bench.paths import TASKS_DIR, read_task_json
from pmrl_bench.registry import register_adapter

REFERENCE_LANG = "fr"  # the recording every item must have (defines the item list)
LEAK_LANGS = ("fr", "ro", "ru", "bg", "ca", "es")  # recordings that must not cross the split
CATEGORY_NAMES = {"naturalforces": "natural forces"}  # folder -> readable class name (others unchanged)
SPLIT_RULE = (
    "groups = connected stamps sharing a normalised description, an image sha256 or a recording sha256 "
    f"({', '.join(LEAK_LANGS)}); per category, shuffle groups with numpy default_rng(seed) and put "
    "clamp(round(test_fraction * n_groups), 1, n_groups - 1) in test; test keeps the first id of each group"
)

VAL_RULE = (
    "validation carved from the published train ids: their leak groups shuffled with numpy default_rng(seed), "
    "round(fraction * n_groups) groups (at least 1) to validation, which keeps the first id of each group; the "
    "other ids of those groups leave training (excluded_from_val); train_fit = train minus those groups"
)
VAL_SPLITS = ("train_fit", "val")


@dataclass(frozen=True)
class Stamp:
    """One stamp on disk: its id, image, English description, category folder and folder."""

    stamp_id: str
    image: Path
    caption: str
    category: str
    folder: Path

    def speech(self, lang: str) -> Path:
        """Path of the recorded description in `lang` (may not exist)."""
        return self.folder / f"{self.image.stem}_desc_{lang}.ogg"


def read_caption(txt: Path) -> str:
    """The English description: the first line of the stamp's .txt file, stripped."""
    lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
    return lines[0].strip() if lines else ""


def scan_stamps(stamps: Path) -> list[Stamp]:
    """Every PNG stamp with a non-empty English description and a French recording, sorted by id."""
    found = []
    for png in sorted(stamps.rglob("*.png")):
        txt = png.with_suffix(".txt")
        if not txt.is_file() or not (png.parent / f"{png.stem}_desc_{REFERENCE_LANG}.ogg").is_file():
            continue
        caption = read_caption(txt)
        if caption:
            rel = png.relative_to(stamps).with_suffix("")
            found.append(Stamp(rel.as_posix(), png, caption, rel.parts[0], png.parent))
    return found


def _normalise(caption: str) -> str:
    return " ".join(caption.split()).casefold()


def leak_groups(stamps: Sequence[Stamp]) -> np.ndarray:
    """Group index per stamp: connected components of the graph stamp -- shared description/image/recording."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    keys: dict[tuple[str, str], int] = {}
    rows, cols = [], []
    for i, s in enumerate(stamps):
        owned = [("text", _normalise(s.caption)), ("image", file_sha256(s.image))]
        owned += [("speech", file_sha256(p)) for p in map(s.speech, LEAK_LANGS) if p.is_file()]
        for key in owned:
            rows.append(i)
            cols.append(len(stamps) + keys.setdefault(key, len(keys)))
    n = len(stamps) + len(keys)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels[: len(stamps)]


def build_split(stamps_dir: Path, seed: int = 0, test_fraction: float = 0.25) -> dict:
    """The published split of the stamps under `stamps_dir` (see the module docstring for the rule)."""
    stamps = scan_stamps(stamps_dir)
    groups = leak_groups(stamps)
    first: dict[int, int] = {}
    for i, g in enumerate(groups):
        first.setdefault(int(g), i)  # stamps are sorted by id: the group's first id and its category
    rng = np.random.default_rng(seed)
    test_groups: set[int] = set()
    for category in sorted({stamps[i].category for i in first.values()}):
        members = [g for g, i in first.items() if stamps[i].category == category]
        k = min(max(round(test_fraction * len(members)), 1), len(members) - 1)
        test_groups.update(int(g) for g in rng.permutation(members)[:k])
    train = [s.stamp_id for s, g in zip(stamps, groups, strict=True) if int(g) not in test_groups]
    test = sorted(stamps[first[g]].stamp_id for g in test_groups)
    excluded = sorted({s.stamp_id for s, g in zip(stamps, groups, strict=True) if int(g) in test_groups} - set(test))
    return {
        "dataset": "tuxpaint",
        "package": TUXPAINT_PACKAGE,
        "package_version": tuxpaint_version(stamps_dir),
        "rule": SPLIT_RULE,
        "seed": seed,
        "test_fraction": test_fraction,
        "n_stamps": len(stamps),
        "n_groups": int(len(first)),
        "sha256": {"train": ids_sha256(train), "test": ids_sha256(test)},
        "splits": {"train": train, "test": test},
        "excluded_from_test": excluded,
    }


def build_val(stamps_dir: Path, published: dict, split_sha256: str, seed: int = 0, fraction: float = 0.1) -> dict:
    """The published validation carve of the published train ids (see VAL_RULE), grouped like test."""
    stamps = {s.stamp_id: s for s in scan_stamps(stamps_dir)}
    ordered = list(stamps.values())
    group_of = dict(zip(stamps, leak_groups(ordered).tolist(), strict=True))
    train = published["splits"]["train"]
    groups = sorted({group_of[i] for i in train})
    k = max(1, round(fraction * len(groups)))
    chosen = {int(g) for g in np.random.default_rng(seed).permutation(groups)[:k]}
    in_val = [i for i in train if group_of[i] in chosen]
    first = {}
    for i in in_val:
        first.setdefault(group_of[i], i)
    val = sorted(first.values())
    return {
        "dataset": "tuxpaint",
        "rule": VAL_RULE,
        "seed": seed,
        "fraction": fraction,
        "split_file_sha256": split_sha256,
        "n_groups": len(groups),
        "sha256": {"train_fit": ids_sha256([i for i in train if group_of[i] not in chosen]), "val": ids_sha256(val)},
        "splits": {"train_fit": [i for i in train if group_of[i] not in chosen], "val": val},
        "excluded_from_val": sorted(set(in_val) - set(val)),
    }


def load_split_file(split_file: str) -> tuple[dict, Path]:
    """The published split (a path, or a file name under tasks/) and its path."""
    return read_task_json(split_file, "Tux Paint split file")


def category_name(folder: str) -> str:
    """Readable class name of a category folder ('naturalforces' -> 'natural forces')."""
    return CATEGORY_NAMES.get(folder, folder)


@register_adapter("tuxpaint")
def tuxpaint(
    split: str,
    data_dir: str | None = None,
    speech_lang: str = REFERENCE_LANG,
    split_file: str = "tuxpaint_split.json",
    val_file: str = "tuxpaint_val.json",
    cache_dir: str | None = None,
    caption_policy: object = None,
) -> ItemSet:
    """Tux Paint stamps: PNG + English description + recorded description (published grouped split).

    `cache_dir` and `caption_policy` are run settings read by the feature cache and the encoding step.
    """
    published, split_path = load_split_file(split_file)
    if split in VAL_SPLITS:  # the published validation carve, made from this split file
        carve, val_path = load_split_file(str(split_path.parent / val_file))
        if carve.get("split_file_sha256") != file_sha256(split_path):
            raise BenchError(f"Tux Paint validation file {val_path} was not carved from {split_path}; rebuild it "
                             "with `python tasks/adapters/tuxpaint.py --val-only`")
        published = {**published, "splits": {**published["splits"], **carve["splits"]}}
        split_path = val_path
    if split not in published["splits"]:
        raise BenchError(f"Tux Paint split file {split_path.name} has splits {sorted(published['splits'])}, not {split!r}")
    stamps = find_tuxpaint_stamps(data_dir)
    items, missing_image, missing_speech = [], [], []
    for stamp_id in published["splits"][split]:
        image = stamps / f"{stamp_id}.png"
        txt = image.with_suffix(".txt")
        if not txt.is_file():
            raise BenchError(
                f"stamp {stamp_id!r} of the published split has no description in {stamps} "
                f"({TUXPAINT_PACKAGE} {tuxpaint_version(stamps)}; the split was made on {published['package_version']})"
            )
        speech = image.parent / f"{image.stem}_desc_{speech_lang}.ogg"
        media = {}
        if image.is_file():
            media["vision"] = image
        else:
            missing_image.append(stamp_id)
        if speech.is_file():
            media["audio"] = speech
        else:
            missing_speech.append(stamp_id)
        items.append(Item(item_id=stamp_id, split=split, media=media, texts=(read_caption(txt),),
                          label=category_name(stamp_id.split("/")[0]), fields={"speech_lang": speech_lang}))
    captions = "\n".join(f"{i.item_id}\t{i.texts[0]}" for i in items)
    identity = {
        "package": f"{TUXPAINT_PACKAGE}=={tuxpaint_version(stamps)}",
        "split_file": f"{split_path.name}:{file_sha256(split_path)}",
        "captions_sha256": hashlib.sha256(captions.encode("utf-8")).hexdigest(),
        "speech_lang": speech_lang,
    }
    missing = {m: tuple(ids) for m, ids in (("vision", missing_image), ("audio", missing_speech)) if ids}
    classes = tuple(sorted({category_name(i.split("/")[0]) for ids in published["splits"].values() for i in ids}))
    return ItemSet(dataset="tuxpaint", split=split, items=tuple(items), missing=missing,
                   annotation_identity=identity, label_names=classes)


def main(argv: Sequence[str] | None = None) -> int:
    """Rebuild the published split file from a stamps folder (maintainers only: it changes every score)."""
    parser = argparse.ArgumentParser(description="rebuild tasks/tuxpaint_split.json from the Tux Paint stamps")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-fraction", type=float, default=0.25)
    parser.add_argument("--out", default=str(TASKS_DIR / "tuxpaint_split.json"))
    parser.add_argument("--val-out", default=None, help="default: tuxpaint_val.json beside --out")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--val-only", action="store_true", help="keep --out, rebuild only the validation file")
    args = parser.parse_args(argv)
    if not args.val_only:
        _write_split(args)
    published, split_path = load_split_file(args.out)
    carve = build_val(find_tuxpaint_stamps(args.data_dir), published, file_sha256(split_path), args.seed,
                      args.val_fraction)
    val_out = Path(args.val_out) if args.val_out else split_path.with_name("tuxpaint_val.json")
    val_out.write_text(json.dumps(carve, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{val_out}: {len(carve['splits']['train_fit'])} train_fit, {len(carve['splits']['val'])} val, "
          f"{len(carve['excluded_from_val'])} excluded from val")
    return 0


def _write_split(args: argparse.Namespace) -> None:
    split = build_split(find_tuxpaint_stamps(args.data_dir), args.seed, args.test_fraction)
    Path(args.out).write_text(json.dumps(split, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(split['splits']['train'])} train, {len(split['splits']['test'])} test, "
          f"{split['n_groups']} groups, {len(split['excluded_from_test'])} excluded from test")


if __name__ == "__main__":
    raise SystemExit(main())
