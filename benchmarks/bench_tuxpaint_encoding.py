"""Encoding time of the real Tux Paint set (726 stamps of the published split) per modality, no cache.

Each packaged encoder encodes every kept item of both splits once (after building the encoder and one
warm-up batch); prints seconds, items/s and the share of the total, plus the thread count, so figures from
different machines can be compared. Needs the data and encoders (`python -m pmrl_bench data prepare tuxpaint`).

Usage: python benchmarks/bench_tuxpaint_encoding.py [--threads N] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import time

import torch

from pmrl_bench.data.encoders import build_encoder
from pmrl_bench.data.encoding import run_encoder
from pmrl_bench.registry import get_adapter
from pmrl_bench.task import load_task


def main() -> None:
    """Time each modality's encoder over the whole published split."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = load_task("tuxpaint")
    adapter = get_adapter("tuxpaint")
    items = [i for split in ("train", "test") for i in adapter(split=split, data_dir=args.data_dir).items]
    rows = []
    for modality, enc_spec in spec.encoders.items():
        encoder = build_encoder(dict(enc_spec))
        inputs = [i.texts[0] for i in items] if modality == "text" else [i.media[modality] for i in items]
        batch = 256 if modality == "text" else 16
        run_encoder(encoder, inputs[:batch], batch, "warm-up", progress=False)
        start = time.perf_counter()
        out = run_encoder(encoder, inputs, batch, modality, progress=False)
        rows.append((modality, enc_spec["family"], out.shape[1], time.perf_counter() - start))
    total = sum(r[3] for r in rows)
    print(f"{len(items)} stamps, torch threads {args.threads}")
    print(f"{'modality':<8} {'family':<18} {'dim':>5} {'seconds':>8} {'items/s':>8} {'share':>6}")
    for modality, family, dim, seconds in rows:
        print(f"{modality:<8} {family:<18} {dim:>5} {seconds:>8.1f} {len(items) / seconds:>8.1f} {seconds / total:>6.0%}")
    print(f"{'total':<8} {'':<18} {'':>5} {total:>8.1f}")


if __name__ == "__main__":
    main()
