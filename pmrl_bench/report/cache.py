"""On-disk cache of per-scope statistics (issue 12.2): keyed by a hash of every input, written atomically.

An entry holds what `scope_cells` returns for one (task, prefix) scope and one set of metrics. Its key
hashes the stats protocol version, the resampling stream (seed, number of resamples), the scope name,
the metric names and, per entity, its key, seeds and outcome arrays, plus the query grouping; anything
that changes a number changes the key, so a hit is bit-identical to recomputing. Entries are pickles
of numpy arrays written through a temporary file and a rename, so concurrent regenerations never see
half an entry; an unreadable entry is recomputed with a one-line warning. Lives in
<results-dir>/.cache/stats/ (hidden: never read as a record; ignored by git).
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pmrl_bench.files import atomic_write_bytes
from pmrl_bench.report.stats import PROTOCOL_VERSION, STATS_SEED
from pmrl_bench.results.table import Scope

CACHE_DIR = Path(".cache") / "stats"


def scope_key(scope: Scope, names: Sequence[str], n_resamples: int) -> str:
    """sha256 of everything a scope's statistics depend on."""
    h = hashlib.sha256()
    h.update(f"v{PROTOCOL_VERSION}|seed{STATS_SEED}|R{n_resamples}|{scope.name}|{','.join(names)}".encode())
    h.update(b"groups:" + (b"none" if scope.groups is None else scope.groups.astype("<i8").tobytes()))
    for key in sorted(scope.samples):
        sample = scope.samples[key]
        h.update(f"|{key}|{sample.seeds}|{sample.outcomes.shape}".encode())
        h.update(sample.outcomes.astype("<i8").tobytes())
    return h.hexdigest()


class StatsCache:
    """Get-or-compute over a cache folder (None: no cache)."""

    def __init__(self, folder: Path | None, warn: Callable[[str], None]) -> None:
        self.folder = folder
        self.warn = warn
        self.hits = self.misses = 0

    def get_or_compute(self, key: str, compute: Callable[[], Any]) -> Any:
        """The cached value of key, else compute, store and return it."""
        if self.folder is None:
            return compute()
        path = self.folder / f"{key}.pkl"
        if path.is_file():
            try:
                value = pickle.loads(path.read_bytes())
                self.hits += 1
                return value
            except Exception as exc:  # any unreadable entry: recompute (the inputs are all here)
                self.warn(f"warning: stats cache entry {path} unreadable ({exc.__class__.__name__}); recomputed")
        self.misses += 1
        value = compute()
        atomic_write_bytes(path, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        return value
