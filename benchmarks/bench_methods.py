"""Alignment objectives: our closed-form paths vs the reference formulations (performance.md rows 1-3) and scaling.

Rows, each timed side by side in this process (median of repeats, after one warm-up):
  pmrl-loss      PMRL loss forward + backward: `methods/pmrl.py` (k x k Gram + eigh, guarded backward)
                 vs the official formulation (stack [B, D, k], torch.linalg.svd(full_matrices=True), S and U[:, :, 0]).
  gram-sim       GRAM similarity, text vs (vision, audio): closed-form determinants in query chunks
                 vs a loop over queries that builds every k x k Gram matrix and calls torch.linalg.det.
  sigma1-sim     PMRL sigma_1 similarity: closed-form largest eigenvalue of the k x k Gram matrices
                 vs a loop over queries calling torch.linalg.svdvals on the stacked [D, k] matrices.
The two loop references are timed on a subset of queries and extrapolated linearly to all N queries (each
query costs the same); the correctness columns compare our output with the reference on that subset.
Fair baselines beside each official one: PMRL with `full_matrices=False` (the loss needs only S and U[:, :, 0]),
and for the similarities every k x k Gram matrix of a chunk of 64 queries (from matrix products) with batched
`torch.linalg.det` / `torch.linalg.eigvalsh` (timed on 10x the loop's queries, extrapolated).

Peak memory: on CPU, the peak of live tensor bytes from torch.profiler's memory events (allocations and frees
of every op in time order; tracemalloc cannot see torch's allocator); on CUDA, torch.cuda.max_memory_allocated.
Both count tensors only (not the process), which is what a chunked path bounds.

Usage: python benchmarks/bench_methods.py [--quick] [--device cpu|cuda] [--dtype fp32|bf16] [--only ROW ...]
bf16 means bf16 inputs (head outputs); both paths compute in float32 (SVD and det have no bf16 kernels), and
our input gradients come back in bf16 (rounding about 4e-3, which then dominates the gradient columns).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from pmrl_bench.registry import get_method

MODALITIES = ["text", "vision", "audio", "subtitle"]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


# ------------------------------------------------------------------------------------------ measuring


def sync(device: str) -> None:
    """Wait for queued GPU work."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def median_time(fn: Callable[[], object], device: str, repeats: int) -> float:
    """Median wall time of `fn` in seconds over `repeats` runs, after one warm-up run."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_bytes(fn: Callable[[], object], device: str) -> int:
    """Peak of live tensor bytes allocated while `fn` runs (beyond what was live before)."""
    if device.startswith("cuda"):
        sync(device)
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        sync(device)
        return torch.cuda.max_memory_allocated() - base
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    live = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        live += event.self_cpu_memory_usage
        peak = max(peak, live)
    return peak


def raw_inputs(n: int, d: int, k: int, dtype: torch.dtype, device: str, seed: int = 0) -> list[torch.Tensor]:
    """k raw [n, d] head outputs with a shared component (cosines about 0.3, as after some training)."""
    g = torch.Generator().manual_seed(seed)
    shared = torch.randn(n, d, generator=g)
    return [(shared + 1.5 * torch.randn(n, d, generator=g)).to(device=device, dtype=dtype) for _ in range(k)]


def mib(n_bytes: float) -> str:
    """Bytes as MiB text."""
    return f"{n_bytes / 2**20:.1f}"


def ratio(a: float, b: float) -> str:
    """a / b as text (inf when b is 0)."""
    return f"{a / b:.1f}x" if b > 0 else "inf"


# ------------------------------------------------------------------------------------------ PMRL loss


def official_pmrl(
    zs: list[torch.Tensor],
    tau1: float,
    tau2: float,
    flip: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float32,
    full_matrices: bool = True,
):
    """(loss, sigma, u_1) as the official code computes them: full SVD of [B, D, k], CE over S/tau1 and U1 U1^T/tau2.

    `flip` (+-1 per instance) re-orients u_1 to compare losses with matched signs. `full_matrices=False` is
    the fair baseline: the loss uses only S and U[:, :, 0], so the [B, D, D] U need not be formed.
    """
    stacked = torch.stack([F.normalize(z.to(dtype), dim=-1) for z in zs], dim=-1)  # [B, D, k]
    u, s, _ = torch.linalg.svd(stacked, full_matrices=full_matrices)
    u1 = u[:, :, 0] if flip is None else u[:, :, 0] * flip[:, None]
    b = s.shape[0]
    intra = F.cross_entropy(s / tau1, torch.zeros(b, dtype=torch.long, device=s.device))
    inter = F.cross_entropy(u1 @ u1.T / tau2, torch.arange(b, device=s.device))
    return intra + inter, s, u1


def bench_pmrl_loss(b: int, d: int, k: int, args: argparse.Namespace, repeats: int) -> dict[str, str]:
    """Time, peak memory and agreement of our PMRL loss vs the official full-SVD formulation."""
    from pmrl_bench.train.losses import leading_spectrum, unit

    method = get_method("pmrl")(MODALITIES[:k]).to(args.device)
    tau1, tau2 = method.params["tau1"], method.params["tau2"]
    raw = raw_inputs(b, d, k, args.dtype, args.device)

    def leaves() -> list[torch.Tensor]:
        return [x.detach().clone().requires_grad_() for x in raw]

    def ours() -> None:
        zs = leaves()
        method.loss(dict(zip(MODALITIES, zs, strict=False))).backward()

    def reference() -> None:
        zs = leaves()
        official_pmrl(zs, tau1, tau2)[0].backward()

    t_ours = median_time(ours, args.device, repeats)
    def fair() -> None:
        zs = leaves()
        official_pmrl(zs, tau1, tau2, full_matrices=False)[0].backward()

    t_ref = median_time(reference, args.device, max(2, repeats // 4))
    t_fair = median_time(fair, args.device, repeats)
    m_ours, m_ref = peak_bytes(ours, args.device), peak_bytes(reference, args.device)
    m_fair = peak_bytes(fair, args.device)

    # correctness: sigma, u_1 up to sign, loss and input gradients with u_1's signs matched; gradients also
    # against the official formulation run in float64 (the float32 SVD backward is the less accurate of the two)
    def official_grad(dtype: torch.dtype, flip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zs = [x.detach().to(dtype).clone().requires_grad_() for x in raw]
        loss_ref, _, _ = official_pmrl(zs, tau1, tau2, flip.to(dtype), dtype)
        loss_ref.backward()
        return loss_ref.detach(), torch.cat([z.grad for z in zs]).double()

    z_ours = leaves()
    loss = method.loss(dict(zip(MODALITIES, z_ours, strict=False)))
    loss.backward()
    g = torch.cat([z.grad for z in z_ours]).double()
    sigma, u1 = leading_spectrum(torch.stack([unit(z) for z in z_ours], 1).detach())
    with torch.no_grad():
        _, s_ref, u_ref = official_pmrl(raw, tau1, tau2)
    flip = torch.sign((u_ref * u1).sum(-1))
    loss_ref, g_ref = official_grad(torch.float32, flip)
    _, g_64 = official_grad(torch.float64, flip)

    def rel(a: torch.Tensor, b: torch.Tensor) -> str:
        return f"{float((a - b).abs().max() / b.abs().max()):.1e}"

    return {
        "B": str(b),
        "D": str(d),
        "k": str(k),
        "ours ms": f"{1e3 * t_ours:.2f}",
        "official ms": f"{1e3 * t_ref:.1f}",
        "speed-up": ratio(t_ref, t_ours),
        "fair ms (full_matrices=False)": f"{1e3 * t_fair:.1f}",
        "vs fair": ratio(t_fair, t_ours),
        "ours MiB": mib(m_ours),
        "official MiB": mib(m_ref),
        "memory ratio": ratio(m_ref, m_ours),
        "fair MiB": mib(m_fair),
        "max abs dsigma": f"{(sigma - s_ref).abs().max():.1e}",
        "min abs u.u_ref": f"{(u1 * u_ref).sum(-1).abs().min():.7f}",
        "abs dloss": f"{abs(float(loss.detach()) - float(loss_ref)):.1e}",
        "grad err vs official": rel(g, g_ref),
        "grad err vs official fp64": rel(g, g_64),
        "official fp32 grad err vs fp64": rel(g_ref, g_64),
    }


# ------------------------------------------------------------------------------------------ similarities


def gram_loop(t: torch.Tensor, parts: list[torch.Tensor], rows: range) -> torch.Tensor:
    """Reference GRAM volumes: per query, every k x k Gram matrix, torch.linalg.det, sqrt|det|."""
    t, parts = F.normalize(t.float(), dim=-1), [F.normalize(p.float(), dim=-1) for p in parts]
    out = []
    for q in rows:
        stacked = torch.stack([t[q].expand_as(parts[0]), *parts], 1)  # [Nc, k, D]
        out.append(torch.linalg.det(stacked @ stacked.transpose(1, 2)).abs().sqrt())
    return torch.stack(out)


def svdvals_loop(t: torch.Tensor, parts: list[torch.Tensor], rows: range) -> torch.Tensor:
    """Reference sigma_1: per query, torch.linalg.svdvals of every stacked [D, k] matrix."""
    t, parts = F.normalize(t.float(), dim=-1), [F.normalize(p.float(), dim=-1) for p in parts]
    out = []
    for q in rows:
        stacked = torch.stack([t[q].expand_as(parts[0]), *parts], -1)  # [Nc, D, k]
        out.append(torch.linalg.svdvals(stacked)[:, 0])
    return torch.stack(out)


def batched_reference(kind: str, t: torch.Tensor, parts: list[torch.Tensor], rows: range,
                      chunk: int = 64) -> torch.Tensor:
    """Fair reference: the k x k Gram matrices of a chunk of queries from matrix products, batched det or eigvalsh."""
    t, parts = F.normalize(t.float(), dim=-1), [F.normalize(p.float(), dim=-1) for p in parts]
    vecs_c = torch.stack(parts, 1)  # [Nc, k-1, D]
    cand = vecs_c @ vecs_c.transpose(1, 2)  # [Nc, k-1, k-1], candidate-only entries
    out = []
    for s in range(rows.start, rows.stop, chunk):
        q = t[s : min(rows.stop, s + chunk)]
        cross = torch.stack([q @ p.T for p in parts], -1)  # [c, Nc, k-1]
        top = torch.cat([(q * q).sum(-1)[:, None, None].expand(-1, cross.shape[1], 1), cross], -1)  # [c, Nc, k]
        rest = torch.cat([cross.unsqueeze(-1), cand.expand(q.shape[0], -1, -1, -1)], -1)  # [c, Nc, k-1, k]
        gram = torch.cat([top.unsqueeze(-2), rest], -2)  # [c, Nc, k, k]
        out.append(torch.linalg.det(gram).abs().sqrt() if kind == "gram" else
                   torch.linalg.eigvalsh(gram)[..., -1].clamp_min(0).sqrt())
    return torch.cat(out)


def bench_similarity(
    kind: str, n: int, d: int, k: int, args: argparse.Namespace, ref_queries: int
) -> dict[str, str]:
    """Time and peak memory of our N x N similarity vs the per-query loop (timed on `ref_queries`, extrapolated)."""
    method = get_method("gram" if kind == "gram" else "pmrl")(MODALITIES[:k]).to(args.device)
    t, *parts = raw_inputs(n, d, k, args.dtype, args.device, seed=1)
    query, cands = {"text": t}, dict(zip(MODALITIES[1:], parts, strict=False))
    loop = gram_loop if kind == "gram" else svdvals_loop
    rows = range(min(ref_queries, n))

    def ours() -> torch.Tensor:
        return method.similarity(query, cands)

    t_ours = median_time(ours, args.device, args.repeats_sim)
    t_ref = median_time(lambda: loop(t, parts, rows), args.device, 1) * n / len(rows)
    fair_rows = range(min(10 * ref_queries, n))
    t_fair = median_time(lambda: batched_reference(kind, t, parts, fair_rows), args.device, 1) * n / len(fair_rows)
    m_ours = peak_bytes(ours, args.device)
    scores = ours()[: len(rows)]
    ref = loop(t, parts, rows)
    fair = batched_reference(kind, t, parts, rows)
    mine = -scores if kind == "gram" else scores
    full_gram = n * n * k * k * 8
    return {
        "N": str(n),
        "D": str(d),
        "k": str(k),
        "ours s": f"{t_ours:.2f}",
        "loop s (extrap.)": f"{t_ref:.1f}",
        "speed-up": ratio(t_ref, t_ours),
        "batched s (extrap.)": f"{t_fair:.1f}",
        "vs batched": ratio(t_fair, t_ours),
        "ours peak MiB": mib(m_ours),
        "N x N scores MiB": mib(n * n * 4),
        "[N,N,k,k] fp64 MiB": mib(full_gram),
        "max|diff|": f"{(mine.float() - ref).abs().max():.1e}",
        "max|diff| vs batched": f"{(mine.float() - fair).abs().max():.1e}",
        "ref queries": str(len(rows)),
    }


# ------------------------------------------------------------------------------------------ scaling


def scaling_rows(args: argparse.Namespace) -> list[dict[str, str]]:
    """Our paths' time at three sizes in each of N (or B) and k."""
    rows = []
    d = 512
    loss_b = (64, 256, 1024) if args.quick else (256, 1024, 4096)
    sim_n = (250, 500, 1000) if args.quick else (1000, 2500, 5000)
    for name in ("pmrl", "clip", "imagebind", "gram"):
        for b, k in [*((b, 3) for b in loss_b), *((loss_b[1], k) for k in (2, 4))]:
            method = get_method(name)(MODALITIES[:k]).to(args.device)
            raw = raw_inputs(b, d, k, args.dtype, args.device)

            def step(method=method, raw=raw, k=k) -> None:
                zs = [x.detach().clone().requires_grad_() for x in raw]
                method.loss(dict(zip(MODALITIES[:k], zs, strict=True))).backward()

            rows.append(
                {
                    "path": f"{name} loss fwd+bwd",
                    "size": f"B={b}",
                    "k": str(k),
                    "ms": f"{1e3 * median_time(step, args.device, 5):.2f}",
                }
            )
    for label, name, params in [
        ("sigma1 similarity", "pmrl", {}),
        ("gram similarity", "gram", {}),
        ("cosine_mean similarity", "clip", {}),
    ]:
        for n, k in [*((n, 3) for n in sim_n), *((sim_n[1], k) for k in (2, 4))]:
            method = get_method(name)(MODALITIES[:k], **params).to(args.device)
            t, *parts = raw_inputs(n, d, k, args.dtype, args.device, seed=2)
            cands = dict(zip(MODALITIES[1:], parts, strict=False))

            def sim(method=method, t=t, cands=cands) -> None:
                method.similarity({"text": t}, cands)

            rows.append(
                {
                    "path": label,
                    "size": f"N={n}",
                    "k": str(k),
                    "ms": f"{1e3 * median_time(sim, args.device, 3):.1f}",
                }
            )
    return rows


# ------------------------------------------------------------------------------------------ output


def table(rows: list[dict[str, str]]) -> str:
    """Rows as a markdown table."""
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    lines += ["| " + " | ".join(r[h] for h in head) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    """Run the selected rows and print markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--only", nargs="+", choices=["pmrl-loss", "gram-sim", "sigma1-sim", "scaling"])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.dtype_name, args.dtype = args.dtype, DTYPES[args.dtype]
    args.repeats_sim = 1 if args.quick else 3
    selected = set(args.only or ["pmrl-loss", "gram-sim", "sigma1-sim", "scaling"])
    torch.manual_seed(0)
    device_name = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    )
    print(
        f"# bench_methods  torch {torch.__version__}  device {args.device} ({device_name})  "
        f"threads {torch.get_num_threads()}  cpus {os.cpu_count()}  dtype {args.dtype_name}  quick {args.quick}\n"
    )
    if "pmrl-loss" in selected:
        sizes = [(64, 512, 4), (128, 512, 3)] if args.quick else [(256, 512, 4), (1024, 512, 3)]
        print("## PMRL loss forward + backward vs official full SVD\n")
        print(table([bench_pmrl_loss(b, d, k, args, 4 if args.quick else 20) for b, d, k in sizes]) + "\n")
    n, ref_q = (500, 10) if args.quick else (5000, 100)
    if "gram-sim" in selected:
        print("## GRAM similarity text vs (vision, audio) vs per-query torch.linalg.det loop\n")
        print(table([bench_similarity("gram", n, 512, 3, args, ref_q)]) + "\n")
    if "sigma1-sim" in selected:
        print("## PMRL sigma_1 similarity vs per-query torch.linalg.svdvals loop\n")
        print(table([bench_similarity("sigma1", n, 512, 3, args, ref_q // 2)]) + "\n")
    if "scaling" in selected:
        print("## Scaling (ours; D = 512)\n")
        print(table(scaling_rows(args)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
