"""Multiple-testing adjustment within one column's family of comparisons (docs/statistics.md 5)."""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

CORRECTIONS = {"holm": "Holm", "bh": "Benjamini-Hochberg"}
CONTROLS = {"holm": "family-wise error rate", "bh": "false discovery rate"}


def holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values, in input order."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted


def adjust(p: np.ndarray, method: str = "holm") -> np.ndarray:
    """Adjusted p-values: 'holm' (family-wise error) or 'bh' (Benjamini-Hochberg, false discovery rate)."""
    p = np.asarray(p, dtype=np.float64)
    if len(p) == 0:
        return p
    if method == "holm":
        return holm(p)
    if method == "bh":
        return sps.false_discovery_control(p, method="bh")
    raise ValueError(f"unknown correction {method!r}")
