"""ImageBind-style anchor-modality InfoNCE (Girdhar et al., arXiv 2305.05665); anchor=text is LanguageBind."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pmrl_bench.errors import BenchError
from pmrl_bench.toolkit import register_method
from pmrl_bench.train.pairwise import PairwiseInfoNCE


@register_method("imagebind")
class ImageBind(PairwiseInfoNCE):
    """ImageBind: symmetric InfoNCE of every modality against one anchor modality only, mean over those pairs.

    `anchor=vision` is ImageBind proper, `anchor=text` the LanguageBind variant; non-anchor
    modalities are never contrasted with each other. One learnable logit scale as in `clip`
    (the released ImageBind fixes per-modality temperatures instead, docs/protocol.md, Methods and scores).
    Similarity: mean cosine between the query and each candidate modality.
    """

    defaults = {
        "anchor": "vision",
        "temperature": 0.07,
        "learn_temperature": True,
        "max_logit_scale": 100.0,
        "label_smoothing": 0.0,
    }
    modality_counts = (2, None)
    search_space = {"temperature": [0.03, 0.07, 0.1], "learn_temperature": [True, False]}

    def __init__(self, modalities: Sequence[str], **params: Any) -> None:
        if params.get("anchor", self.defaults["anchor"]) not in modalities:
            raise BenchError(
                f"imagebind anchor {params.get('anchor', self.defaults['anchor'])!r} is not a modality of this task "
                f"{list(modalities)}; set e.g. --set anchor=text"
            )
        super().__init__(modalities, **params)

    def pairs(self, names: list[str]) -> list[tuple[int, int]]:
        """(anchor, m) for every other modality m of the batch."""
        if self.params["anchor"] not in names:
            raise BenchError(f"imagebind: anchor {self.params['anchor']!r} missing from the batch ({names})")
        a = names.index(self.params["anchor"])
        return [(a, j) for j in range(len(names)) if j != a]

    def pair_protocol(self) -> dict[str, Any]:
        """Anchored pairs and the anchor."""
        return {"pairs": "anchored", "anchor": self.params["anchor"]}
