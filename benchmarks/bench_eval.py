"""Evaluation against its floor: the rank pass and the similarity scores vs the plain score matmul, side by side.

Rows (D = 64 by default, float32 inputs, one process, alternating repeats, min of CPU seconds; with
--device cuda, wall seconds after a synchronize, the same references on the same device):
  rank pass   score chunks `q @ c.T` alone (the floor) vs the same chunks ranked by `retrieval_ranks` (ours)
              vs the formulation before issue 12 (written here: NaN test on every chunk, then
              `(scores >= best).sum(1)`, a bool and an int64 copy of the chunk); ranks must be identical.
  scores      one [Nq, Nc] similarity of a method vs the matmul of pre-normalised vectors (the floor):
              clip (mean cosine), gram (volume, and the volume as computed before issue 12), pmrl (sigma_1
              eager, and compiled with PMRL_BENCH_COMPILE=1 after a first call that compiles it, timed apart),
              the fair batched baseline of sigma_1 (`torch.linalg.eigvalsh` of the 3 x 3 Gram matrices, chunked),
              text vs (vision, audio); min and median of the alternating repeats. sigma_1 rows also give
              how many results differ from float64 `eigvalsh` of the same Gram entries rounded to float32 (first 200 queries).
Peak memory of the rank pass: peak of live tensor bytes (torch.profiler memory events) above the inputs.

Usage: python benchmarks/bench_eval.py [--queries 2000] [--candidates 10000 50000 100000] [--dim 64] [--repeats 3]
       [--scores-only] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from bench_methods import (  # shared with the methods benchmark (run from benchmarks/)
    batched_reference,
    peak_bytes,
    sync,
)
from bench_train import gram_volume_before  # the Gram volume before issue 12

from pmrl_bench.evaluation.retrieval import default_chunk, retrieval_ranks
from pmrl_bench.registry import get_method
from pmrl_bench.runtime import COMPILE_ENV
from pmrl_bench.train import losses
from pmrl_bench.train.losses import unit


def old_ranks(score_chunk: Callable[[int, int], torch.Tensor], n_q: int, n_c: int) -> np.ndarray:
    """The unique-candidate rank pass before issue 12 (query q's relevant candidate is candidate q)."""
    chunk, ranks = default_chunk(n_c), np.empty(n_q, dtype=np.int64)
    for start in range(0, n_q, chunk):
        stop = min(n_q, start + chunk)
        scores = score_chunk(start, stop)
        if bool(torch.isnan(scores).any()):
            raise RuntimeError("NaN")
        best = scores.gather(1, torch.arange(start, stop, device=scores.device).view(-1, 1))
        ranks[start:stop] = (scores >= best).sum(dim=1).cpu().numpy()
    return ranks


DEVICE = "cpu"  # set from --device in main()


def clock() -> float:
    """Process CPU seconds on CPU; wall seconds after the device's queued work has finished on CUDA."""
    if DEVICE.startswith("cuda"):
        sync(DEVICE)
        return time.perf_counter()
    return time.process_time()


def cpu_times(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds (`clock`) of each function per repeat, the functions alternating in every repeat (after a warm-up)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = clock()
            fn()
            times[name].append(clock() - t0)
    return times


def cpu_min(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Min process CPU seconds of each function over alternating repeats."""
    return {k: min(v) for k, v in cpu_times(fns, repeats).items()}


def rank_row(n_q: int, n_c: int, dim: int, repeats: int) -> dict[str, str]:
    """Floor, ours and before for one size; identical ranks required."""
    g = torch.Generator().manual_seed(0)
    c = F.normalize(torch.randn(n_c, dim, generator=g), dim=1)
    q = F.normalize(c[:n_q] + torch.randn(n_q, dim, generator=g), dim=1).to(DEVICE)
    c = c.to(DEVICE)
    chunk = default_chunk(n_c)

    def scores(a: int, b: int) -> torch.Tensor:
        return q[a:b] @ c.T

    def floor() -> None:
        for s in range(0, n_q, chunk):
            scores(s, min(n_q, s + chunk))

    ours = lambda: retrieval_ranks(scores, torch.arange(n_q), torch.arange(n_c))  # noqa: E731
    before = lambda: old_ranks(scores, n_q, n_c)  # noqa: E731
    t = cpu_min({"floor": floor, "ours": ours, "before": before}, repeats)
    same = np.array_equal(ours(), before())
    return {
        "Nq x Nc": f"{n_q:,} x {n_c:,}", "matmul s": f"{t['floor']:.3f}", "ours s": f"{t['ours']:.3f}",
        "before s": f"{t['before']:.3f}", "ours / matmul": f"{t['ours'] / t['floor']:.2f}",
        "before / matmul": f"{t['before'] / t['floor']:.2f}", "chunk MiB": f"{chunk * n_c * 4 / 2**20:.0f}",
        "ours peak MiB": f"{peak_bytes(ours, DEVICE) / 2**20:.0f}", "before peak MiB": f"{peak_bytes(before, DEVICE) / 2**20:.0f}",
        "identical ranks": str(same),
    }


def compiled(fn: Callable[[], object]) -> Callable[[], object]:
    """`fn` run with PMRL_BENCH_COMPILE=1 (the setting is read at each call)."""

    def run() -> object:
        os.environ[COMPILE_ENV] = "1"
        try:
            return fn()
        finally:
            del os.environ[COMPILE_ENV]

    return run


def sigma1_check(score: Callable[[], object], text: torch.Tensor, cands: dict[str, torch.Tensor]) -> str:
    """Pairs whose float32 sigma_1 is not float64 eigvalsh's (on the same Gram entries) rounded to float32; first 200 queries."""
    rows = min(200, text.shape[0])
    parts = [unit(c) for c in cands.values()]
    entry = losses._entries(losses._tuple_gram(unit(text[:rows]), torch.cat(parts), losses._candidate_gram(parts)))
    gram = losses._full_matrix(entry, 3)
    ref = torch.linalg.eigvalsh(gram)[..., -1].clamp_min(0).sqrt().cpu()
    got = score()[:rows].cpu()  # type: ignore[index]
    return f"{int((got != ref.float()).sum())} of {got.numel():,} (max rel. {float(((got.double() - ref).abs() / ref).max()):.1e})"


def score_rows(n_q: int, n_c: int, dim: int, repeats: int) -> list[dict[str, str]]:
    """Each method's similarity vs the matmul floor on the same inputs."""
    g = torch.Generator().manual_seed(1)
    text = torch.randn(n_q, dim, generator=g).to(DEVICE)
    cands = {m: torch.randn(n_c, dim, generator=g).to(DEVICE) for m in ("vision", "audio")}
    tu, vu = F.normalize(text, dim=1), F.normalize(cands["vision"], dim=1)
    fns: dict[str, Callable[[], object]] = {"floor": lambda: tu @ vu.T}
    for label, name in (("mean cosine (clip)", "clip"), ("volume (gram)", "gram"), ("sigma_1 (pmrl)", "pmrl")):
        method = get_method(name)(["text", "vision", "audio"]).to(DEVICE)
        fns[label] = lambda method=method: method.similarity({"text": text}, cands)
        if name == "gram":  # the same score as computed before issue 12 (Laplace expansion), side by side
            fns["volume before (Laplace)"] = lambda eps=method.params["eps"]: -gram_volume_before(
                unit(text), [unit(c) for c in cands.values()], eps)
    sigma1 = fns["sigma_1 (pmrl)"]
    t0 = time.perf_counter()
    compiled(sigma1)()
    first = time.perf_counter() - t0
    fns[f"sigma_1 (pmrl), compiled (first call {first:.1f} s)"] = compiled(sigma1)
    fns["sigma_1 by batched eigvalsh (fair baseline)"] = lambda: batched_reference(
        "sigma1", text, list(cands.values()), range(n_q))
    checks = {label: sigma1_check(fns[label], text, cands) for label in fns if label.startswith("sigma_1 (pmrl)")}
    t = cpu_times(fns, repeats)
    lo, mid = ({k: f(v) for k, v in t.items()} for f in (min, statistics.median))
    return [{"score": k, "Nq x Nc": f"{n_q:,} x {n_c:,}", "ms (min / median)": f"{1e3 * lo[k]:.1f} / {1e3 * mid[k]:.1f}",
             "matmul ms (min / median)": f"{1e3 * lo['floor']:.1f} / {1e3 * mid['floor']:.1f}",
             "/ matmul (min / median)": f"{lo[k] / lo['floor']:.2f} / {mid[k] / mid['floor']:.2f}",
             "float32 results off eigvalsh rounded": checks.get(k, "-")}
            for k in t if k != "floor"]


def table(rows: list[dict[str, str]]) -> str:
    """Rows as a Markdown table."""
    head = list(rows[0])
    return "\n".join(["| " + " | ".join(head) + " |", "|" + " --- |" * len(head),
                      *("| " + " | ".join(r[h] for h in head) + " |" for r in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--candidates", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--square", type=int, default=20_000, help="also rank an N x N matrix (0: skip)")
    parser.add_argument("--score-size", type=int, nargs=2, default=[1000, 5000], metavar=("NQ", "NC"))
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scores-only", action="store_true", help="only the similarity-score rows")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    torch.set_num_threads(1)
    where = torch.cuda.get_device_name(DEVICE) if DEVICE.startswith("cuda") else platform.processor() or platform.machine()
    print(f"# bench_eval  torch {torch.__version__}  {where}  {os.cpu_count()} CPUs  1 thread  dim {args.dim}  "
          f"device {DEVICE}  load average {os.getloadavg()[0]:.1f}\n")
    sizes = [(args.queries, n) for n in args.candidates] + ([(args.square, args.square)] if args.square else [])
    if not args.scores_only:
        print("## Rank pass vs score matmul (CPU s, min of alternating repeats)\n")
        print(table([rank_row(nq, nc, args.dim, args.repeats) for nq, nc in sizes]) + "\n")
    print("## Similarity scores vs the score matmul\n")
    print(table(score_rows(*args.score_size, args.dim, args.repeats)) + "\n")


if __name__ == "__main__":
    main()
