"""Shared trainable per-modality projection heads (the same for every method)."""

from __future__ import annotations

from torch import Tensor, nn


def projection_head(in_dim: int, out_dim: int, hidden: int, layers: int, dropout: float = 0.0) -> nn.Module:
    """An MLP from a frozen feature dimension to the common embedding dimension (`layers` linear maps)."""
    if layers == 1:
        return nn.Linear(in_dim, out_dim)
    mods: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(dim, hidden), nn.GELU()]
        if dropout:
            mods.append(nn.Dropout(dropout))
        dim = hidden
    mods.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*mods)


class ProjectionHeads(nn.Module):
    """One projection head per modality, mapping each to the same `embed_dim`."""

    def __init__(self, in_dims: dict[str, int], embed_dim: int, hidden: int, layers: int, dropout: float = 0.0):
        super().__init__()
        self.heads = nn.ModuleDict(
            {m: projection_head(d, embed_dim, hidden, layers, dropout) for m, d in sorted(in_dims.items())}
        )

    def forward(self, x: dict[str, Tensor]) -> dict[str, Tensor]:
        """Project every modality present in `x`."""
        return {m: self.heads[m](v) for m, v in x.items()}
