"""The interface every alignment objective in methods/ implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from pmrl_bench.errors import BenchError, unknown_name
from pmrl_bench.registry import DEFAULT_MODALITY_COUNTS, check_score, counts_text


class Method(nn.Module):
    """An alignment objective: trainable parameters beyond the shared heads, a loss and a similarity.

    `z[m]` are the raw `[B, D]` outputs of the shared projection head of modality `m` for the same B
    instances (not normalised: each method normalises as its formula needs). `defaults` lists every
    hyper-parameter the method accepts; each is settable with `--set key=value`. `modality_counts` is the
    (smallest, largest or None) number of modalities in every tuple the method is given: the task's modalities
    when it trains, and the query plus candidate modalities of every tuple it scores (each retrieval direction,
    its missing-modality variant, zero-shot classification, multiple-choice QA). Planning refuses a task that
    needs another count, before training (docs/plugins.md, "The method contract"); `stochastic` says whether
    the loss draws random numbers (then it is reproducible only under a fixed torch seed); `search_space` is
    what `tune` tries on validation (`pmrl_bench.tune`). `last_terms` holds the named loss terms of the last
    batch (detached scalars), which the training curve averages per epoch.
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    scores: ClassVar[tuple[str, ...]] = ()
    """Names of the scores this method can rank with; the parameter `score` (if any) picks the primary one."""
    sign_invariant: ClassVar[bool] = False
    """True when the objective does not change if one modality's vectors flip sign (its cosines need calibration)."""
    modality_counts: ClassVar[tuple[int, int | None]] = DEFAULT_MODALITY_COUNTS
    stochastic: ClassVar[bool] = False
    search_space: ClassVar[dict[str, list[Any]]] = {}
    """Values `tune` tries (parameter -> values; the product has at most 12 configurations)."""

    def __init__(self, modalities: Sequence[str], **params: Any) -> None:
        super().__init__()
        for key in params:
            if key not in self.defaults:
                raise unknown_name(f"parameter of method {self.name!r}:", key, self.defaults)
        low, high = self.modality_counts
        if not low <= len(modalities) <= (high or len(modalities)):
            raise BenchError(f"method {self.name!r} needs {counts_text(self.modality_counts)} modalities; "
                             f"this task has {list(modalities)}")
        self.modalities = list(modalities)
        self.params: dict[str, Any] = {**self.defaults, **params}
        check_score(self.name, self.scores, self.params)
        self.last_terms: dict[str, Tensor] = {}

    def loss(self, z: dict[str, Tensor]) -> Tensor:
        """Scalar training loss for one batch; may set `last_terms` (detached scalars: its loss terms)."""
        raise NotImplementedError

    def similarity(self, query: dict[str, Tensor], candidates: dict[str, Tensor]) -> Tensor:
        """`[Nq, Nc]` scores (higher is better) of query embeddings against candidate tuples."""
        return self.score_with(self.primary_score, query, candidates)

    @property
    def primary_score(self) -> str:
        """The score `similarity` ranks with: the `score` parameter, else the first offered score."""
        return str(self.params.get("score", self.scores[0] if self.scores else "similarity"))

    def score_with(self, score: str, query: dict[str, Tensor], candidates: dict[str, Tensor]) -> Tensor:
        """`[Nq, Nc]` scores under the named offered score (one of `scores`)."""
        raise NotImplementedError

    def protocol(self) -> dict[str, Any]:
        """The choices that change this method's numbers (score type, negatives pool, sign mode)."""
        return {}

    @torch.no_grad()
    def diagnostics(self) -> dict[str, float]:
        """Learned or batch scalars worth logging (temperatures, sigma_1); empty by default."""
        return {}
