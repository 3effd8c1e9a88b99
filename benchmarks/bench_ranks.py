"""Retrieval ranks from scores: chunked ranking (ours) vs a full argsort of every row (reference).

Both paths run in their own subprocess on the same scores so that peak RSS is measured per path;
the script prints time, peak memory and their ratios, and checks that the ranks are identical
(ties counted against the method in both). Usage: python benchmarks/bench_ranks.py [--n 20000] [--dim 64]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch


def make_inputs(n: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random embeddings rounded to 2 decimals, so that the score matrix has many exact ties."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(n, dim, generator=g)
    c = q + 1.5 * torch.randn(n, dim, generator=g)
    q, c = torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(c, dim=1)
    return (q * 4).round() / 4, (c * 4).round() / 4


def ours(q: torch.Tensor, c: torch.Tensor) -> np.ndarray:
    from pmrl_bench.evaluation.retrieval import retrieval_ranks

    n = len(q)
    return retrieval_ranks(lambda a, b: q[a:b] @ c.T, torch.arange(n), torch.arange(n))


def reference(q: torch.Tensor, c: torch.Tensor) -> np.ndarray:
    scores = q @ c.T  # the whole [N, N] matrix
    order = torch.argsort(scores, dim=1, descending=True, stable=True)
    sorted_scores = torch.gather(scores, 1, order)
    rel = scores.diagonal().unsqueeze(1)
    # pessimistic: every candidate with a score >= the relevant one is ranked before it
    return ((sorted_scores >= rel).sum(dim=1)).numpy()


def _child(path: str, n: int, dim: int, out: str) -> None:
    q, c = make_inputs(n, dim)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    ranks = (ours if path == "ours" else reference)(q, c)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    np.save(out, ranks)
    print(json.dumps({"seconds": seconds, "peak_mib": peak / 1024, "extra_mib": (peak - base) / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--child", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.n, args.dim, args.out)
        return
    import tempfile

    stats = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in ("ours", "reference"):
            out = f"{tmp}/{path}.npy"
            res = subprocess.run(
                [sys.executable, __file__, "--child", path, "--n", str(args.n), "--dim", str(args.dim), "--out", out],
                capture_output=True, text=True, check=True,
            )
            stats[path] = json.loads(res.stdout.strip().splitlines()[-1])
            stats[path]["ranks"] = np.load(out)
    same = np.array_equal(stats["ours"]["ranks"], stats["reference"]["ranks"])
    o, r = stats["ours"], stats["reference"]
    print(f"retrieval ranks, N = {args.n} queries x {args.n} candidates, dim {args.dim}, torch threads {torch.get_num_threads()}")
    print(f"  chunked (ours):  {o['seconds']:.2f} s, extra peak RSS {o['extra_mib']:.0f} MiB")
    print(f"  full argsort:    {r['seconds']:.2f} s, extra peak RSS {r['extra_mib']:.0f} MiB")
    print(f"  speed-up {r['seconds'] / o['seconds']:.1f}x, memory ratio {r['extra_mib'] / max(o['extra_mib'], 1):.1f}x, "
          f"identical ranks: {same}, R@1 {100 * np.mean(o['ranks'] == 1):.2f}")
    if not same:
        raise SystemExit("ranks differ")


if __name__ == "__main__":
    main()
