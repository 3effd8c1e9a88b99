"""Evaluation of trained heads + method: retrieval ranks in bounded-memory chunks, metrics, eval-set digests."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pmrl_bench.data.features import ModalityFeatures, SplitFeatures
from pmrl_bench.errors import BenchError
from pmrl_bench.metrics import RANK, compute_metrics
from pmrl_bench.task import RetrievalDirection, TaskSpec
from pmrl_bench.train.heads import ProjectionHeads
from pmrl_bench.train.method import Method

TIE_RULE = "pessimistic: rank = 1 + #irrelevant candidates scoring >= the best relevant candidate"
SCORE_BUDGET = 1 << 22  # score-matrix entries per chunk (16 MiB of float32)


@dataclass
class EvalOutput:
    """Everything an evaluator contributes to a result record."""

    metrics: dict[str, float] = field(default_factory=dict)
    per_query: dict[str, list[int]] = field(default_factory=dict)
    eval_set: dict[str, str] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)

    def update(self, other: EvalOutput) -> None:
        """Merge another evaluator's output into this one."""
        self.metrics.update(other.metrics)
        self.per_query.update(other.per_query)
        self.eval_set.update(other.eval_set)
        self.protocol.update(other.protocol)


def eval_set_digest(query_ids: Sequence[str], candidate_ids: Sequence[str]) -> str:
    """sha256 of the ordered query ids, a line '#', then the ordered candidate ids (one per line)."""
    text = "\n".join([*query_ids, "#", *candidate_ids])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@torch.no_grad()
def project_rows(heads: ProjectionHeads, modality: str, values: Tensor, device: str, batch: int = 8192) -> Tensor:
    """Head outputs of modality `modality` for raw feature rows."""
    head = heads.heads[modality]
    out = [head(values[i : i + batch].to(device)) for i in range(0, len(values), batch)]
    return torch.cat(out) if out else torch.empty(0, 0)


def embed_rows(heads: ProjectionHeads, modality: str, feats: ModalityFeatures, device: str) -> Tensor:
    """Head outputs for every row of one modality."""
    return project_rows(heads, modality, feats.values, device)


def default_chunk(n_candidates: int) -> int:
    """Queries per chunk so that one chunk of scores stays within SCORE_BUDGET entries."""
    return max(1, min(4096, SCORE_BUDGET // max(1, n_candidates)))


@torch.no_grad()
def retrieval_ranks(
    score_chunk: Callable[[int, int], Tensor],
    query_item: Tensor,
    candidate_item: Tensor,
    chunk: int | None = None,
) -> np.ndarray:
    """1-based rank of the best relevant candidate for every query, computed chunk by chunk.

    `score_chunk(start, stop)` returns the `[stop - start, Nc]` scores of those queries; candidate j is
    relevant to query q when `candidate_item[j] == query_item[q]`. Ties count against the method.
    """
    n_q, n_c = len(query_item), len(candidate_item)
    chunk = chunk or default_chunk(n_c)
    cand = candidate_item.view(1, -1)
    # one relevant column per query (unique candidate items, the usual case): gather the relevant score and
    # count every candidate scoring >= it (the relevant one itself included) -- one bool chunk of extra memory
    sorted_items, order = torch.sort(candidate_item)
    unique = n_c == 0 or bool((sorted_items[1:] != sorted_items[:-1]).all())
    ranks = np.empty(n_q, dtype=np.int64)
    for start in range(0, n_q, chunk):
        stop = min(n_q, start + chunk)
        scores = score_chunk(start, stop)
        if scores.shape != (stop - start, n_c):
            raise RuntimeError(f"similarity returned shape {tuple(scores.shape)}, expected {(stop - start, n_c)}")
        if bool(torch.isnan(scores).any()):
            raise RuntimeError("similarity produced NaN scores")
        q = query_item[start:stop]
        if unique:
            pos = torch.searchsorted(sorted_items, q).clamp_max(max(n_c - 1, 0))
            if not bool((sorted_items[pos] == q).all()):
                raise RuntimeError("a query has no relevant candidate")
            best = scores.gather(1, order[pos].view(-1, 1).to(scores.device))
            ranks[start:stop] = (scores >= best).sum(dim=1).cpu().numpy()
            continue
        relevant = q.view(-1, 1).to(scores.device) == cand.to(scores.device)
        if not bool(relevant.any(dim=1).all()):
            raise RuntimeError("a query has no relevant candidate")
        best = scores.masked_fill(~relevant, -torch.inf).amax(dim=1, keepdim=True)
        beaten = ((scores >= best) & ~relevant).sum(dim=1)
        ranks[start:stop] = (1 + beaten).cpu().numpy()
    return ranks


def evaluate_direction(
    method: Method,
    heads: ProjectionHeads,
    split: SplitFeatures,
    direction: RetrievalDirection,
    metric_names: Sequence[str],
    device: str,
    query_group: str | None = None,
) -> EvalOutput:
    """Rank every query row of `direction.query` against every item's candidate tuple."""
    if len(direction.query) != 1:
        raise BenchError(f"retrieval {direction.name!r}: exactly one query modality is supported")
    qmod = direction.query[0]
    q_feats = split.modalities[qmod]
    for m in direction.candidates:
        if not split.modalities[m].one_row_per_item(split.n_items):
            raise BenchError(f"retrieval {direction.name!r}: candidate modality {m!r} needs exactly one row per item")
    query = embed_rows(heads, qmod, q_feats, device)
    candidates = {m: embed_rows(heads, m, split.modalities[m], device) for m in direction.candidates}
    ranks = retrieval_ranks(
        lambda a, b: method.similarity({qmod: query[a:b]}, candidates),
        q_feats.item_index,
        torch.arange(split.n_items),
    )
    values = compute_metrics(metric_names, RANK, ranks)
    p = direction.name
    per_query = {f"{p}/rank": ranks.tolist()}
    if query_group:  # queries of one item form one independent unit for the statistics
        per_query[f"{p}/group"] = q_feats.item_index.tolist()
    return EvalOutput(
        metrics={f"{p}/{m}": values[m] for m in metric_names},
        per_query=per_query,
        eval_set={p: eval_set_digest(q_feats.row_ids, split.item_ids)},
        protocol={p: {"query": qmod, "candidates": list(direction.candidates),
                      "n_queries": len(ranks), "n_candidates": split.n_items}},
    )


def evaluate(
    spec: TaskSpec,
    method: Method,
    heads: ProjectionHeads,
    train: SplitFeatures,
    test: SplitFeatures,
    seed: int,
    device: str = "cpu",
) -> EvalOutput:
    """All retrieval directions, classification and QA protocols of a task on its test split."""
    out = EvalOutput(protocol={"tie_rule": TIE_RULE, "split": spec.splits["test"]})
    with torch.no_grad():
        for direction in spec.retrieval:
            out.update(evaluate_direction(method, heads, test, direction, spec.metrics, device, spec.query_group))
    if spec.classification:
        from pmrl_bench.evaluate.classification import evaluate_classification

        def embed(modality: str, split: SplitFeatures) -> Tensor:
            return embed_rows(heads, modality, split.modalities[modality], device)

        for cls_spec in spec.classification:
            result = evaluate_classification(method, embed, train, test, cls_spec, seed)
            out.update(EvalOutput(**result))
    if spec.qa:
        from pmrl_bench.evaluate.qa import evaluate_qa

        for qa_spec in spec.qa:
            result = evaluate_qa(method, lambda m, rows: project_rows(heads, m, rows, device), train, test, qa_spec, seed)
            out.update(EvalOutput(**result))
    return out


def evaluate_primary(
    spec: TaskSpec,
    method: Method,
    heads: ProjectionHeads,
    train: SplitFeatures,
    split: SplitFeatures,
    seed: int,
    device: str = "cpu",
) -> EvalOutput:
    """Only the task's primary metric (its one direction or protocol) on `split`: what validation selects on."""
    prefix, metric = spec.primary_metric.split("/", 1)
    with torch.no_grad():
        for direction in spec.retrieval:
            if direction.name == prefix:
                return evaluate_direction(method, heads, split, direction, [metric], device, spec.query_group)
    from pmrl_bench.evaluate.classification import evaluate_classification

    cls_spec = next(c for c in spec.classification if c.name == prefix)
    result = evaluate_classification(
        method, lambda m, s: embed_rows(heads, m, s.modalities[m], device), train, split, cls_spec, seed
    )
    return EvalOutput(**result)
