"""Training steps per second at batch 1024: the InfoNCE family (clip, imagebind, gram) vs its formulation before issue 12.

One step = heads forward (the synthetic task's heads: 96/128/64-d features, hidden 256, embed 64) + the
method's loss + backward + an Adam step. "before" swaps in the loss pieces as they were before issue 12,
written here: for clip and imagebind the symmetric InfoNCE with one product per pair, the scale applied to
the [P, B, B] logits and the column cross-entropy on the transposed view; for gram the Laplace-expansion
Gram volume and `F.cross_entropy` on the logits and on their transposed view. Both variants run side by side
in this process, alternating step by step; min and median of the CPU seconds per step. The losses and
gradients of the two are compared on the first batch, and each against ours run in float64 (where the two
formulations agree to 1e-13, tests/test_losses_reference.py), which shows whose float32 round-off is larger.

Usage: python benchmarks/bench_train.py [--batch 1024] [--steps 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Iterator

import torch
import torch.nn.functional as F

import pmrl_bench.train.losses as losses
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


def gram_volume_before(anchor, parts, eps=0.0):
    """The Gram volume before issue 12: memoised Laplace expansion of every k x k determinant, float64."""
    k, candidate = 1 + len(parts), losses._candidate_gram(parts)

    def chunk(a):
        det = losses._minor(losses._entries(losses._tuple_gram(a, torch.cat(parts), candidate)), tuple(range(k)), tuple(range(k)), {})
        return (det.clamp_min(0) + eps).sqrt().to(anchor.dtype)

    return losses.query_chunks(chunk, anchor, parts[0].shape[0])


def directional_cross_entropy_before(logits, label_smoothing=0.0):
    """(CE(logits), CE(logits^T)) before issue 12: `F.cross_entropy` on the logits and on their transposed view."""
    target = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, target, label_smoothing=label_smoothing),
            F.cross_entropy(logits.T, target, label_smoothing=label_smoothing))


def before_patches(method) -> list[tuple[object, str, object]]:
    """(module, attribute, replacement) that give `method` its loss as it was before issue 12."""
    if method.name == "gram":
        module = sys.modules[type(method).__module__]
        return [(module, "gram_volume", gram_volume_before),
                (module, "directional_cross_entropy", directional_cross_entropy_before)]
    return [(pairwise, "symmetric_info_nce", info_nce_before)]


@contextlib.contextmanager
def patched(items: list[tuple[object, str, object]]) -> Iterator[None]:
    """Temporarily replace module attributes."""
    saved = [(m, a, getattr(m, a)) for m, a, _ in items]
    for m, a, fn in items:
        setattr(m, a, fn)
    try:
        yield
    finally:
        for m, a, fn in saved:
            setattr(m, a, fn)


def trainer(name: str, batch: int, dtype: torch.dtype = torch.float32):
    """(method, one-step closure, loss-and-gradients closure) for a fresh model of `name` on fixed random features."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    feats = {m: torch.randn(batch, d, generator=g).to(dtype) for m, d in DIMS.items()}
    heads = ProjectionHeads(DIMS, 64, 256, 2).to(dtype)
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
        return float(loss.detach()), torch.cat([p.grad.flatten().double() for p in heads.parameters()])

    return method, step, grads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", nargs="+", default=["clip", "imagebind", "gram"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"training steps/s, batch {args.batch}, {args.threads} thread(s), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; CPU s per step over {args.steps} alternating steps\n")
    print("| method | ours steps/s (min / median) | before steps/s (min / median) | speed-up (min / median) "
          "| abs dloss | max abs dgrad / max abs grad | float32 grad error vs float64, ours / before |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.methods:
        runs = {label: trainer(name, args.batch) for label in ("ours", "before")}
        patches = {"ours": [], "before": before_patches(runs["before"][0])}
        with patched(patches["before"]):
            l_before, g_before = runs["before"][2]()
        l_ours, g_ours = runs["ours"][2]()
        _, g_ref = trainer(name, args.batch, torch.float64)[2]()  # ours in float64: the reference both are held to
        err = {k: float((g - g_ref).abs().max() / g_ref.abs().max()) for k, g in (("ours", g_ours), ("before", g_before))}
        times: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(args.steps + 1):  # the first round warms up
            for label in ("ours", "before"):
                with patched(patches[label]):
                    t0 = time.process_time()
                    runs[label][1]()
                    times[label].append(time.process_time() - t0)
        best = {k: min(v[1:]) for k, v in times.items()}
        med = {k: statistics.median(v[1:]) for k, v in times.items()}
        print(f"| {name} | {1 / best['ours']:.2f} / {1 / med['ours']:.2f} | {1 / best['before']:.2f} / "
              f"{1 / med['before']:.2f} | {best['before'] / best['ours']:.2f}x / {med['before'] / med['ours']:.2f}x | "
              f"{abs(l_ours - l_before):.1e} | {float((g_ours - g_before).abs().max() / g_before.abs().max()):.1e} | "
              f"{err['ours']:.1e} / {err['before']:.1e} |",
              flush=True)


if __name__ == "__main__":
    main()
