"""Metrics from per-query outcomes: retrieval ranks and classification correctness."""

from __future__ import annotations

import numpy as np

RECALL_KS = (1, 5, 10)


def retrieval_metrics(ranks: np.ndarray) -> dict[str, float]:
    """R@1/5/10 and MRR in percent, median and mean rank, from 1-based ranks of the first relevant candidate."""
    r = np.asarray(ranks, dtype=np.float64)
    if r.size == 0:
        raise ValueError("no queries")
    out = {f"R@{k}": float(100.0 * np.mean(r <= k)) for k in RECALL_KS}
    out["MdR"] = float(np.median(r))
    out["MnR"] = float(np.mean(r))
    out["MRR"] = float(100.0 * np.mean(1.0 / r))
    return out


def accuracy(correct: np.ndarray) -> dict[str, float]:
    """Accuracy in percent from per-sample 0/1 correctness."""
    c = np.asarray(correct, dtype=np.float64)
    if c.size == 0:
        raise ValueError("no samples")
    return {"acc": float(100.0 * c.mean())}
