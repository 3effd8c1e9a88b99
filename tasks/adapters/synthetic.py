"""Embedded synthetic data: a shared latent per instance seen through fixed random non-linear maps."""

from __future__ import annotations

import math
import zlib
from typing import Any

import torch

from pmrl_bench.data.features import SplitFeatures, single_row_features
from pmrl_bench.errors import BenchError
from pmrl_bench.registry import register_adapter


def _generator(*parts: object) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32("/".join(map(str, parts)).encode()))


def _modality_map(world_seed: int, name: str, in_dim: int, hidden: int, out_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = _generator(world_seed, "map", name)
    w1 = torch.randn(in_dim, hidden, generator=g) / math.sqrt(in_dim)
    w2 = torch.randn(hidden, out_dim, generator=g) / math.sqrt(hidden)
    return w1, w2


@register_adapter("synthetic")
def synthetic(
    split: str,
    seed: int = 1234,
    sizes: dict[str, int] | None = None,
    latent_dim: int = 16,
    hidden: int = 128,
    modalities: dict[str, dict[str, Any]] | None = None,
) -> SplitFeatures:
    """Generate one split from a seed: latent z, per-modality nuisance, fixed random MLP map, additive noise.

    Modality m of instance i is x_m = tanh([z_i, s_m * n_mi] W1_m) W2_m + e_m * eps, where z_i is shared by
    all modalities, n_mi is modality-specific nuisance (dimension `nuisance`, scale `nuisance_scale`) and
    eps is Gaussian noise of scale `noise`. The maps depend only on `seed` (the task's world), the data
    on (`seed`, split), so every run of every method sees the same instances.
    """
    sizes = sizes or {"train": 4000, "test": 1000}
    if split not in sizes:
        raise BenchError(f"synthetic data has splits {sorted(sizes)}, not {split!r}")
    if not modalities:
        raise BenchError("synthetic adapter needs `modalities` (name -> dim, nuisance, nuisance_scale, noise)")
    n = int(sizes[split])
    g = _generator(seed, "data", split)
    z = torch.randn(n, latent_dim, generator=g)
    ids = tuple(f"{split}-{i:05d}" for i in range(n))
    feats = {}
    for name in sorted(modalities):
        p = modalities[name]
        k = int(p.get("nuisance", 0))
        nuisance = float(p.get("nuisance_scale", 1.0)) * torch.randn(n, k, generator=g)
        w1, w2 = _modality_map(seed, name, latent_dim + k, hidden, int(p["dim"]))
        x = torch.tanh(torch.cat([z, nuisance], dim=1) @ w1) @ w2
        x = x + float(p.get("noise", 0.0)) * torch.randn(x.shape, generator=g)
        feats[name] = single_row_features(x.float(), ids)
    info = {"generator": "synthetic", "seed": seed, "n_items": n, "sizes": dict(sizes)}
    return SplitFeatures(split=split, item_ids=ids, modalities=feats, info=info)
