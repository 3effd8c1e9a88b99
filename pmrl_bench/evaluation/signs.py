"""Sign-safe scores: per-modality signs estimated from the train split's positives, and a train-side sanity check.

Singular values and Gram volumes do not change when one modality's vectors flip sign, so after training a
sign-invariant objective (pmrl, gram) leaves each modality's sign relative to the query arbitrary; a cosine
score then ranks the true match last. For candidate modality m and query modality q the sign is
s_m = sign(mean over train positives of cos(q, m)) (+1 at exactly 0), applied to m's embeddings at evaluation.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pmrl_bench.data.features import ModalityFeatures

WARN_PERCENTILE = 0.5  # a positive beaten by more than half of the negatives on average is ranked below them


def first_rows(feats: ModalityFeatures, n_items: int) -> Tensor:
    """Index of each item's first row (items without a row are an error)."""
    counts = torch.bincount(feats.item_index, minlength=n_items)
    if bool((counts == 0).any()):
        raise ValueError(f"{int((counts == 0).sum())} items have no row in this modality")
    order = torch.argsort(feats.item_index, stable=True)
    return order[torch.cumsum(counts, 0) - counts]


def item_means(unit_rows: Tensor, item_index: Tensor, n_items: int) -> Tensor:
    """`[n_items, D]` mean of each item's unit rows."""
    sums = torch.zeros(n_items, unit_rows.shape[1], dtype=unit_rows.dtype).index_add_(0, item_index, unit_rows)
    counts = torch.bincount(item_index, minlength=n_items).clamp_min(1).to(unit_rows.dtype)
    return sums / counts.unsqueeze(1)


def pair_cosines(query: Tensor, query_item: Tensor, candidate: Tensor, candidate_item: Tensor) -> tuple[float, float]:
    """(mean positive, mean negative) cosine between query rows and candidate rows of the same / other items.

    Rows are unit vectors; a candidate item with several rows contributes the mean of its rows. The
    negative mean over all (query row, other item) pairs comes from sums, without the `[Nq, N]` matrix.
    """
    n_items = int(max(int(query_item.max()), int(candidate_item.max())) + 1)
    cbar = item_means(candidate.double(), candidate_item, n_items)
    q = query.double()
    pos = (q * cbar[query_item]).sum(1)
    n_neg = len(q) * (n_items - 1)
    neg_total = q.sum(0) @ cbar.sum(0) - pos.sum()
    return float(pos.mean()), float(neg_total / max(n_neg, 1))


def sign_of(mean_positive: float) -> float:
    """+1 or -1: the sign of the mean positive cosine (+1 at 0)."""
    return -1.0 if mean_positive < 0 else 1.0


def positive_percentile(scores: Tensor) -> float:
    """Mean over rows of the fraction of negatives (off-diagonal) scoring >= the positive (the diagonal).

    0 ranks every positive first, 1 last, about 0.5 at chance; above WARN_PERCENTILE the score ranks
    positives below negatives.
    """
    n = scores.shape[0]
    beaten = (scores >= scores.diagonal().unsqueeze(1)).sum(1) - 1
    return float(beaten.double().mean() / max(n - 1, 1))
