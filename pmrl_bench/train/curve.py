"""The training curve: per-epoch loss terms, head gradient norm and cross-modal cosines on a fixed train subset."""

from __future__ import annotations

from itertools import combinations

import torch
from torch import Tensor

from pmrl_bench.data.features import SplitFeatures
from pmrl_bench.train.heads import ProjectionHeads


def probe_rows(split: SplitFeatures, modalities: list[str], n_items: int) -> dict[str, Tensor]:
    """Feature rows of the first `n_items` items (each item's first row per modality): a fixed, RNG-free subset."""
    k = min(n_items, split.n_items)
    out = {}
    for m in modalities:
        feats = split.modalities[m]
        first = torch.full((split.n_items,), len(feats.item_index), dtype=torch.long)
        first.scatter_reduce_(0, feats.item_index, torch.arange(len(feats.item_index)), reduce="amin")
        out[m] = feats.values[first[:k]]
    return out


@torch.no_grad()
def pair_cosines(heads: ProjectionHeads, rows: dict[str, Tensor]) -> dict[str, float]:
    """Mean positive (same item) and mean negative (other items) cosine of every modality pair of `rows`."""
    emb = {m: torch.nn.functional.normalize(heads.heads[m](x).double(), dim=-1) for m, x in rows.items()}
    out = {}
    for a, b in combinations(list(emb), 2):
        sims = emb[a] @ emb[b].T
        n = sims.shape[0]
        pos = sims.diagonal().sum()
        out[f"cos_pos/{a}-{b}"] = float(pos / n)
        out[f"cos_neg/{a}-{b}"] = float((sims.sum() - pos) / max(n * (n - 1), 1))
    return out


def grad_norm(heads: ProjectionHeads) -> Tensor:
    """L2 norm of the heads' gradient (all parameters together), as a 0-d tensor."""
    grads = [p.grad.detach().reshape(-1) for p in heads.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.cat(grads)) if grads else torch.zeros(())
