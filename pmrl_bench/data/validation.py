"""The validation split: a subset of items of a split, and the grouped fixed-seed carve of train into train + val."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from pmrl_bench.data.features import ModalityFeatures, SplitFeatures, kept_questions
from pmrl_bench.errors import BenchError


def subset_items(feats: SplitFeatures, items: Tensor, split: str) -> SplitFeatures:
    """The items `items` (sorted item indices) of `feats` with their rows and questions, re-indexed from 0,
    named `split`."""
    remap = torch.full((feats.n_items,), -1, dtype=torch.long)
    remap[items] = torch.arange(len(items))
    modalities = {}
    for name, mod in feats.modalities.items():
        rows = torch.nonzero(remap[mod.item_index] >= 0).view(-1)
        modalities[name] = ModalityFeatures(
            values=mod.values[rows],
            item_index=remap[mod.item_index[rows]],
            row_ids=tuple(mod.row_ids[r] for r in rows.tolist()),
        )
    kept = items.tolist()
    questions = kept_questions(feats.questions, remap)
    return SplitFeatures(
        split=split,
        item_ids=tuple(feats.item_ids[i] for i in kept),
        modalities=modalities,
        labels=None if feats.labels is None else feats.labels[items],
        label_names=feats.label_names,
        groups=tuple(feats.groups[i] for i in kept) if feats.groups else (),
        questions=questions,
        info={**feats.info, "n_items": len(kept), **({"n_questions": len(questions.ids)} if questions else {})},
    )


def carve_mask(groups: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the items put in validation: round(fraction * n_groups) whole groups drawn with `seed`."""
    keys, inverse = np.unique(groups, return_inverse=True)
    n_val = round(fraction * len(keys))
    if n_val < 1 or n_val >= len(keys):
        raise BenchError(
            f"a validation fraction of {fraction} of {len(keys)} train groups gives {n_val} validation groups; "
            "the validation split would be empty (or take all of train): set validation.fraction in (0, 0.5] "
            "so that it holds at least one group, or give the task a validation split"
        )
    chosen = np.zeros(len(keys), dtype=bool)
    chosen[np.random.default_rng(seed).permutation(len(keys))[:n_val]] = True
    return chosen[inverse.reshape(-1)]


def carve_validation(train: SplitFeatures, fraction: float, seed: int) -> tuple[SplitFeatures, SplitFeatures]:
    """(train minus validation, validation): whole groups (the split's item groups, else items) carved with `seed`."""
    groups = np.asarray(train.groups if train.groups else train.item_ids)
    mask = torch.from_numpy(carve_mask(groups, fraction, seed))
    rule = {"carved_from": train.split, "fraction": fraction, "seed": seed,
            "grouped_by": "item group" if train.groups else "item"}
    rest = subset_items(train, torch.nonzero(~mask).view(-1), train.split)
    val = subset_items(train, torch.nonzero(mask).view(-1), "val")
    return (
        SplitFeatures(**{**rest.__dict__, "info": {**rest.info, "validation_carved": rule}}),
        SplitFeatures(**{**val.__dict__, "info": {**val.info, "validation_carved": rule}}),
    )
