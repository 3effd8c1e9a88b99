"""Linear probe R^2: how much of a known latent a modality's features still carry (weak-anchor calibration)."""

from __future__ import annotations

import torch
from torch import Tensor


def probe_r2(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, ridge: float = 1e-3) -> float:
    """Test R^2 (1 - SSE / SST over all outputs) of a ridge regression from x to y fitted on train, in float64.

    Inputs are standardised with the train statistics; the intercept is the train mean of y.
    """
    mean, std = train_x.double().mean(0), train_x.double().std(0).clamp_min(1e-12)
    xtr, xte = (train_x.double() - mean) / std, (test_x.double() - mean) / std
    ymean = train_y.double().mean(0)
    gram = xtr.T @ xtr + ridge * len(xtr) * torch.eye(xtr.shape[1], dtype=torch.float64)
    weights = torch.linalg.solve(gram, xtr.T @ (train_y.double() - ymean))
    pred = xte @ weights + ymean
    y = test_y.double()
    return float(1 - ((y - pred) ** 2).sum() / ((y - y.mean(0)) ** 2).sum())
