"""Pairwise CLIP-style symmetric InfoNCE across modalities (Radford et al., arXiv 2103.00020)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from pmrl_bench.errors import BenchError, unknown_name
from pmrl_bench.losses import (
    LogitScale,
    anchor_and_tuple,
    cosine_mean,
    present_modalities,
    symmetric_info_nce,
    unit,
)
from pmrl_bench.method import Method
from pmrl_bench.registry import register_method

PAIRS = ("all", "anchored")


@register_method("clip")
class CLIP(Method):
    """CLIP: symmetric InfoNCE with a learnable logit scale, mean over all modality pairs (or text-anchored pairs).

    Logit scale exp(theta), theta initialised at log(1/temperature) and capped at max_logit_scale
    (CLIP: 1/0.07 and 100), shared by every pair; batch negatives. `pairs=anchored` keeps only the
    pairs that contain the text modality. Similarity: mean cosine between the query and each
    candidate modality.
    """

    defaults = {
        "temperature": 0.07,
        "learn_temperature": True,
        "max_logit_scale": 100.0,
        "pairs": "all",
        "label_smoothing": 0.0,
    }

    def __init__(self, modalities: Sequence[str], **params: Any) -> None:
        super().__init__(modalities, **params)
        p = self.params
        if p["pairs"] not in PAIRS:
            raise unknown_name("clip pairs", p["pairs"], PAIRS)
        if p["pairs"] == "anchored" and "text" not in self.modalities:
            raise BenchError(f"clip pairs=anchored needs a 'text' modality; task has {self.modalities}")
        if not 0 <= p["label_smoothing"] < 1:
            raise BenchError(f"clip label_smoothing must be in [0, 1), got {p['label_smoothing']!r}")
        self.logit_scale = LogitScale(p["temperature"], p["max_logit_scale"], p["learn_temperature"])

    def loss(self, z: dict[str, Tensor]) -> Tensor:
        """Mean over the chosen modality pairs of the symmetric InfoNCE."""
        names = present_modalities(z, self.modalities, self.name)
        if self.params["pairs"] == "anchored":
            if "text" not in names:
                raise BenchError(f"clip pairs=anchored: no 'text' modality in the batch ({names})")
            t = names.index("text")
            pairs = [(t, j) for j in range(len(names)) if j != t]
        else:
            pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
        stacked = torch.stack([unit(z[m]) for m in names])  # [k, B, D]
        return symmetric_info_nce(stacked, pairs, self.logit_scale(), self.params["label_smoothing"]).mean()

    def similarity(self, query: dict[str, Tensor], candidates: dict[str, Tensor]) -> Tensor:
        """Mean cosine between the query and each candidate modality."""
        anchor, parts, transposed = anchor_and_tuple(query, candidates)
        out = cosine_mean(anchor, parts)
        return out.T if transposed else out

    def protocol(self) -> dict[str, Any]:
        """Score, negatives pool, pairs and temperature scheme of this run."""
        return {
            "score": "cosine_mean",
            "negatives": "batch",
            "pairs": self.params["pairs"],
            "anchor": "text" if self.params["pairs"] == "anchored" else None,
            "sign": None,
            "label_smoothing": self.params["label_smoothing"],
            "temperature": "learnable" if self.params["learn_temperature"] else "fixed",
        }

    @torch.no_grad()
    def diagnostics(self) -> dict[str, float]:
        """Current temperature 1/logit scale."""
        return {"temperature": self.logit_scale.temperature()}
