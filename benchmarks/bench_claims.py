"""Cost of the claim-testing stages beside first-stage evaluation, in seconds per 1,000 test queries.

For each method a model is trained once on the synthetic task (a few epochs: the cost does not depend on
the fit); then, side by side in this process: first-stage ranking of t2va under the primary score, one
robustness noise level (noise + re-embedding + ranking), the missing-modality pass, the re-ranker's training
(its default budget) and its test pass (first stage + top-K matching). Each row is the best of `--repeats` in CPU seconds (one thread).
Usage: python benchmarks/bench_claims.py [--methods clip pmrl] [--epochs 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from pmrl_bench.config import resolve_config
from pmrl_bench.data.load import load_split
from pmrl_bench.evaluation.calibration import calibrate_scores
from pmrl_bench.evaluation.rerank import rerank_ranks, train_matching_head
from pmrl_bench.evaluation.retrieval import direction_embeddings, rank_direction
from pmrl_bench.evaluation.robustness import noised_split
from pmrl_bench.registry import get_method
from pmrl_bench.task import Rerank, load_task
from pmrl_bench.train.heads import ProjectionHeads
from pmrl_bench.train.losses import unit
from pmrl_bench.train.trainer import RowSampler, train


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Fastest CPU time (process_time, one thread) of `repeats` calls: robust to other load on a shared machine."""
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def bench_method(name: str, epochs: int, repeats: int) -> list[tuple[str, float]]:
    """(stage, seconds per 1,000 queries) for one trained model."""
    spec = load_task("synthetic")
    cfg = resolve_config(spec, name, [("epochs", epochs)])
    data = {"data": cfg["data"], "encoders": {}}
    tr, te = load_split(spec, data, "train", "cpu"), load_split(spec, data, "test", "cpu")
    torch.manual_seed(0)
    t = cfg["train"]
    heads = ProjectionHeads({m: tr.modalities[m].dim for m in spec.modalities}, t["embed_dim"], t["head_hidden"],
                            t["head_layers"])
    method = get_method(name)(spec.modalities, **cfg["method_params"])
    train(method, heads, tr, t, 0, "bench", log=lambda _: None)
    d = spec.retrieval[0]
    q, cands_mods = d.query[0], d.candidates
    signs = calibrate_scores(spec, method, heads, tr, "cpu").signs_for(d)
    settings = Rerank().model_dump()
    per_k = 1000 / te.n_items

    def first_stage() -> object:
        query, cands = direction_embeddings(heads, te, q, cands_mods, "cpu", signs)
        return rank_direction(method, method.primary_score, query, cands, q, te)

    def noise_level() -> object:
        noisy = noised_split(te, "vision", 1.0, 0)
        query, cands = direction_embeddings(heads, noisy, q, cands_mods, "cpu", signs)
        return rank_direction(method, method.primary_score, query, cands, q, noisy)

    def missing() -> object:
        query, cands = direction_embeddings(heads, te, q, ["audio"], "cpu", signs)
        return rank_direction(method, method.primary_score, query, cands, q, te)

    tq, tc = direction_embeddings(heads, tr, q, cands_mods, "cpu", signs)

    def fit() -> object:
        return train_matching_head(method, q, unit(tq), RowSampler(tr.modalities[q], tr.n_items),
                                   {m: unit(v) for m, v in tc.items()}, settings, 0)

    with torch.no_grad():
        head = fit()
        query, cands = direction_embeddings(heads, te, q, cands_mods, "cpu", signs)
        uq, uc = unit(query), {m: unit(v) for m, v in cands.items()}
        rows = [
            ("first stage (t2va)", best_of(first_stage, repeats) * per_k),
            ("robustness: one noise level", best_of(noise_level, repeats) * per_k),
            ("robustness: missing vision", best_of(missing, repeats) * per_k),
            ("re-ranker: test pass (K=50)", best_of(
                lambda: rerank_ranks(method, head, q, uq, te.modalities[q].item_index, uc, settings["k"]), repeats
            ) * per_k),
        ]
    rows.append((f"re-ranker: training ({tr.n_items} train items, default budget)", best_of(fit, 1) * per_k))
    return rows


def main() -> None:
    """Print one table per method with each stage's cost and its ratio to the first stage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["clip", "pmrl"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, synthetic test split (1,000 queries), "
          "CPU seconds")
    for name in args.methods:
        rows = bench_method(name, args.epochs, args.repeats)
        base = rows[0][1]
        print(f"\n{name} (primary score: {get_method(name).defaults.get('score', 'cosine_mean')})")
        print(f"{'stage':58s} {'s / 1k queries':>15s} {'x first stage':>14s}")
        for stage, seconds in rows:
            print(f"{stage:58s} {seconds:15.3f} {seconds / base:14.1f}")


if __name__ == "__main__":
    main()
