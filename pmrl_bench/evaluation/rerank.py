"""The shared re-ranker: a matching head trained on a method's frozen embeddings re-ranks its top K by match probability.

As in the VAST-family protocol (image-text matching with hard negatives): for each train batch the method's
own similarity mines, per query, `negatives` candidate tuples drawn with probability proportional to
softmax(similarity / its row std) + 1e-4 with the positive zeroed; the head learns positive vs mined negative with a
binary cross-entropy. At test the first stage's top K candidates of each query are re-ranked by the head's
match probability alone; a query whose match is outside the top K keeps its first-stage rank (> K).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pmrl_bench.data.features import SplitFeatures
from pmrl_bench.errors import BenchError
from pmrl_bench.evaluation.retrieval import (
    EvalOutput,
    check_direction,
    direction_embeddings,
    direction_output,
    score_function,
)
from pmrl_bench.evaluation.robustness import noise_seed
from pmrl_bench.task import RetrievalDirection
from pmrl_bench.train.heads import ProjectionHeads
from pmrl_bench.train.losses import unit
from pmrl_bench.train.method import Method
from pmrl_bench.train.trainer import RowSampler

MINING_FLOOR = 1e-4  # added to softmax(similarity) so that every negative can be drawn (the official miner)
QUERY_CHUNK = 256


def rerank_prefix(direction: str) -> str:
    """Metric prefix of a direction after re-ranking, e.g. 't2va.rerank'."""
    return f"{direction}.rerank"


class MatchingHead(nn.Module):
    """MLP on [query, each candidate modality, every pairwise elementwise product] of unit embeddings -> match logit."""

    def __init__(self, n_vectors: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.pairs = list(itertools.combinations(range(n_vectors), 2))
        self.mlp = nn.Sequential(
            nn.Linear((n_vectors + len(self.pairs)) * dim, hidden), nn.GELU(), nn.Linear(hidden, 1)
        )

    def forward(self, vectors: Sequence[Tensor]) -> Tensor:
        """Match logits `[...]` of tuples given as unit vectors `[..., D]` (query first)."""
        parts = [*vectors, *(vectors[a] * vectors[b] for a, b in self.pairs)]
        return self.mlp(torch.cat(parts, -1)).squeeze(-1)


def mine_negatives(scores: Tensor, n: int, generator: torch.Generator) -> Tensor:
    """`[B, n]` negative columns per row, drawn with p ~ softmax(row / its std) + MINING_FLOOR, the positive zeroed.

    Dividing by each row's standard deviation makes the miner equally sharp for every method's score range
    (sigma_1 spans [1, sqrt k], cosines [-1, 1]); the official miner's logits are temperature-scaled cosines.
    """
    x = scores.double()
    weights = torch.softmax(x / x.std(1, keepdim=True).clamp_min(1e-12), dim=1) + MINING_FLOOR
    weights.fill_diagonal_(0)
    return torch.multinomial(weights, n, replacement=n >= scores.shape[1], generator=generator)


def train_matching_head(
    method: Method, qmod: str, query: Tensor, sampler: RowSampler, cands: dict[str, Tensor],
    settings: dict[str, Any], seed: int,
) -> MatchingHead:
    """Fit the matching head on train embeddings (unit, sign-calibrated, frozen) with mined hard negatives.

    `query` holds every query row, `sampler` draws one row per item; `cands` one row per item.
    """
    n_items = len(next(iter(cands.values())))
    torch.manual_seed(seed)
    head = MatchingHead(1 + len(cands), query.shape[1], settings["hidden"])
    optimizer = torch.optim.AdamW(head.parameters(), lr=settings["lr"])
    generator = torch.Generator().manual_seed(seed)
    fn = score_function(method, method.primary_score)
    bs, k = min(settings["batch_size"], n_items), settings["negatives"]
    with torch.enable_grad():  # evaluation runs under no_grad
        _fit(head, optimizer, method, qmod, query, sampler, cands, fn, bs, k, settings["epochs"], generator)
    head.eval()
    return head


def _fit(head: MatchingHead, optimizer: torch.optim.Optimizer, method: Method, qmod: str, query: Tensor,
         sampler: RowSampler, cands: dict[str, Tensor], fn: Any, bs: int, k: int, epochs: int,
         generator: torch.Generator) -> None:
    n_items = len(next(iter(cands.values())))
    for _ in range(epochs):
        perm = torch.randperm(n_items, generator=generator)
        for b in range(max(1, n_items // bs)):
            items = perm[b * bs : (b + 1) * bs]
            q = query[sampler.rows(items, generator)]
            c = {m: v[items] for m, v in cands.items()}
            with torch.no_grad():
                neg = mine_negatives(fn({qmod: q}, c), k, generator)  # [B, k]
            pos_logit = head([q, *c.values()])
            neg_logit = head([q.unsqueeze(1).expand(-1, k, -1), *(v[neg] for v in c.values())])
            logits = torch.cat([pos_logit, neg_logit.reshape(-1)])
            target = torch.cat([torch.ones_like(pos_logit), torch.zeros_like(neg_logit.reshape(-1))])
            loss = F.binary_cross_entropy_with_logits(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


@torch.no_grad()
def rerank_ranks(
    method: Method, head: MatchingHead, qmod: str, query: Tensor, query_item: Tensor, cands: dict[str, Tensor], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(first-stage, re-ranked) 1-based ranks of each query's item; ties count against the method in both."""
    fn = score_function(method, method.primary_score)
    first, second = [], []
    for start in range(0, len(query), QUERY_CHUNK):
        q, item = query[start : start + QUERY_CHUNK], query_item[start : start + QUERY_CHUNK]
        scores = fn({qmod: q}, cands)
        pos = scores.gather(1, item.view(-1, 1))
        rank1 = (scores >= pos).sum(1)
        top = scores.topk(k, dim=1).indices  # [n, K]
        logits = head([q.unsqueeze(1).expand(-1, k, -1), *(v[top] for v in cands.values())])
        inside = top == item.view(-1, 1)
        pos_logit = logits.masked_fill(~inside, -torch.inf).amax(1, keepdim=True)
        rank2 = 1 + ((logits >= pos_logit) & ~inside).sum(1)
        first.append(rank1)
        second.append(torch.where(inside.any(1), rank2, rank1))
    return torch.cat(first).numpy(), torch.cat(second).numpy()


def check_k(settings: dict[str, Any] | None, n_candidates: int) -> None:
    """Refuse (before training) a re-rank depth larger than the test candidate set."""
    if settings is not None and settings["k"] > n_candidates:
        raise BenchError(
            f"--set evaluation.rerank.k={settings['k']}: the test split has only {n_candidates} candidates; "
            f"choose k between 1 and {n_candidates}"
        )


def evaluate_rerank(
    method: Method,
    heads: ProjectionHeads,
    train: SplitFeatures,
    test: SplitFeatures,
    directions: Sequence[RetrievalDirection],
    settings: dict[str, Any],
    metric_names: Sequence[str],
    device: str,
    seed: int,
    signs: dict[str, dict[str, float]],
    query_group: str | None = None,
) -> EvalOutput:
    """Train one matching head per direction on the train split, re-rank the test top K: metrics and ranks."""
    out = EvalOutput()
    for i, d in enumerate(directions):
        qmod, queried = check_direction(test, d)
        check_k(settings, test.n_items)
        tq, tc = direction_embeddings(heads, train, qmod, d.candidates, device, signs[d.name])
        for m in d.candidates:
            if not train.modalities[m].one_row_per_item(train.n_items):
                raise BenchError(f"re-ranker: train modality {m!r} of {d.name} needs one row per item")
        head = train_matching_head(
            method, qmod, unit(tq).cpu(), RowSampler(train.modalities[qmod], train.n_items),
            {m: unit(v).cpu() for m, v in tc.items()}, settings, noise_seed(seed, 100 + i),
        )
        query, cands = direction_embeddings(heads, queried, qmod, d.candidates, device, signs[d.name])
        _, ranks = rerank_ranks(method, head, qmod, unit(query).cpu(), queried.modalities[qmod].item_index,
                                {m: unit(v).cpu() for m, v in cands.items()}, settings["k"])
        out.update(direction_output(rerank_prefix(d.name), ranks, queried, qmod, d.candidates, metric_names, query_group))
    out.protocol["rerank"] = {
        **settings, "head": "MLP on [query, candidates, pairwise products] of unit embeddings",
        "mining": f"softmax(similarity / row std) + {MINING_FLOOR}, positive zeroed, in-batch", "score": method.primary_score,
        "prefixes": {d.name: rerank_prefix(d.name) for d in directions},
    }
    return out
