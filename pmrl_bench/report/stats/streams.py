"""The fixed random streams of docs/statistics.md 3.1 and turning drawn indices into counts."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import numpy as np

STATS_SEED = 12345
N_RESAMPLES = 10_000
CHUNK_BUDGET = 2_500_000  # resample rows x units per chunk


def crc(text: str) -> int:
    """zlib.crc32 of the UTF-8 text."""
    return zlib.crc32(text.encode("utf-8"))


def _generator(*spawn_key: int, seed: int = STATS_SEED) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=spawn_key)))


def query_stream(scope: str, seed: int = STATS_SEED) -> np.random.Generator:
    """Generator of the query resamples of a scope ('<task>/<prefix>')."""
    return _generator(0, crc(scope), seed=seed)


def seed_stream(scope: str, entity: str, seed: int = STATS_SEED) -> np.random.Generator:
    """Generator of the seed resamples of an entity ('<method>@<config_hash>') in a scope."""
    return _generator(1, crc(scope), crc(entity), seed=seed)


def flip_stream(scope: str, a: str, b: str, seed: int = STATS_SEED) -> np.random.Generator:
    """Generator of the sign flips of a pair of entities (order-free) in a scope."""
    first, second = sorted((a, b))
    return _generator(2, crc(scope), crc(first), crc(second), seed=seed)


def poi_stream(task: str, entity: str, seed: int = STATS_SEED) -> np.random.Generator:
    """Generator of the probability-of-improvement seed resamples of an entity on a task."""
    return _generator(3, crc(task), crc(entity), seed=seed)


def friedman_stream(seed: int = STATS_SEED) -> np.random.Generator:
    """Generator of the Monte Carlo permutations of the Friedman test (when exact enumeration is too large)."""
    return _generator(4, seed=seed)


def counts(idx: np.ndarray, n_cols: int) -> np.ndarray:
    """Index rows [n, m] -> count rows [n, n_cols] (how often each column was drawn), one bincount."""
    n_rows = idx.shape[0]
    flat = (idx + n_cols * np.arange(n_rows, dtype=np.int64)[:, None]).ravel()
    return np.bincount(flat, minlength=n_rows * n_cols).reshape(n_rows, n_cols)


def seed_counts(gen: np.random.Generator, n_resamples: int, n_seeds: int) -> np.ndarray:
    """All seed resamples of an entity at once as counts [R, S]."""
    return counts(gen.integers(0, n_seeds, size=(n_resamples, n_seeds), dtype=np.int64), n_seeds)


def default_chunk(n_units: int) -> int:
    """Resample rows per chunk: max(1, 2,500,000 // N)."""
    return max(1, CHUNK_BUDGET // max(1, n_units))


def chunks(n_resamples: int, chunk_rows: int) -> Iterator[slice]:
    """Consecutive row slices covering 0..R."""
    for start in range(0, n_resamples, chunk_rows):
        yield slice(start, min(n_resamples, start + chunk_rows))


def query_count_chunks(
    gen: np.random.Generator, n_resamples: int, n_units: int, chunk_rows: int
) -> Iterator[tuple[slice, np.ndarray]]:
    """(rows, query counts [n, N]) per chunk, drawn in order from the scope's query stream."""
    for rows in chunks(n_resamples, chunk_rows):
        n = rows.stop - rows.start
        yield rows, counts(gen.integers(0, n_units, size=(n, n_units), dtype=np.int64), n_units)
