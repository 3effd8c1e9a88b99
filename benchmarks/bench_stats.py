"""Statistics of one leaderboard column set: vectorised engine vs a plain Python loop over resamples.

Sizes (performance.md): 6 methods x 5 seeds x 10,000 queries x 5 mean-type metrics (R@1, R@5, R@10, MnR,
MRR) plus MdR, 10,000 resamples. Timed separately: (1) the primary paired tests of every method vs the
best in each column (closed form), (2) the two-level bootstrap engine with every interval and p-value of
stats.md section 3 (per-method percentile intervals including MdR, differences vs the best with
intervals and bootstrap p). The reference is a plain loop over resamples on the same random streams;
it is run on --loop-resamples resamples (default 200) and extrapolated linearly to R, and its draws are
compared with the engine's first rows (the streams are chunk-invariant, so they must be identical).

Usage: python benchmarks/bench_stats.py [--queries 10000] [--resamples 10000] [--loop-resamples 200]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from pmrl_bench.report.stats import (
    BootstrapDraws,
    BootstrapInput,
    bootstrap_p,
    percentile_interval,
    two_level_bootstrap,
)
from pmrl_bench.report.stats.best import column_verdict
from pmrl_bench.report.stats.outcomes import metric_def, per_query_values
from pmrl_bench.report.stats.paired import seed_query_parts
from pmrl_bench.report.stats.streams import counts, default_chunk, query_stream, seed_counts, seed_stream

METRICS = ("R@1", "R@5", "R@10", "MnR", "MRR")
SCOPE = "bench/t2v"


def make_ranks(n_methods: int, n_seeds: int, n_queries: int) -> dict[str, np.ndarray]:
    """Ranks [S, N] per method key, with shared query difficulty and a per-seed effect."""
    rng = np.random.default_rng(0)
    difficulty = rng.uniform(0, 0.3, n_queries)
    out = {}
    for m in range(n_methods):
        quality = 0.55 - 0.03 * m + rng.normal(0, 0.01, (n_seeds, 1))
        p = np.clip(quality - difficulty[None, :], 0.02, 0.98)
        out[f"method{m}@{m:016x}"] = np.minimum(rng.geometric(p), 1000)
    return out


def per_query(ranks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-query values [S, N, P] of the mean-type metrics."""
    return {k: np.stack([per_query_values(metric_def(m), r) for m in METRICS], axis=-1) for k, r in ranks.items()}


def primary_tests(values: dict[str, np.ndarray]) -> list:
    """Best per column and the Holm-adjusted crossed-design tests of the others against it."""
    parts = [seed_query_parts(v) for v in values.values()]
    out = []
    for j, m in enumerate(METRICS):
        col = [p.metric(j) for p in parts]
        vals = np.array([float(c.value) for c in col])
        out.append(column_verdict(vals, np.ones(len(col), bool), metric_def(m).higher_is_better, col))
    return out


def engine(values: dict[str, np.ndarray], ranks: dict[str, np.ndarray], n_resamples: int) -> dict:
    """All resampled quantities: per-method intervals, differences vs the first method, bootstrap p."""
    inputs = [BootstrapInput(k, values[k], ranks[k]) for k in values]
    draws = two_level_bootstrap(SCOPE, inputs, n_resamples)
    return summarise(draws)


def summarise(draws: dict) -> dict:
    """Intervals and p-values from replicates {key: (mean [R, P], median [R])}."""
    keys = sorted(draws)
    stacked = {k: np.concatenate([draws[k].mean, draws[k].median[:, None]], axis=1) for k in keys}
    out = {"interval": {k: percentile_interval(v) for k, v in stacked.items()}}
    ref = stacked[keys[0]]
    for k in keys[1:]:
        delta = ref - stacked[k]
        out[f"delta {k}"] = (percentile_interval(delta), bootstrap_p(delta, 1000.0))
    return out


def loop_reference(values: dict[str, np.ndarray], ranks: dict[str, np.ndarray], n_resamples: int) -> dict:
    """Plain Python loop over resamples on the same streams: one query draw per resample, np.repeat medians."""
    keys = sorted(values)
    n = next(iter(values.values())).shape[1]
    qgen = query_stream(SCOPE)
    u = {k: seed_counts(seed_stream(SCOPE, k), n_resamples, values[k].shape[0]) for k in keys}
    mean = {k: np.empty((n_resamples, len(METRICS))) for k in keys}
    median = {k: np.empty(n_resamples) for k in keys}
    for r in range(n_resamples):
        w = counts(qgen.integers(0, n, size=(1, n), dtype=np.int64), n)[0]
        for k in keys:
            s = values[k].shape[0]
            per_seed = np.einsum("snp,n->sp", values[k], w.astype(np.float64)) / n
            mean[k][r] = u[k][r] @ per_seed / s
            median[k][r] = u[k][r] @ np.array([np.median(np.repeat(row, w)) for row in ranks[k]]) / s
    return {k: BootstrapDraws(mean[k], median[k]) for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--loop-resamples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    ranks = make_ranks(args.methods, args.seeds, args.queries)
    values = per_query(ranks)
    print(f"{args.methods} methods x {args.seeds} seeds x {args.queries:,} queries x {len(METRICS)} metrics + MdR, "
          f"R = {args.resamples:,}")

    t_tests = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        primary_tests(values)
        t_tests.append(time.perf_counter() - t0)
    print(f"primary tests (closed form, {len(METRICS)} columns x {args.methods - 1} comparisons): "
          f"{min(t_tests):.3f} s (best of {args.repeats})")

    t_engine, cpu_engine = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        engine(values, ranks, args.resamples)
        t_engine.append(time.perf_counter() - t0)
        cpu_engine.append(time.process_time() - c0)
    print(f"bootstrap engine with all intervals and p-values: wall {' / '.join(f'{t:.2f}' for t in t_engine)} s, "
          f"process CPU {' / '.join(f'{t:.2f}' for t in cpu_engine)} s (all threads)")

    tracemalloc.start()
    engine(values, ranks, args.resamples)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"engine peak traced memory: {peak / 2**20:.0f} MiB "
          f"(chunks of {default_chunk(args.queries)} resamples x {args.queries:,} queries)")

    t0, c0 = time.perf_counter(), time.process_time()
    loop = loop_reference(values, ranks, args.loop_resamples)
    t_loop, cpu_loop = time.perf_counter() - t0, time.process_time() - c0
    eng = two_level_bootstrap(SCOPE, [BootstrapInput(k, values[k], ranks[k]) for k in values], args.loop_resamples)
    diff_mean = max(float(np.abs(eng[k].mean - loop[k].mean).max()) for k in loop)
    same_median = all(np.array_equal(eng[k].median, loop[k].median) for k in loop)
    same_summary = all(np.allclose(a, b, rtol=0, atol=1e-9) for a, b in zip(
        _flat(summarise(eng)), _flat(summarise(loop)), strict=True))
    per_resample = t_loop / args.loop_resamples
    extrapolated = per_resample * args.resamples
    cpu_extrapolated = cpu_loop / args.loop_resamples * args.resamples
    print(f"loop reference: wall {t_loop:.2f} s, CPU {cpu_loop:.2f} s for {args.loop_resamples} resamples -> "
          f"wall {extrapolated:.0f} s, CPU {cpu_extrapolated:.0f} s extrapolated to {args.resamples:,}")
    print(f"same draws: mean-type max |diff| = {diff_mean:.1e}, MdR identical = {same_median}, "
          f"intervals and p identical = {same_summary}")
    print(f"ratio loop / engine: wall {extrapolated / min(t_engine):.0f}x, CPU {cpu_extrapolated / min(cpu_engine):.0f}x")


def _flat(summary: dict) -> list[np.ndarray]:
    out = [summary["interval"][k] for k in sorted(summary["interval"])]
    for key in sorted(k for k in summary if k != "interval"):
        out += [summary[key][0], summary[key][1]]
    return out


if __name__ == "__main__":
    main()
