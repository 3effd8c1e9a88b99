"""Shared machinery of the pairwise symmetric-InfoNCE objectives (`clip`, `imagebind`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from pmrl_bench.errors import BenchError
from pmrl_bench.train.losses import (
    LogitScale,
    anchor_and_tuple,
    cosine_mean,
    present_modalities,
    symmetric_info_nce,
    unit,
)
from pmrl_bench.train.method import Method


class PairwiseInfoNCE(Method):
    """Mean over a set of modality pairs of the symmetric InfoNCE, one learnable logit scale shared by all pairs.

    Subclasses choose the pairs (`pairs`) and describe them in `pair_protocol`. Similarity: mean cosine
    between the query and each candidate modality.
    """

    scores = ("cosine_mean",)

    def __init__(self, modalities: Sequence[str], **params: Any) -> None:
        super().__init__(modalities, **params)
        p = self.params
        if not 0 <= p["label_smoothing"] < 1:
            raise BenchError(f"{self.name} label_smoothing must be in [0, 1), got {p['label_smoothing']!r}")
        self.logit_scale = LogitScale(p["temperature"], p["max_logit_scale"], p["learn_temperature"])

    def pairs(self, names: list[str]) -> list[tuple[int, int]]:
        """Index pairs into `names` (the modalities of the batch) that are contrasted."""
        raise NotImplementedError

    def pair_protocol(self) -> dict[str, Any]:
        """`pairs` and `anchor` entries of the protocol."""
        raise NotImplementedError

    def loss(self, z: dict[str, Tensor]) -> Tensor:
        """Mean over the chosen modality pairs of the symmetric InfoNCE."""
        names = present_modalities(z, self.modalities, self.name)
        stacked = torch.stack([unit(z[m]) for m in names])  # [k, B, D]
        pairs = self.pairs(names)
        per_pair = symmetric_info_nce(stacked, pairs, self.logit_scale(), self.params["label_smoothing"])
        self.last_terms = {f"L_{names[a]}-{names[b]}": v for (a, b), v in zip(pairs, per_pair.detach(), strict=True)}
        return per_pair.mean()

    def score_with(self, score: str, query: dict[str, Tensor], candidates: dict[str, Tensor]) -> Tensor:
        """Mean cosine between the query and each candidate modality."""
        anchor, parts, transposed = anchor_and_tuple(query, candidates)
        out = cosine_mean(anchor, parts)
        return out.T if transposed else out

    def protocol(self) -> dict[str, Any]:
        """Score, negatives pool, pairs and temperature scheme of this run."""
        return {
            "score": "cosine_mean",
            "negatives": "batch",
            **self.pair_protocol(),
            "sign": None,
            "label_smoothing": self.params["label_smoothing"],
            "temperature": "learnable" if self.params["learn_temperature"] else "fixed",
        }

    @torch.no_grad()
    def diagnostics(self) -> dict[str, float]:
        """Current temperature 1/logit scale."""
        return {"temperature": self.logit_scale.temperature()}
