"""ImageBind-style anchor-modality InfoNCE (Girdhar et al., arXiv 2305.05665); anchor=text is LanguageBind."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from pmrl_bench.errors import BenchError
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


@register_method("imagebind")
class ImageBind(Method):
    """ImageBind: symmetric InfoNCE of every modality against one anchor modality only, mean over those pairs.

    `anchor=vision` is ImageBind proper, `anchor=text` the LanguageBind variant; non-anchor
    modalities are never contrasted with each other. One learnable logit scale as in `clip`
    (the released ImageBind fixes per-modality temperatures instead, methods.md section 3).
    Similarity: mean cosine between the query and each candidate modality.
    """

    defaults = {
        "anchor": "vision",
        "temperature": 0.07,
        "learn_temperature": True,
        "max_logit_scale": 100.0,
        "label_smoothing": 0.0,
    }

    def __init__(self, modalities: Sequence[str], **params: Any) -> None:
        super().__init__(modalities, **params)
        p = self.params
        if p["anchor"] not in self.modalities:
            raise BenchError(
                f"imagebind anchor {p['anchor']!r} is not a modality of this task {self.modalities}; "
                "set e.g. --set anchor=text"
            )
        if not 0 <= p["label_smoothing"] < 1:
            raise BenchError(f"imagebind label_smoothing must be in [0, 1), got {p['label_smoothing']!r}")
        self.logit_scale = LogitScale(p["temperature"], p["max_logit_scale"], p["learn_temperature"])

    def loss(self, z: dict[str, Tensor]) -> Tensor:
        """Mean over (anchor, m) pairs of the symmetric InfoNCE."""
        names = present_modalities(z, self.modalities, self.name)
        if self.params["anchor"] not in names:
            raise BenchError(f"imagebind: anchor {self.params['anchor']!r} missing from the batch ({names})")
        a = names.index(self.params["anchor"])
        pairs = [(a, j) for j in range(len(names)) if j != a]
        stacked = torch.stack([unit(z[m]) for m in names])  # [k, B, D]
        return symmetric_info_nce(stacked, pairs, self.logit_scale(), self.params["label_smoothing"]).mean()

    def similarity(self, query: dict[str, Tensor], candidates: dict[str, Tensor]) -> Tensor:
        """Mean cosine between the query and each candidate modality."""
        anchor, parts, transposed = anchor_and_tuple(query, candidates)
        out = cosine_mean(anchor, parts)
        return out.T if transposed else out

    def protocol(self) -> dict[str, Any]:
        """Score, negatives pool, anchor and temperature scheme of this run."""
        return {
            "score": "cosine_mean",
            "negatives": "batch",
            "pairs": "anchored",
            "anchor": self.params["anchor"],
            "sign": None,
            "label_smoothing": self.params["label_smoothing"],
            "temperature": "learnable" if self.params["learn_temperature"] else "fixed",
        }

    @torch.no_grad()
    def diagnostics(self) -> dict[str, float]:
        """Current temperature 1/logit scale."""
        return {"temperature": self.logit_scale.temperature()}
