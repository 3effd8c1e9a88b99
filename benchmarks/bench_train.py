"""Training steps per second at batch 1024: the InfoNCE family with our loss vs the formulation before issue 12.

One step = heads forward (the synthetic task's heads: 96/128/64-d features, hidden 256, embed 64) + the
method's loss + backward + an Adam step. "before" swaps in the symmetric InfoNCE as it was (one product per
pair, the column cross-entropy on the transposed view), written here; gram's loss did not change (its row
is the control: ratio ~1). Both run side by side in this process, alternating, min of CPU seconds; the
losses and gradients of the two are compared on the first batch.

Usage: python benchmarks/bench_train.py [--batch 1024] [--steps 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F

import pmrl_bench.train.pairwise as pairwise
from pmrl_bench.registry import get_method
from pmrl_bench.train.heads import ProjectionHeads

DIMS = {"text": 96, "vision": 128, "audio": 64}


def info_nce_before(z, pairs, logit_scale, label_smoothing=0.0):
    """The symmetric InfoNCE before issue 12 (column loss on the transposed view of the row logits)."""
    left = torch.tensor([p[0] for p in pairs], device=z.device)
    right = torch.tensor([p[1] for p in pairs], device=z.device)
    logits = logit_scale.to(z.dtype) * torch.matmul(z[left], z[right].transpose(-1, -2))
    n_pairs, b = logits.shape[0], logits.shape[-1]
    target = torch.arange(b, device=z.device).repeat(n_pairs)
    rows = F.cross_entropy(logits.reshape(-1, b), target, reduction="none", label_smoothing=label_smoothing)
    cols = F.cross_entropy(logits.transpose(-1, -2).reshape(-1, b), target, reduction="none",
                           label_smoothing=label_smoothing)
    return 0.5 * (rows.view(n_pairs, b).mean(-1) + cols.view(n_pairs, b).mean(-1))


def trainer(name: str, batch: int):
    """(one-step closure, loss-and-gradients closure) for a fresh model of `name` on fixed random features."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    feats = {m: torch.randn(batch, d, generator=g) for m, d in DIMS.items()}
    heads = ProjectionHeads(DIMS, 64, 256, 2)
    method = get_method(name)(list(DIMS))
    opt = torch.optim.Adam([*heads.parameters(), *method.parameters()], lr=1e-3)

    def step() -> None:
        opt.zero_grad()
        method.loss(heads(feats)).backward()
        opt.step()

    def grads() -> tuple[float, torch.Tensor]:
        opt.zero_grad()
        loss = method.loss(heads(feats))
        loss.backward()
        return float(loss), torch.cat([p.grad.flatten() for p in heads.parameters()])

    return step, grads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ours_fn = pairwise.symmetric_info_nce
    print(f"training steps/s, batch {args.batch}, {args.threads} thread(s), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; min CPU s per step of {args.steps} alternating steps\n")
    print("| method | ours steps/s | before steps/s | speed-up | abs dloss | max abs dgrad / max abs grad |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in ("clip", "imagebind", "gram"):
        runs = {}
        for label, fn in (("ours", ours_fn), ("before", info_nce_before)):
            pairwise.symmetric_info_nce = fn
            runs[label] = trainer(name, args.batch)
            pairwise.symmetric_info_nce = ours_fn
        (l_ours, g_ours), (l_before, g_before) = (_with(fn, runs[k][1]) for k, fn in
                                                  (("ours", ours_fn), ("before", info_nce_before)))
        times = {k: [] for k in runs}
        for _ in range(args.steps):
            for label, fn in (("ours", ours_fn), ("before", info_nce_before)):
                pairwise.symmetric_info_nce = fn
                t0 = time.process_time()
                runs[label][0]()
                times[label].append(time.process_time() - t0)
        pairwise.symmetric_info_nce = ours_fn
        best = {k: min(v) for k, v in times.items()}
        print(f"| {name} | {1 / best['ours']:.2f} | {1 / best['before']:.2f} | {best['before'] / best['ours']:.2f}x | "
              f"{abs(l_ours - l_before):.1e} | {float((g_ours - g_before).abs().max() / g_before.abs().max()):.1e} |")


def _with(fn, closure):
    """Run `closure` with `fn` as the pairwise module's InfoNCE."""
    saved = pairwise.symmetric_info_nce
    pairwise.symmetric_info_nce = fn
    try:
        return closure()
    finally:
        pairwise.symmetric_info_nce = saved


if __name__ == "__main__":
    main()
