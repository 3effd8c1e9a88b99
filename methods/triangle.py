"""TRIANGLE (Cicchetti et al., arXiv 2509.24734): contrastive loss over the area of the triangle of three unit vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from pmrl_bench.errors import BenchError
from pmrl_bench.toolkit import (
    LogitScale,
    Method,
    anchor_and_tuple,
    present_modalities,
    query_chunks,
    register_method,
    symmetric_cross_entropy,
    unit,
)


def triangle_area(anchor: Tensor, parts: Sequence[Tensor]) -> Tensor:
    """`[Nq, Nc]` scores (|t-v|^2 |t-a|^2 - ((t-v).(t-a))^2) / 2 of (anchor_i, parts[0]_j, parts[1]_j), as the official
    `area.py` (twice the squared area: no square root), from the Gram entries of the three vectors."""
    v, a = parts
    vv, aa, va = (v * v).sum(-1), (a * a).sum(-1), (v * a).sum(-1)

    def chunk(t: Tensor) -> Tensor:
        tt, tv, ta = (t * t).sum(-1, keepdim=True), t @ v.T, t @ a.T
        left, right, cross = tt + vv - 2 * tv, tt + aa - 2 * ta, tt - tv - ta + va
        return (left * right - cross * cross).clamp_min(0) / 2

    return query_chunks(chunk, anchor, v.shape[0])


@register_method("triangle")
class Triangle(Method):
    """TRIANGLE: 1/2 [CE(-A s) + CE(-A^T s)], A[i, j] = area score of (anchor_i, other two modalities of j), s = 1/T.

    As GRAM's code base: text anchor, label smoothing 0.1, learnable logit scale s initialised at 1/0.07 and
    capped at 100. Similarity: minus the area score of (query, candidate modalities). Three modalities only.
    """

    defaults = {"anchor": "text", "temperature": 0.07, "learn_temperature": True, "max_logit_scale": 100.0,
                "label_smoothing": 0.1}
    modality_counts = (3, 3)

    def __init__(self, modalities: Sequence[str], **params: Any) -> None:
        super().__init__(modalities, **params)
        if self.params["anchor"] not in self.modalities:
            raise BenchError(f"triangle anchor {self.params['anchor']!r} is not a modality of this task {self.modalities}")
        if not 0 <= self.params["label_smoothing"] < 1:
            raise BenchError(f"triangle label_smoothing must be in [0, 1), got {self.params['label_smoothing']!r}")
        p = self.params
        self.logit_scale = LogitScale(p["temperature"], p["max_logit_scale"], p["learn_temperature"])

    def loss(self, z: dict[str, Tensor]) -> Tensor:
        """Symmetric cross-entropy over -area * scale; the positive of row i is column i."""
        names = present_modalities(z, self.modalities, self.name)
        anchor = self.params["anchor"]
        area = triangle_area(unit(z[anchor]), [unit(z[m]) for m in names if m != anchor])
        return symmetric_cross_entropy(-area * self.logit_scale().to(area.dtype), self.params["label_smoothing"])

    def similarity(self, query: dict[str, Tensor], candidates: dict[str, Tensor]) -> Tensor:
        """Minus the area score of (query_i, candidate_j's two modalities)."""
        anchor, parts, transposed = anchor_and_tuple(query, candidates)
        out = -triangle_area(anchor, parts)
        return out.T if transposed else out

    def protocol(self) -> dict[str, Any]:
        """Score, negatives pool, anchor and temperature scheme of this run."""
        return {"score": "neg_triangle_area", "negatives": "batch", "pairs": "anchored_tuple",
                "anchor": self.params["anchor"], "sign": None, "label_smoothing": self.params["label_smoothing"],
                "temperature": "learnable" if self.params["learn_temperature"] else "fixed"}

    @torch.no_grad()
    def diagnostics(self) -> dict[str, float]:
        """Current temperature 1/logit scale."""
        return {"temperature": self.logit_scale.temperature()}
