"""Embedded synthetic data: a shared latent per instance seen through fixed random non-linear maps (retrieval),
and open-ended questions about that latent whose answers need both media (QA)."""

from __future__ import annotations

import dataclasses
import math
import zlib
from typing import Any

import torch

from pmrl_bench.data.features import QuestionFeatures, SplitFeatures, single_row_features
from pmrl_bench.errors import BenchError
from pmrl_bench.registry import register_adapter


def _generator(*parts: object) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32("/".join(map(str, parts)).encode()))


def _modality_map(world_seed: int, name: str, in_dim: int, hidden: int, out_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = _generator(world_seed, "map", name)
    w1 = torch.randn(in_dim, hidden, generator=g) / math.sqrt(in_dim)
    w2 = torch.randn(hidden, out_dim, generator=g) / math.sqrt(hidden)
    return w1, w2


def generate(split: str, seed: int, sizes: dict[str, int], latent_dim: int, hidden: int,
             modalities: dict[str, dict[str, Any]], views: dict[str, list[int]] | None = None) -> tuple[SplitFeatures, torch.Tensor]:
    """One split and its latent z `[n, latent_dim]` (see `synthetic`); `views[m] = [start, stop)` limits the
    latent dimensions modality m sees (default: all)."""
    if split not in sizes:
        raise BenchError(f"synthetic data has splits {sorted(sizes)}, not {split!r}")
    if not modalities:
        raise BenchError("synthetic adapter needs `modalities` (name -> dim, nuisance, nuisance_scale, noise)")
    views = views or {}
    n = sizes[split]
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10**7:
        raise BenchError(f"synthetic data.sizes.{split} must be an integer in [1, 10^7], got {n!r}")
    g = _generator(seed, "data", split)
    z = torch.randn(n, latent_dim, generator=g)
    ids = tuple(f"{split}-{i:05d}" for i in range(n))
    feats = {}
    for name in sorted(modalities):
        p = modalities[name]
        k = int(p.get("nuisance", 0))
        nuisance = float(p.get("nuisance_scale", 1.0)) * torch.randn(n, k, generator=g)
        start, stop = views.get(name, (0, latent_dim))
        w1, w2 = _modality_map(seed, name, stop - start + k, hidden, int(p["dim"]))
        x = torch.tanh(torch.cat([z[:, start:stop], nuisance], dim=1) @ w1) @ w2
        x = x + float(p.get("noise", 0.0)) * torch.randn(x.shape, generator=g)
        feats[name] = single_row_features(x.float(), ids)
    info = {"generator": "synthetic", "seed": seed, "n_items": n, "sizes": dict(sizes)}
    if views:
        info["views"] = {m: list(v) for m, v in sorted(views.items())}
    return SplitFeatures(split=split, item_ids=ids, modalities=feats, info=info), z


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
    return generate(split, seed, sizes or {"train": 4000, "val": 400, "test": 1000}, latent_dim, hidden, modalities or {})[0]


SIGNS = ("-", "+")


def question_directions(seed: int, n_types: int, latent_dim: int, views: dict[str, list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit directions `[T, latent_dim]` per question type: u on the latent dims only vision sees, v on those only
    audio sees."""
    (v0, v1), (a0, a1) = views["vision"], views["audio"]
    only_vision = [d for d in range(v0, v1) if not a0 <= d < a1]
    only_audio = [d for d in range(a0, a1) if not v0 <= d < v1]
    if not only_vision or not only_audio:
        raise BenchError("synthetic_qa: `views` must give vision and audio latent dimensions the other does not see")
    g = _generator(seed, "questions")
    u, v = torch.zeros(n_types, latent_dim), torch.zeros(n_types, latent_dim)
    u[:, only_vision] = torch.randn(n_types, len(only_vision), generator=g)
    v[:, only_audio] = torch.randn(n_types, len(only_audio), generator=g)
    return torch.nn.functional.normalize(u, dim=1), torch.nn.functional.normalize(v, dim=1)


@register_adapter("synthetic_qa")
def synthetic_qa(
    split: str,
    seed: int = 4321,
    sizes: dict[str, int] | None = None,
    latent_dim: int = 16,
    hidden: int = 128,
    modalities: dict[str, dict[str, Any]] | None = None,
    views: dict[str, list[int]] | None = None,
    n_types: int = 2,
    questions_per_item: int = 2,
    question_noise: float = 0.1,
) -> SplitFeatures:
    """The synthetic task's split (vision and audio each seeing part of the latent) plus open-ended questions.

    A question of type t about item i has answer sign(z_i . u_t) sign(z_i . v_t) (four answers, "++", "+-", ...):
    u_t lies on latent dimensions only vision sees, v_t on those only audio sees, so each medium gives one
    half of the answer and the question alone gives the type only (accuracy near the 25% prior). The question
    features are a fixed random text-space vector per type plus Gaussian noise of scale `question_noise`.
    """
    if not views or "vision" not in views or "audio" not in views:
        raise BenchError("synthetic_qa needs `views` for vision and audio ([start, stop) latent dimensions)")
    feats, z = generate(split, seed, sizes or {"train": 4000, "val": 400, "test": 1000}, latent_dim, hidden, modalities or {}, views)
    u, v = question_directions(seed, n_types, latent_dim, views)
    g = _generator(seed, "questions", split)
    n_q = feats.n_items * questions_per_item
    item = torch.arange(n_q) // questions_per_item
    qtype = torch.randint(0, n_types, (n_q,), generator=g)
    bit_v = (z[item] * u[qtype]).sum(dim=1) > 0
    bit_a = (z[item] * v[qtype]).sum(dim=1) > 0
    text_dim = feats.modalities["text"].dim
    type_vec = torch.randn(n_types, text_dim, generator=_generator(seed, "question-texts")) / math.sqrt(text_dim) * 4
    question = type_vec[qtype] + question_noise * torch.randn(n_q, text_dim, generator=g)
    questions = QuestionFeatures(
        ids=tuple(f"{feats.item_ids[i]}#q{k % questions_per_item}" for k, i in enumerate(item.tolist())),
        item_index=item, question=question.float(),
        answers=tuple(SIGNS[a] + SIGNS[b] for a, b in zip(bit_v.tolist(), bit_a.tolist(), strict=True)),
        qtypes=tuple(f"type{t}" for t in qtype.tolist()),
    )
    return dataclasses.replace(feats, questions=questions, info={**feats.info, "n_questions": n_q, "n_types": n_types})
