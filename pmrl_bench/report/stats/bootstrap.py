"""Two-level (query x seed) bootstrap engine with the fixed streams of docs/statistics.md 3.1-3.3."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pmrl_bench.report.stats.outcomes import group_sums
from pmrl_bench.report.stats.streams import (
    N_RESAMPLES,
    STATS_SEED,
    default_chunk,
    query_count_chunks,
    query_stream,
    seed_counts,
    seed_stream,
)

PRODUCT_BUDGET = 2_500_000  # resample rows x columns of the per-chunk product (bounds memory per entity count)
MEDIAN_BAND = 3.0  # MdR indicator columns cover the empirical CDF within 0.5 -/+ 3/sqrt(N)


@dataclass(frozen=True)
class BootstrapInput:
    """One entity of a scope: per-unit values of mean-type metrics and, for MdR, its query ranks."""

    key: str  # '<method>@<config_hash>'
    values: np.ndarray  # [S, N, P] per-unit values (P may be 0)
    ranks: np.ndarray | None = None  # [S, Nq] 1-based ranks, for the MdR replicates


@dataclass(frozen=True)
class BootstrapDraws:
    """Replicates of one entity's values: mean-type metrics [R, P], MdR [R] (or None)."""

    mean: np.ndarray
    median: np.ndarray | None


@dataclass(frozen=True)
class _MedianColumns:
    """Indicator columns [r <= v] near the median of every (entity, seed) rank series, series side by side.

    Each series keeps only its own window (no padding to the widest one), so memory grows with the sum
    of the window widths rather than with series x widest window.
    """

    values: np.ndarray  # [W] window values of all series, concatenated
    width: np.ndarray  # [M] window width per series
    offset: np.ndarray  # [M] first column of each series
    at_min: np.ndarray  # [M] window starts at the series' smallest rank
    sorted_ranks: np.ndarray  # [M, Nq]
    order: np.ndarray  # [M, Nq] argsort of each series
    columns: np.ndarray  # [N, W] unit sums of the indicators


def _median_columns(series: np.ndarray, groups: np.ndarray | None, n_units: int) -> _MedianColumns:
    """Window of distinct values around each series' median and the unit-level indicator columns."""
    m, nq = series.shape
    band = MEDIAN_BAND / np.sqrt(n_units)
    windows = []
    for ranks in series:  # one window per (entity, seed) series
        vals = np.unique(ranks)
        cdf = np.searchsorted(np.sort(ranks), vals, side="right") / nq
        lo = max(0, int(np.searchsorted(cdf, 0.5 - band, side="left")) - 1)
        hi = min(len(vals) - 1, int(np.searchsorted(cdf, 0.5 + band, side="right")))
        windows.append((vals[lo : hi + 1], lo == 0))
    width = np.array([len(w) for w, _ in windows])
    offset = np.concatenate([[0], np.cumsum(width)[:-1]])
    values = np.concatenate([w for w, _ in windows]).astype(np.float64)
    owner = np.repeat(np.arange(m), width)
    ind = (series.T[:, owner] <= values[None, :]).astype(np.float64)  # [Nq, W]
    if groups is not None:
        ind = group_sums(ind, groups, n_units)
    order = np.argsort(series, axis=1, kind="stable")
    return _MedianColumns(values, width, offset, np.array([a for _, a in windows]),
                          np.take_along_axis(series, order, 1), order, ind)


def _order_statistic(cdf: np.ndarray, k: np.ndarray, med: _MedianColumns) -> tuple[np.ndarray, np.ndarray]:
    """Smallest window value v with F*(v) >= k, per (row, series); and where that is decided."""
    idx = np.add.reduceat((cdf < k[:, None]).astype(np.int64), med.offset, axis=1)  # [n, M]
    ok = (idx < med.width[None]) & ((idx > 0) | med.at_min[None])
    return med.values[med.offset[None] + np.minimum(idx, med.width[None] - 1)], ok


def _exact_order_statistic(weights: np.ndarray, rows: np.ndarray, series: np.ndarray, k: np.ndarray,
                           med: _MedianColumns) -> np.ndarray:
    """Order statistic k from sorted cumulative query weights, for the (row, series) pairs given."""
    w = weights[rows[:, None], med.order[series]]
    pos = np.argmax(np.cumsum(w, axis=1) >= k[rows][:, None], axis=1)
    return med.sorted_ranks[series, pos].astype(np.float64)


def _weighted_medians(cdf: np.ndarray, query_weights: np.ndarray, med: _MedianColumns) -> np.ndarray:
    """Run medians under count weights, [n, M]: equals np.median(np.repeat(r, w)) per row and series."""
    total = query_weights.sum(axis=1)
    out = []
    for k in ((total + 1) // 2, total // 2 + 1):
        value, ok = _order_statistic(cdf, k, med)
        rows, series = np.nonzero(~ok)
        if len(rows):
            value[rows, series] = _exact_order_statistic(query_weights, rows, series, k, med)
        out.append(value)
    return (out[0] + out[1]) / 2


def two_level_bootstrap(
    scope: str,
    entities: Sequence[BootstrapInput],
    n_resamples: int = N_RESAMPLES,
    groups: np.ndarray | None = None,
    chunk_rows: int | None = None,
    seed: int = STATS_SEED,
) -> dict[str, BootstrapDraws]:
    """Replicates of every entity's values: queries resampled jointly for all entities, seeds per entity."""
    entities = sorted(entities, key=lambda e: e.key)
    n_units = entities[0].values.shape[1]
    blocks, col_ranges, start = [], [], 0
    for e in entities:
        s, _, p = e.values.shape
        blocks.append(np.moveaxis(e.values, 0, 1).reshape(n_units, s * p))
        col_ranges.append(slice(start, start + s * p))
        start += s * p
    with_median = [e for e in entities if e.ranks is not None]
    med = None
    if with_median:
        series = np.concatenate([e.ranks for e in with_median]).astype(np.int64)
        med = _median_columns(series, groups, n_units)
        blocks.append(med.columns)
        med_cols = slice(start, start + med.columns.shape[1])
    x = np.concatenate(blocks, axis=1) if blocks else np.zeros((n_units, 0))
    seeds = {e.key: seed_counts(seed_stream(scope, e.key, seed), n_resamples, e.values.shape[0]) for e in entities}
    mean = {e.key: np.empty((n_resamples, e.values.shape[2])) for e in entities}
    median = {e.key: np.empty(n_resamples) for e in with_median}
    chunk_rows = chunk_rows or max(1, min(default_chunk(n_units), PRODUCT_BUDGET // max(1, x.shape[1])))
    for rows, w in query_count_chunks(query_stream(scope, seed), n_resamples, n_units, chunk_rows):
        wf = w.astype(np.float64)
        t = wf @ x
        for e, cols in zip(entities, col_ranges, strict=True):
            s, _, p = e.values.shape
            u = seeds[e.key][rows]
            mean[e.key][rows] = np.einsum("rs,rsp->rp", u, t[:, cols].reshape(len(t), s, p)) / (s * n_units)
        if med is not None:
            qw = w if groups is None else w[:, groups]
            meds = _weighted_medians(t[:, med_cols], qw, med)
            at = 0
            for e in with_median:
                s = e.ranks.shape[0]
                median[e.key][rows] = (seeds[e.key][rows] * meds[:, at : at + s]).sum(axis=1) / s
                at += s
    return {e.key: BootstrapDraws(mean[e.key], median.get(e.key)) for e in entities}


def percentile_interval(draws: np.ndarray, level: float = 0.95) -> np.ndarray:
    """Percentile interval over the resample axis 0 (numpy's default linear quantiles): [2, ...]."""
    return np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)


def bootstrap_p(delta: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Two-sided bootstrap p of docs/statistics.md 3.2 from replicates of a difference (axis 0 = resamples)."""
    r = delta.shape[0]
    tol = 1e-12 * max(1.0, scale)
    le = (delta <= tol).sum(axis=0)
    ge = (delta >= -tol).sum(axis=0)
    return np.minimum(1.0, 2 * (1 + np.minimum(le, ge)) / (r + 1))
