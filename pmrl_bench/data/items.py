"""The one internal item model that every dataset adapter produces (docs/datasets.md decision 1).

An adapter turns a public annotation format into an `ItemSet`: the items of one split, each with
its media references per modality and its captions in annotation order, plus the media that could
not be found (never dropped silently) and the identity of the annotation files it read.

A media reference is a filesystem path (`str` or `Path`) or a `BlobRef` (bytes held elsewhere, e.g.
a row of a Hugging Face dataset read with `decode=False`); `pmrl_bench.data.media` decodes all of them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmrl_bench.errors import BenchError


@dataclass(frozen=True)
class BlobRef:
    """Media bytes that live outside the filesystem: `read()` returns them; `name` names them (for logs and keys)."""

    name: str
    read: Callable[[], bytes] = field(compare=False, repr=False)
    size: int | None = None


MediaRef = str | Path | BlobRef


@dataclass(frozen=True)
class Item:
    """One retrievable/classifiable unit: media per modality, captions in annotation order, task fields."""

    item_id: str
    split: str
    media: dict[str, MediaRef]
    texts: tuple[str, ...] = ()
    label: Any = None
    fields: dict[str, Any] = field(default_factory=dict)

    def texts_of(self, modality: str) -> tuple[str, ...]:
        """Texts of a text-typed modality: the captions for `text`, else `fields[modality]` (a string or a list)."""
        if modality == "text":
            return self.texts
        value = self.fields.get(modality, ())
        return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class Question:
    """One question about one item's media: its text, the answer, and for multiple choice the candidates.

    Open-ended: `answer` is the answer text. Multiple choice: `candidates` are the choices and `answer` the
    index of the right one. `where` names the annotation file and row (for error messages).
    """

    qid: str
    item_id: str
    text: str
    answer: str | int
    candidates: tuple[str, ...] = ()
    qtype: str = ""
    where: str = ""


@dataclass(frozen=True)
class ItemSet:
    """The items of one split of one dataset, as read from its annotation files.

    `missing` maps a modality to the ids of items whose media for that modality could not be found;
    such items stay in `items` (without that modality in `media`) so that a task that does not use the
    modality keeps them; `usable(modalities)` drops and reports them for a task that does.
    `annotation_identity` holds what identifies the annotations (file name -> sha256, or a Hub dataset
    id, revision and config); it is part of every feature-cache key. `label_names` (optional) fixes the
    class order for classification (item labels are names from it); otherwise the sorted label names.
    `questions` (QA tasks) ask about the items' media.
    """

    dataset: str
    split: str
    items: tuple[Item, ...]
    missing: dict[str, tuple[str, ...]] = field(default_factory=dict)
    annotation_identity: dict[str, str] = field(default_factory=dict)
    label_names: tuple[str, ...] = ()
    questions: tuple[Question, ...] = ()

    def usable(self, modalities: Iterable[str], text: Collection[str] = ("text",)) -> tuple[tuple[Item, ...], tuple[str, ...]]:
        """(items that have media for every given modality not in `text`, ids of the others in item order)."""
        needed = [m for m in modalities if m not in text]
        kept, dropped = [], []
        for item in self.items:
            (kept if all(m in item.media for m in needed) else dropped).append(item)
        return tuple(kept), tuple(i.item_id for i in dropped)


def check_labels(items: Iterable[Item], names: Sequence[str]) -> None:
    """Refuse an item whose label is not in the class list, naming its file and row (`fields["where"]`) or its id."""
    known = set(names)
    for item in items:
        if item.label is not None and str(item.label) not in known:
            where = item.fields.get("where") or f"item {item.item_id}"
            shown = ", ".join(list(names)[:5]) + (", ..." if len(names) > 5 else "")
            raise BenchError(f"{where}: label {str(item.label)!r} is not in the class list ({len(names)} classes: "
                             f"{shown}); fix the row or the class list")


def ids_sha256(ids: Sequence[str]) -> str:
    """sha256 hex of an ordered id list (JSON array, UTF-8): the identity of a kept item list."""
    return hashlib.sha256(json.dumps(list(ids), ensure_ascii=False).encode("utf-8")).hexdigest()


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 hex of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def annotation_identity(paths: Iterable[str | Path]) -> dict[str, str]:
    """{file name: sha256} of the annotation files an adapter read."""
    return {Path(p).name: file_sha256(p) for p in paths}


def media_name(ref: MediaRef) -> str:
    """A short printable name of a media reference."""
    return ref.name if isinstance(ref, BlobRef) else str(ref)
