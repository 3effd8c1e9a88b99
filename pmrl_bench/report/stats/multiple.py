"""Multiple-testing adjustment within one column's family of comparisons (docs/statistics.md 5)."""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

CORRECTIONS = {"holm": "Holm", "bh": "Benjamini-Hochberg"}
CONTROLS = {"holm": "family-wise error rate", "bh": "false discovery rate"}


def holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values, in input order; families along axis 0 (trailing axes: separate families)."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, axis=0, kind="stable")
    factor = (m - np.arange(m)).reshape(-1, *(1,) * (p.ndim - 1))
    stepped = np.minimum(1.0, factor * np.take_along_axis(p, order, axis=0))
    adjusted = np.empty_like(p)
    np.put_along_axis(adjusted, order, np.maximum.accumulate(stepped, axis=0), axis=0)
    return adjusted


def adjust(p: np.ndarray, method: str = "holm") -> np.ndarray:
    """Adjusted p-values along axis 0: 'holm' (family-wise error) or 'bh' (Benjamini-Hochberg, false discovery rate)."""
    p = np.asarray(p, dtype=np.float64)
    if len(p) == 0:
        return p
    if method == "holm":
        return holm(p)
    if method == "bh":
        return sps.false_discovery_control(p, axis=0, method="bh")
    raise ValueError(f"unknown correction {method!r}")
