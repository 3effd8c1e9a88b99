"""Score calibration from the train split: per-modality signs, pair cosines and the ranks-positives-last warning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from pmrl_bench.data.features import SplitFeatures
from pmrl_bench.evaluation.retrieval import embed_rows, offered_scores, score_function
from pmrl_bench.evaluation.signs import (
    WARN_PERCENTILE,
    first_rows,
    pair_cosines,
    positive_percentile,
    sign_of,
)
from pmrl_bench.task import ClassificationSpec, QASpec, RetrievalDirection, TaskSpec
from pmrl_bench.train.heads import ProjectionHeads
from pmrl_bench.train.losses import unit
from pmrl_bench.train.method import Method

CHECK_ITEMS = 512  # train items whose positives are ranked among each other for the warning


@dataclass
class Calibration:
    """Signs per (query modality, candidate modality) and the record's `protocol["score"]` entry."""

    signs: dict[tuple[str, str], float]
    protocol: dict[str, Any]

    def signs_for(self, direction: RetrievalDirection) -> dict[str, float]:
        """Sign of each candidate modality of `direction` relative to its query modality."""
        q = direction.query[0]
        return {m: self.signs.get((q, m), 1.0) for m in direction.candidates}


def protocol_pairs(protocol: ClassificationSpec | QASpec) -> list[tuple[str, str]]:
    """(query, candidate) modality pairs a zero-shot protocol scores with the method's similarity: a zero-shot
    classification's input against its prompts, a multiple-choice question's candidates against its media;
    none for a fitted head (linear probe, open-ended QA)."""
    if isinstance(protocol, ClassificationSpec):
        return [(protocol.input, protocol.prompt_modality)] if protocol.mode == "zero_shot" else []
    return [(protocol.candidates, m) for m in protocol.media] if protocol.mode == "multiple_choice" else []


def zero_shot_pairs(spec: TaskSpec) -> list[tuple[str, str]]:
    """The pairs of every zero-shot protocol of the task (`protocol_pairs`)."""
    return sorted({pair for protocol in (*spec.classification, *spec.qa) for pair in protocol_pairs(protocol)})


def _pair_cosine_means(
    heads: ProjectionHeads, train: SplitFeatures, pairs: list[tuple[str, str]], device: str
) -> tuple[dict[str, Tensor], dict[tuple[str, str], tuple[float, float]]]:
    """Unit train embeddings of the pairs' modalities (each embedded once) and the (mean positive, mean
    negative) cosine of each pair."""
    mods = sorted({m for pair in pairs for m in pair})
    emb = {m: unit(embed_rows(heads, m, train.modalities[m], device)).cpu() for m in mods}
    cosines = {(q, m): pair_cosines(emb[q], train.modalities[q].item_index, emb[m], train.modalities[m].item_index)
               for q, m in pairs}
    return emb, cosines


@torch.no_grad()
def train_signs(
    method: Method, heads: ProjectionHeads, train: SplitFeatures, pairs: list[tuple[str, str]], device: str
) -> dict[tuple[str, str], float]:
    """Sign of each (query, candidate) modality pair from the train positives, as retrieval calibrates; 1.0 for a
    method whose objective sees signs, or a pair with a modality the train split lacks."""
    signs = {pair: 1.0 for pair in pairs}
    if method.sign_invariant:
        present = [(q, m) for q, m in pairs if q in train.modalities and m in train.modalities]
        _, cosines = _pair_cosine_means(heads, train, present, device)
        signs.update({pair: sign_of(pos) for pair, (pos, _) in cosines.items()})
    return signs


@torch.no_grad()
def calibrate_scores(
    spec: TaskSpec, method: Method, heads: ProjectionHeads, train: SplitFeatures, device: str
) -> Calibration:
    """Signs (applied only for sign-invariant methods), mean positive/negative cosine per pair, train check."""
    pairs = sorted({(d.query[0], m) for d in spec.retrieval for m in d.candidates})
    emb, cosines = _pair_cosine_means(heads, train, pairs, device)
    mods = sorted(emb)
    stats, signs = {}, {}
    for (q, m), (pos, neg) in cosines.items():
        sign = sign_of(pos) if method.sign_invariant else 1.0
        signs[(q, m)] = sign
        stats[f"{q}-{m}"] = {"sign": sign, "pos_cos": pos, "neg_cos": neg}
    n = min(CHECK_ITEMS, train.n_items)
    rows = {m: first_rows(train.modalities[m], train.n_items)[:n] for m in mods}
    percentile = {}
    for d in spec.retrieval:
        q = d.query[0]
        fn = score_function(method, method.primary_score)
        cands = {m: emb[m][rows[m]].to(device) * signs[(q, m)] for m in d.candidates}
        percentile[d.name] = positive_percentile(fn({q: emb[q][rows[q]].to(device)}, cands))
    bad = [name for name, value in percentile.items() if value > WARN_PERCENTILE]
    warning = (
        f"score {method.primary_score!r} ranks train positives below most negatives on {', '.join(bad)}"
        if bad else None
    )
    protocol = {
        "primary": method.primary_score,
        "offered": offered_scores(method),
        "sign_calibrated": method.sign_invariant,
        "pairs": stats,
        "train_positive_percentile": percentile,
        "train_check_items": n,
        "warning": warning,
    }
    return Calibration(signs=signs, protocol=protocol)
