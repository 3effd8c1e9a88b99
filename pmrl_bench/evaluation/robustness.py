"""Robustness at evaluation: one trained model ranked again with one modality noised at graded levels, or missing."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from pmrl_bench.data.features import SplitFeatures
from pmrl_bench.evaluation.retrieval import (
    EvalOutput,
    check_direction,
    direction_embeddings,
    direction_output,
    rank_direction,
)
from pmrl_bench.task import RetrievalDirection, missing_candidates
from pmrl_bench.train.heads import ProjectionHeads
from pmrl_bench.train.method import Method


def noise_prefix(direction: str, level: float) -> str:
    """Metric prefix of a direction at one noise level, e.g. 't2va.noise0.5'."""
    return f"{direction}.noise{level:g}"


def missing_prefix(direction: str) -> str:
    """Metric prefix of a direction scored without the missing modality."""
    return f"{direction}.missing"


def add_noise(values: Tensor, level: float, seed: int) -> Tensor:
    """values + level * (each feature's std over the rows) * N(0, 1), the noise drawn from `seed`."""
    noise = torch.randn(values.shape, generator=torch.Generator().manual_seed(seed), dtype=values.dtype)
    return values + level * values.std(0, keepdim=True) * noise.to(values.device)


def noised_split(split: SplitFeatures, modality: str, level: float, seed: int) -> SplitFeatures:
    """A copy of `split` whose `modality` features carry Gaussian noise at `level`."""
    feats = split.modalities[modality]
    noisy = dataclasses.replace(feats, values=add_noise(feats.values, level, seed))
    return dataclasses.replace(split, modalities={**split.modalities, modality: noisy})


def noise_seed(seed: int, index: int) -> int:
    """The noise seed of level `index` in a run with `seed`: equal for every method, so outcomes pair."""
    return 1_000_003 * (seed + 1) + index


@torch.no_grad()
def evaluate_robustness(
    method: Method,
    heads: ProjectionHeads,
    split: SplitFeatures,
    directions: Sequence[RetrievalDirection],
    settings: dict[str, Any],
    metric_names: Sequence[str],
    device: str,
    seed: int,
    signs: dict[str, dict[str, float]],
    query_group: str | None = None,
) -> EvalOutput:
    """Per-level metrics and per-query ranks (primary score) of every direction that uses the corrupted modality.

    `signs[direction]` are the calibrated candidate signs; noise level 0 reproduces the clean ranks.
    """
    modality, levels = settings["modality"], list(settings["levels"])
    out = EvalOutput()
    table: dict[str, dict[str, Any]] = {}
    for d in directions:
        if modality not in (*d.query, *d.candidates):
            continue
        qmod, queried = check_direction(split, d)
        entry: dict[str, Any] = {"noise": {}}
        for i, level in enumerate(levels):
            noisy = noised_split(queried, modality, level, noise_seed(seed, i))
            query, cands = direction_embeddings(heads, noisy, qmod, d.candidates, device, signs[d.name])
            ranks = rank_direction(method, method.primary_score, query, cands, qmod, noisy)
            prefix = noise_prefix(d.name, level)
            out.update(direction_output(prefix, ranks, noisy, qmod, d.candidates, metric_names, query_group))
            entry["noise"][f"{level:g}"] = prefix
        kept = missing_candidates(d, modality)
        if settings["missing"] and kept:
            query, cands = direction_embeddings(heads, queried, qmod, kept, device, signs[d.name])
            ranks = rank_direction(method, method.primary_score, query, cands, qmod, queried)
            prefix = missing_prefix(d.name)
            out.update(direction_output(prefix, ranks, queried, qmod, kept, metric_names, query_group))
            entry["missing"] = prefix
        table[d.name] = entry
    out.protocol["robustness"] = {**settings, "noise": "x each feature's std over the test rows", "directions": table}
    return out
