"""The interface every alignment objective in methods/ implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from pmrl_bench.errors import unknown_name


class Method(nn.Module):
    """An alignment objective: trainable parameters beyond the shared heads, a loss and a similarity.

    `z[m]` are the raw `[B, D]` outputs of the shared projection head of modality `m` for the same B
    instances (not normalised: each method normalises as its formula needs). `defaults` lists every
    hyper-parameter the method accepts; each is settable with `--set key=value`; `search_space` is what
    `tune` tries on validation (`pmrl_bench.tune`). `last_terms` holds the
    named loss terms of the last batch (detached scalars), which the training curve averages per epoch.
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    search_space: ClassVar[dict[str, list[Any]]] = {}
    """Values `tune` tries (parameter -> values; the product has at most 12 configurations)."""

    def __init__(self, modalities: Sequence[str], **params: Any) -> None:
        super().__init__()
        for key in params:
            if key not in self.defaults:
                raise unknown_name(f"parameter of method {self.name!r}:", key, self.defaults)
        self.modalities = list(modalities)
        self.params: dict[str, Any] = {**self.defaults, **params}
        self.last_terms: dict[str, Tensor] = {}

    def loss(self, z: dict[str, Tensor]) -> Tensor:
        """Scalar training loss for one batch; may set `last_terms` (detached scalars: its loss terms)."""
        raise NotImplementedError

    def similarity(self, query: dict[str, Tensor], candidates: dict[str, Tensor]) -> Tensor:
        """`[Nq, Nc]` scores (higher is better) of query embeddings against candidate tuples."""
        raise NotImplementedError

    def protocol(self) -> dict[str, Any]:
        """The choices that change this method's numbers (score type, negatives pool, sign mode)."""
        return {}

    @torch.no_grad()
    def diagnostics(self) -> dict[str, float]:
        """Learned or batch scalars worth logging (temperatures, sigma_1); empty by default."""
        return {}
