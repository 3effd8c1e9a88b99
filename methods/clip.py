"""Pairwise CLIP-style symmetric InfoNCE across modalities (Radford et al., arXiv 2103.00020)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pmrl_bench.errors import BenchError, unknown_name
from pmrl_bench.toolkit import register_method
from pmrl_bench.train.pairwise import PairwiseInfoNCE

PAIRS = ("all", "anchored")


@register_method("clip")
class CLIP(PairwiseInfoNCE):
    """CLIP: symmetric InfoNCE with a learnable logit scale, mean over all modality pairs (or text-anchored pairs).

    Logit scale exp(theta), theta initialised at log(1/temperature) and capped at max_logit_scale
    (CLIP: 1/0.07 and 100), shared by every pair; batch negatives. `pairs=anchored` keeps only the
    pairs that contain the text modality. Similarity: mean cosine between the query and each
    candidate modality.
    """

    defaults = {
        "temperature": 0.07,
        "learn_temperature": True,
        "max_logit_scale": 100.0,
        "pairs": "all",
        "label_smoothing": 0.0,
    }
    modality_counts = (2, None)
    search_space = {"temperature": [0.03, 0.07, 0.1], "learn_temperature": [True, False]}

    def __init__(self, modalities: Sequence[str], **params: Any) -> None:
        super().__init__(modalities, **params)
        if self.params["pairs"] not in PAIRS:
            raise unknown_name("clip pairs", self.params["pairs"], PAIRS)
        if self.params["pairs"] == "anchored" and "text" not in self.modalities:
            raise BenchError(f"clip pairs=anchored needs a 'text' modality; task has {self.modalities}")

    def pairs(self, names: list[str]) -> list[tuple[int, int]]:
        """All pairs, or with `pairs=anchored` the pairs that contain text."""
        if self.params["pairs"] == "anchored":
            if "text" not in names:
                raise BenchError(f"clip pairs=anchored: no 'text' modality in the batch ({names})")
            t = names.index("text")
            return [(t, j) for j in range(len(names)) if j != t]
        return [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]

    def pair_protocol(self) -> dict[str, Any]:
        """Which pairs are contrasted."""
        anchored = self.params["pairs"] == "anchored"
        return {"pairs": self.params["pairs"], "anchor": "text" if anchored else None}
