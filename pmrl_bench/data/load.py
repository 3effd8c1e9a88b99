"""Turn a task's split into features: adapter -> (frozen encoders -> feature cache) -> SplitFeatures."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from pmrl_bench.data.features import SplitFeatures
from pmrl_bench.data.items import ids_sha256
from pmrl_bench.data.validation import carve_validation, subset_items
from pmrl_bench.errors import BenchError
from pmrl_bench.registry import get_adapter
from pmrl_bench.task import TaskSpec


def split_name(spec: TaskSpec, config: dict[str, Any], role: str) -> str:
    """The adapter split that plays `role` ('train', 'test', or 'val' when the task has its own validation split)."""
    own_val = config.get("validation", spec.validation.model_dump()).get("split")
    return own_val if role == "val" and own_val else spec.splits[role]


def read_split(spec: TaskSpec, config: dict[str, Any], role: str) -> Any:
    """The adapter's output for the split that plays `role`; a malformed annotation file is a BenchError."""
    return read_named_split(spec, config, split_name(spec, config, role))


def read_named_split(spec: TaskSpec, config: dict[str, Any], split: str) -> Any:
    """The adapter's output for its split `split`; a malformed annotation file is a BenchError."""
    try:
        return get_adapter(spec.adapter)(split=split, **config["data"])
    except (KeyError, TypeError, AttributeError, IndexError, ValueError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise BenchError(
            f"{spec.name}: adapter {spec.adapter!r} rejected split {split!r} (its `data` settings / --set data.* "
            f"or the annotation files; {type(exc).__name__}: {first}); see tasks/adapters/{spec.adapter}.py"
        ) from None


def load_split(spec: TaskSpec, config: dict[str, Any], role: str, device: str = "cpu") -> SplitFeatures:
    """Features of the split that plays `role` ('train', 'val' or 'test') in this task.

    Without its own validation split (`validation.split`), 'val' is a grouped fixed-seed fraction carved
    out of the adapter's train split and 'train' is the rest (`pmrl_bench.data.validation`).
    """
    val = config.get("validation", spec.validation.model_dump())
    if role not in ("train", "val") or val.get("split"):
        feats = load_adapter_split(spec, config, role, device)
    else:
        rest, carved = carve_validation(load_adapter_split(spec, config, "train", device), val["fraction"], val["seed"])
        feats = rest if role == "train" else carved
    return _with_prompts(spec, config, feats, device) if role in ("val", "test") else feats


def _with_prompts(spec: TaskSpec, config: dict[str, Any], feats: SplitFeatures, device: str) -> SplitFeatures:
    """`feats` plus the class prompts of the task's zero-shot protocols (evaluated splits only)."""
    if not any(c.mode == "zero_shot" for c in spec.classification):
        return feats
    from pmrl_bench.data.prompts import attach_class_prompts

    return attach_class_prompts(spec, config, feats, device)


def load_adapter_split(spec: TaskSpec, config: dict[str, Any], role: str, device: str = "cpu") -> SplitFeatures:
    """Features of the adapter's split for `role`, as the adapter gives it (no carve).

    An adapter returns either `SplitFeatures` directly (synthetic data, pre-extracted features) or a
    list of items with media references, which are encoded (and cached) here.
    """
    out = read_split(spec, config, role)
    if isinstance(out, SplitFeatures):
        return _non_empty(spec, role, out)
    if spec.folds:
        return _non_empty(spec, role, fold_rows(spec, config, out, role, device))
    from pmrl_bench.data.encoding import encode_split  # media path: imports transformers lazily

    # a validation split is evaluated like test, so it takes test's caption policy
    feats = encode_split(spec, config, out, role="test" if role == "val" else role, device=device)
    if out.questions:
        from pmrl_bench.data.questions import attach_questions

        feats = attach_questions(spec, config, feats, out.questions, [i.item_id for i in out.items], device)
    return _non_empty(spec, role, feats)


def fold_rows(spec: TaskSpec, config: dict[str, Any], items: Any, role: str, device: str = "cpu") -> SplitFeatures:
    """A fold's split as the rows of its items in the adapter's `all` split, which is encoded (and cached) once for
    every fold: a fold only chooses rows, so the media are not encoded again per fold."""
    from pmrl_bench.data.encoding import encode_split

    everything = read_named_split(spec, config, "all")
    feats = encode_split(spec, config, everything, role="train" if role == "train" else "test", device=device)
    index = {item: k for k, item in enumerate(feats.item_ids)}
    rows = sorted(index[i.item_id] for i in items.items if i.item_id in index)
    part = subset_items(feats, torch.tensor(rows, dtype=torch.long), items.split)
    dropped = [i.item_id for i in items.items if i.item_id not in index]
    info = {**feats.info, "split": items.split, "n_items": part.n_items, "n_missing": len(dropped),
            "missing_first_ids": dropped[:10], "kept_ids_sha256": ids_sha256(part.item_ids), "encoded_as": everything.split}
    return dataclasses.replace(part, info=info)


def _non_empty(spec: TaskSpec, role: str, feats: SplitFeatures) -> SplitFeatures:
    """Refuse an empty split before any training (a setting such as data.sizes made it so)."""
    if feats.n_items < 1:
        raise BenchError(f"{spec.name}: the {role} split ({feats.split}) has no items; check its data settings")
    return feats
