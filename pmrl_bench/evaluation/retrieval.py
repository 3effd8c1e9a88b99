"""Evaluation of trained heads + method: retrieval ranks in bounded-memory chunks, metrics, eval-set digests."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pmrl_bench.data.features import ModalityFeatures, SplitFeatures, query_rows
from pmrl_bench.errors import BenchError
from pmrl_bench.metrics import RANK, compute_metrics
from pmrl_bench.task import RetrievalDirection, TaskSpec
from pmrl_bench.train.heads import ProjectionHeads
from pmrl_bench.train.method import Method

TIE_RULE = "pessimistic: rank = 1 + #irrelevant candidates scoring >= the best relevant candidate"
SCORE_BUDGET = 1 << 22  # score-matrix entries per chunk (16 MiB of float32)
EXACT_COUNT = 1 << 24  # float32 counts 0/1 values exactly below this many columns


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


def _check_no_nan(scores: Tensor) -> None:
    """Raise if a score is NaN: one read pass (row sums), the exact element test only where a sum is NaN (+inf - inf)."""
    sums = scores.sum(dim=1)
    suspect = torch.isnan(sums)
    if bool(suspect.any()) and bool(torch.isnan(scores[suspect]).any()):
        raise RuntimeError("similarity produced NaN scores")


def count_at_least(scores: Tensor, best: Tensor) -> Tensor:
    """Per row, how many scores are >= `best` [rows, 1], computed in place: `scores` is overwritten with 0/1.

    The 0/1 values are summed in floating point (exact below EXACT_COUNT columns in float32, else in float64)
    so that no bool or int64 copy of the chunk is made; the peak stays at the score chunk itself.
    """
    acc = torch.float64 if scores.dtype == torch.float64 or scores.shape[1] >= EXACT_COUNT else torch.float32
    return scores.ge_(best).sum(dim=1, dtype=acc).to(torch.int64)


@torch.no_grad()
def retrieval_ranks(
    score_chunk: Callable[[int, int], Tensor],
    query_item: Tensor,
    candidate_item: Tensor,
    chunk: int | None = None,
) -> np.ndarray:
    """1-based rank of the best relevant candidate for every query, computed chunk by chunk.

    `score_chunk(start, stop)` returns the `[stop - start, Nc]` scores of those queries as a tensor the
    ranking may overwrite (a fresh result, not a view of stored scores); candidate j is relevant to
    query q when `candidate_item[j] == query_item[q]`. Ties count against the method.
    """
    n_q, n_c = len(query_item), len(candidate_item)
    chunk = chunk or default_chunk(n_c)
    cand = candidate_item.view(1, -1)
    # one relevant column per query (unique candidate items, the usual case): gather the relevant score and
    # count every candidate scoring >= it (the relevant one itself included), in place in the score chunk
    sorted_items, order = torch.sort(candidate_item)
    unique = n_c == 0 or bool((sorted_items[1:] != sorted_items[:-1]).all())
    ranks = np.empty(n_q, dtype=np.int64)

    def chunk_ranks(start: int, stop: int) -> np.ndarray:
        # a function so that the chunk's scores are freed before the next chunk is scored (peak: one chunk)
        scores = score_chunk(start, stop)
        if scores.shape != (stop - start, n_c):
            raise RuntimeError(f"similarity returned shape {tuple(scores.shape)}, expected {(stop - start, n_c)}")
        _check_no_nan(scores)
        q = query_item[start:stop]
        if unique:
            pos = torch.searchsorted(sorted_items, q).clamp_max(max(n_c - 1, 0))
            if not bool((sorted_items[pos] == q).all()):
                raise RuntimeError("a query has no relevant candidate")
            best = scores.gather(1, order[pos].view(-1, 1).to(scores.device))
            return count_at_least(scores, best).cpu().numpy()
        relevant = q.view(-1, 1).to(scores.device) == cand.to(scores.device)
        if not bool(relevant.any(dim=1).all()):
            raise RuntimeError("a query has no relevant candidate")
        best = scores.masked_fill(~relevant, -torch.inf).amax(dim=1, keepdim=True)
        return (1 + ((scores >= best) & ~relevant).sum(dim=1)).cpu().numpy()

    for start in range(0, n_q, chunk):
        stop = min(n_q, start + chunk)
        ranks[start:stop] = chunk_ranks(start, stop)
    return ranks


def score_function(method: Method, score: str) -> Callable[[dict[str, Tensor], dict[str, Tensor]], Tensor]:
    """The method's ranking function under the named score (`similarity` for its primary one)."""
    if score == method.primary_score:
        return method.similarity
    return lambda query, candidates: method.score_with(score, query, candidates)


def offered_scores(method: Method) -> list[str]:
    """The method's offered scores, primary first."""
    return [method.primary_score, *(s for s in method.scores if s != method.primary_score)]


def check_direction(split: SplitFeatures, direction: RetrievalDirection) -> tuple[str, SplitFeatures]:
    """The direction's one query modality and the split it ranks (its query rows cut to `split.max_queries`, the
    gallery whole), after checking each candidate modality has one row per item."""
    if len(direction.query) != 1:
        raise BenchError(f"retrieval {direction.name!r}: exactly one query modality is supported")
    for m in direction.candidates:
        if not split.modalities[m].one_row_per_item(split.n_items):
            raise BenchError(f"retrieval {direction.name!r}: candidate modality {m!r} needs exactly one row per item")
    return direction.query[0], query_rows(split, direction.query[0])


def direction_output(
    prefix: str, ranks: np.ndarray, split: SplitFeatures, qmod: str, candidates: Sequence[str],
    metric_names: Sequence[str], query_group: str | None = None,
) -> EvalOutput:
    """Metrics, per-query ranks, eval-set digest and sizes of one ranked direction under `prefix`."""
    values = compute_metrics(metric_names, RANK, ranks)
    q_feats = split.modalities[qmod]
    per_query = {f"{prefix}/rank": ranks.tolist()}
    if query_group:  # queries of one item form one independent unit for the statistics
        per_query[f"{prefix}/group"] = q_feats.item_index.tolist()
    return EvalOutput(
        metrics={f"{prefix}/{m}": values[m] for m in metric_names},
        per_query=per_query,
        eval_set={prefix: eval_set_digest(q_feats.row_ids, split.item_ids)},
        protocol={prefix: {"query": qmod, "candidates": list(candidates),
                           "n_queries": len(ranks), "n_candidates": split.n_items}},
    )


def direction_embeddings(
    heads: ProjectionHeads, split: SplitFeatures, qmod: str, candidates: Sequence[str], device: str,
    signs: dict[str, float] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Head outputs of the query rows and of each candidate modality (times its sign, when calibrated)."""
    query = embed_rows(heads, qmod, split.modalities[qmod], device)
    signs = signs or {}
    cands = {m: embed_rows(heads, m, split.modalities[m], device) * signs.get(m, 1.0) for m in candidates}
    return query, cands


def rank_direction(
    method: Method, score: str, query: Tensor, candidates: dict[str, Tensor], qmod: str, split: SplitFeatures
) -> np.ndarray:
    """1-based rank of each query row's item among all items' candidate tuples under `score`."""
    fn = score_function(method, score)
    return retrieval_ranks(
        lambda a, b: fn({qmod: query[a:b]}, candidates),
        split.modalities[qmod].item_index,
        torch.arange(split.n_items),
    )


def evaluate_direction(
    method: Method,
    heads: ProjectionHeads,
    split: SplitFeatures,
    direction: RetrievalDirection,
    metric_names: Sequence[str],
    device: str,
    query_group: str | None = None,
    signs: dict[str, float] | None = None,
    scores: Sequence[str] | None = None,
) -> EvalOutput:
    """Rank every query row against every item's candidate tuple under each of `scores` (default: every offered one).

    The primary score's results use the direction's name as prefix, each other offered score
    `<direction>.<score>`; `signs` multiply the candidate embeddings (sign calibration).
    """
    qmod, split = check_direction(split, direction)
    query, cands = direction_embeddings(heads, split, qmod, direction.candidates, device, signs)
    out = EvalOutput()
    for score in scores or offered_scores(method):
        prefix = direction.name if score == method.primary_score else f"{direction.name}.{score}"
        ranks = rank_direction(method, score, query, cands, qmod, split)
        out.update(direction_output(prefix, ranks, split, qmod, direction.candidates, metric_names, query_group))
    return out


def evaluate_stages(
    spec: TaskSpec, method: Method, heads: ProjectionHeads, train: SplitFeatures, test: SplitFeatures,
    seed: int, device: str, evaluation: dict[str, Any], calibration: Any,
) -> EvalOutput:
    """The optional stages of `evaluation`: robustness levels, then the shared re-ranker."""
    from pmrl_bench.evaluation.rerank import evaluate_rerank
    from pmrl_bench.evaluation.robustness import evaluate_robustness

    signs = {d.name: calibration.signs_for(d) for d in spec.retrieval}
    out = EvalOutput()
    if evaluation.get("robustness"):
        out.update(evaluate_robustness(method, heads, test, spec.retrieval, evaluation["robustness"], spec.metrics,
                                       device, seed, signs, spec.query_group))
    if evaluation.get("rerank"):
        out.update(evaluate_rerank(method, heads, train, test, spec.retrieval, evaluation["rerank"], spec.metrics,
                                   device, seed, signs, spec.query_group))
    return out


def evaluate(
    spec: TaskSpec,
    method: Method,
    heads: ProjectionHeads,
    train: SplitFeatures,
    test: SplitFeatures,
    seed: int,
    device: str = "cpu",
    evaluation: dict[str, Any] | None = None,
    val: SplitFeatures | None = None,
) -> EvalOutput:
    """All retrieval directions (every offered score, sign-calibrated), classification and QA protocols on the test split.

    `evaluation` (the config's section) adds the robustness levels and the shared re-ranker when set; `val`
    (the validation split) chooses the L2 of linear probes and open-ended QA heads.
    """
    from pmrl_bench.evaluation.calibration import calibrate_scores, train_signs, zero_shot_pairs

    out = EvalOutput(protocol={"tie_rule": TIE_RULE, "split": spec.splits["test"]})
    zs_signs = train_signs(method, heads, train, zero_shot_pairs(spec), device)
    with torch.no_grad():
        calibration = calibrate_scores(spec, method, heads, train, device) if spec.retrieval else None
        if calibration is not None:
            out.protocol["score"] = calibration.protocol
        for direction in spec.retrieval:
            signs = calibration.signs_for(direction) if calibration is not None else None
            out.update(evaluate_direction(
                method, heads, test, direction, spec.metrics, device, spec.query_group, signs
            ))
        if calibration is not None and evaluation:
            out.update(evaluate_stages(spec, method, heads, train, test, seed, device, evaluation, calibration))
    if spec.classification:
        from pmrl_bench.evaluation.classification import evaluate_classification

        def embed(modality: str, split: SplitFeatures) -> Tensor:
            return embed_rows(heads, modality, split.modalities[modality], device)

        for cls_spec in spec.classification:
            result = evaluate_classification(method, embed, train, val, test, cls_spec, zs_signs)
            out.update(EvalOutput(**result))
    if spec.qa:
        from pmrl_bench.evaluation.qa import evaluate_qa

        for qa_spec in spec.qa:
            result = evaluate_qa(method, lambda m, rows: project_rows(heads, m, rows, device), train, val, test, qa_spec,
                                 zs_signs)
            out.update(EvalOutput(**result))
    return out


def evaluate_primary(
    spec: TaskSpec,
    method: Method,
    heads: ProjectionHeads,
    train: SplitFeatures,
    split: SplitFeatures,
    device: str = "cpu",
) -> EvalOutput:
    """Only the task's selection metric (`spec.selection_metric`: its primary metric, or the `select_on`
    direction) on `split`: what validation selects on. Retrieval is under the method's primary score with signs
    calibrated on train as at test; a zero-shot classification or multiple-choice protocol is scored as at test."""
    prefix, metric = spec.selection_metric.split("/", 1)
    directions = [*spec.retrieval, *([spec.select_on.direction] if spec.select_on else [])]
    with torch.no_grad():
        for direction in directions:
            if direction.name == prefix:
                signs = None
                if method.sign_invariant:
                    from pmrl_bench.evaluation.calibration import calibrate_scores

                    one = spec.model_copy(update={"retrieval": [direction]})
                    signs = calibrate_scores(one, method, heads, train, device).signs_for(direction)
                return evaluate_direction(method, heads, split, direction, [metric], device, spec.query_group,
                                          signs, [method.primary_score])
    from pmrl_bench.evaluation.calibration import protocol_pairs, train_signs

    for qa_spec in spec.qa:
        if qa_spec.name == prefix:
            from pmrl_bench.evaluation.qa import evaluate_qa

            signs = train_signs(method, heads, train, protocol_pairs(qa_spec), device)
            return EvalOutput(**evaluate_qa(method, lambda m, rows: project_rows(heads, m, rows, device), train,
                                            None, split, qa_spec, signs))
    from pmrl_bench.evaluation.classification import evaluate_classification

    cls_spec = next(c for c in spec.classification if c.name == prefix)
    signs = train_signs(method, heads, train, protocol_pairs(cls_spec), device)
    result = evaluate_classification(
        method, lambda m, s: embed_rows(heads, m, s.modalities[m], device), train, None, split, cls_spec, signs
    )
    return EvalOutput(**result)
