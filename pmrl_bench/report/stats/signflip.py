"""Paired sign-flip randomisation test on per-query differences (one-seed fallback, docs/statistics.md 3.4)."""

from __future__ import annotations

import numpy as np

from pmrl_bench.report.stats.streams import N_RESAMPLES, STATS_SEED, chunks, default_chunk, flip_stream


def sign_flip_p(
    d: np.ndarray,
    scope: str,
    a: str,
    b: str,
    n_resamples: int = N_RESAMPLES,
    exact: bool = True,
    chunk_rows: int | None = None,
    seed: int = STATS_SEED,
) -> float:
    """Two-sided p of T = sum_q D[q] under random sign flips; exact enumeration when 2^n' <= R."""
    d = np.asarray(d, dtype=np.float64)
    stat = abs(float(d.sum()))
    tol = 1e-9 * max(1.0, stat)
    nonzero = d[d != 0]
    if exact and 2 ** len(nonzero) <= n_resamples:
        bits = (np.arange(2 ** len(nonzero))[:, None] >> np.arange(len(nonzero))[None, :]) & 1
        sums = (1 - 2 * bits) @ nonzero
        return float(np.mean(np.abs(sums) >= stat - tol))
    gen = flip_stream(scope, a, b, seed)
    hits = 0
    for rows in chunks(n_resamples, chunk_rows or default_chunk(len(d))):
        flips = gen.integers(0, 2, size=(rows.stop - rows.start, len(d)), dtype=np.int64)
        hits += int(np.sum(np.abs((1 - 2 * flips) @ d) >= stat - tol))
    return (1 + hits) / (n_resamples + 1)
