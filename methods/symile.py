"""Symile (Saporta et al., arXiv 2411.01053): InfoNCE over the multilinear inner product with O(n^2) negatives."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from pmrl_bench.toolkit import (
    LogitScale,
    Method,
    anchor_and_tuple,
    present_modalities,
    register_method,
    unit,
)


def anchor_loss(x: Tensor, y: Tensor, z: Tensor, scale: Tensor) -> Tensor:
    """CE of row i over MIP(x_i, y_j, z_l) * scale for every (j, l) of the batch (n^2 columns), positive (i, i)."""
    n = x.shape[0]
    pairs = (y.unsqueeze(1) * z.unsqueeze(0)).reshape(n * n, -1)  # row j*n + l = y_j * z_l
    target = torch.arange(n, device=x.device) * (n + 1)
    return F.cross_entropy(scale * (x @ pairs.T), target)


@register_method("symile")
class Symile(Method):
    """Symile: mean over the three anchors of the CE over MIP * s, every non-anchor combination a negative (O(n^2)).

    MIP(x, y, z) = sum_d x_d y_d z_d of unit vectors; learnable logit scale s initialised at 1/0.07, capped at
    100, as the official `n_squared` negative sampling. Similarity: MIP(query, candidate modalities).
    Three modalities only.
    """

    defaults = {"temperature": 0.07, "learn_temperature": True, "max_logit_scale": 100.0}
    modality_counts = (3, 3)

    def __init__(self, modalities: list[str], **params: Any) -> None:
        super().__init__(modalities, **params)
        p = self.params
        self.logit_scale = LogitScale(p["temperature"], p["max_logit_scale"], p["learn_temperature"])

    def loss(self, z: dict[str, Tensor]) -> Tensor:
        """(L_a + L_b + L_c) / 3, each modality in turn the anchor against all n^2 pairs of the other two."""
        a, b, c = (unit(z[m]) for m in present_modalities(z, self.modalities, self.name))
        scale = self.logit_scale().to(a.dtype)
        return (anchor_loss(a, b, c, scale) + anchor_loss(b, a, c, scale) + anchor_loss(c, a, b, scale)) / 3

    def similarity(self, query: dict[str, Tensor], candidates: dict[str, Tensor]) -> Tensor:
        """MIP(query_i, candidate_j's two modalities)."""
        anchor, parts, transposed = anchor_and_tuple(query, candidates)
        out = anchor @ (parts[0] * parts[1]).T
        return out.T if transposed else out

    def protocol(self) -> dict[str, Any]:
        """Score, negatives pool and temperature scheme of this run."""
        return {"score": "multilinear_inner_product", "negatives": "batch_n_squared", "pairs": "every_anchor",
                "anchor": None, "sign": None, "label_smoothing": 0.0,
                "temperature": "learnable" if self.params["learn_temperature"] else "fixed"}

    @torch.no_grad()
    def diagnostics(self) -> dict[str, float]:
        """Current temperature 1/logit scale."""
        return {"temperature": self.logit_scale.temperature()}

