"""Builders of result records with known outcomes, for the leaderboard / compare / validate tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from pmrl_bench.report.stats.outcomes import metric_def, run_metric
from pmrl_bench.results.record import RunResult, write_result

RANK_METRICS = ("R@1", "R@5", "R@10", "MdR", "MnR", "MRR")


def digest(name: str) -> str:
    """A stable sha256 hex digest standing for one eval set."""
    return hashlib.sha256(name.encode()).hexdigest()


def make_record(task: str, method: str, seed: int, outcomes: dict[str, np.ndarray], *, config_hash: str = "a" * 16,
                status: str = "ok", eval_set: dict[str, str] | None = None, n_candidates: int | None = None,
                groups: dict[str, np.ndarray] | None = None, task_meta: dict | None = None,
                params: dict | None = None, **fields) -> RunResult:
    """A record whose metrics are recomputed from `outcomes` ({'t2v/rank': ranks} or {'cls/correct': 0/1})."""
    metrics, per_query, protocol = {}, {}, {}
    if status == "ok":
        for key, values in outcomes.items():
            prefix, kind = key.split("/")
            per_query[key] = [int(v) for v in values]
            names = RANK_METRICS if kind == "rank" else ("acc",)
            metrics.update({f"{prefix}/{n}": float(run_metric(metric_def(n), np.asarray(values))) for n in names})
            protocol[prefix] = {"n_queries": len(values), "n_candidates": n_candidates or 100}
        for prefix, g in (groups or {}).items():
            per_query[f"{prefix}/group"] = [int(v) for v in g]
    if eval_set is None:
        eval_set = {key.split("/")[0]: digest(f"{task}:{key}") for key in outcomes} if status == "ok" else {}
    run_id = hashlib.sha256(f"{method}{config_hash}{seed}".encode()).hexdigest()[:16]
    return RunResult(
        run_id=run_id, config_hash=config_hash, method=method, task=task, seed=seed, status=status,
        error=None if status == "ok" else "loss became NaN at step 12", config={"method": method, **({"method_params": params} if params is not None else {})},
        metrics=metrics, per_query=per_query, eval_set=eval_set, protocol=protocol, created_at="2025-01-01T00:00:00",
        task_meta=task_meta,
        **fields,
    )


def write(root: Path, *args, **kwargs) -> Path:
    """make_record + write_result."""
    return write_result(root, make_record(*args, **kwargs))


def simulated_ranks(n_queries: int, quality: float, seed: int, difficulty_seed: int = 0,
                    seed_sd: float = 0.02) -> np.ndarray:
    """Ranks in 1..100 with shared query difficulty; higher quality -> smaller ranks."""
    difficulty = np.random.default_rng(difficulty_seed).uniform(0, 1, n_queries)
    rng = np.random.default_rng(1000 * seed + int(quality * 997))
    p = np.clip(quality + rng.normal(0, seed_sd) - 0.3 * difficulty, 0.02, 0.98)
    return np.minimum(rng.geometric(p), 100)


def leaderboard_scenario(root: Path, n_queries: int = 300) -> dict[str, Path]:
    """Two tasks with known outcomes: a truly better method (pmrl), an exact tie (twin), one that is not
    significantly worse (clip), a worse one with two configs (gram), a 2-seed method with a failed run
    (imagebind), a run on another eval set and a truncated file. Returns notable paths."""
    paths = {}
    for task, shift in (("synthetic", 0), ("synthetic-noisy-anchor", 1)):
        for seed in range(5):
            best = simulated_ranks(n_queries, 0.7 - 0.05 * shift, seed, shift, seed_sd=0.04)
            close = best.copy()
            close[seed * 3 : seed * 3 + 2] += 1  # a near-copy: two queries a little worse
            write(root, task, "pmrl", seed, {"t2va/rank": best})
            write(root, task, "twin", seed, {"t2va/rank": best})
            write(root, task, "clip", seed, {"t2va/rank": close})
            write(root, task, "gram", seed, {"t2va/rank": simulated_ranks(n_queries, 0.4, seed, shift)})
        for seed in range(3):
            write(root, task, "gram", seed, {"t2va/rank": simulated_ranks(n_queries, 0.45, seed, shift)},
                  config_hash="b" * 16)
        for seed in range(2):
            write(root, task, "imagebind", seed, {"t2va/rank": simulated_ranks(n_queries, 0.5, seed, shift)})
    paths["failed"] = write(root, "synthetic", "imagebind", 2, {}, status="failed")
    paths["other_eval_set"] = write(root, "synthetic", "clip", 7, {"t2va/rank": simulated_ranks(n_queries, 0.9, 7)},
                                    eval_set={"t2va": digest("another test split")})
    corrupt = write(root, "synthetic", "pmrl", 9, {"t2va/rank": simulated_ranks(n_queries, 0.7, 9)})
    corrupt.write_bytes(corrupt.read_bytes()[:200])
    paths["corrupt"] = corrupt
    return paths
