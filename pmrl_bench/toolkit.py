"""The public toolkit for writing an alignment objective in one short file (docs/plugins.md).

Everything here works on batches, never loops over instances or pairs, and is what the built-in methods
use themselves:

* `Method` (subclass it; declare `defaults`, `modality_counts`, `stochastic`) and `register_method("name")`.
* `unit(x)`: rows L2-normalised in float32 at least; `present_modalities(z, modalities, name)`.
* `anchor_and_tuple(query, candidates)`: the one-modality side of a similarity call and the tuple side.
* `query_chunks(fn, anchor, n_cols)`: chunked `[Nq, Nc]` pairwise scores (bounded memory); `fused(fn)`: `fn`
  as one compiled kernel under `--compile` (torch.compile; eager with one warning where it cannot build).
* Small Gram matrices in closed form: `gram_volume` (sqrt det), `top_singular_value` (sqrt of the largest
  eigenvalue), `leading_spectrum` (all singular values and u_1 with a guarded backward), `cosine_mean`.
* InfoNCE: `symmetric_info_nce` (modality pairs of a stack), `symmetric_cross_entropy` (any square score
  matrix with diagonal positives; `directional_cross_entropy` gives its two directions), `LogitScale` (CLIP's capped learnable temperature).
"""

from pmrl_bench.registry import register_method
from pmrl_bench.runtime import fused
from pmrl_bench.train.losses import (
    LogitScale,
    anchor_and_tuple,
    cosine_mean,
    directional_cross_entropy,
    gram_volume,
    leading_spectrum,
    present_modalities,
    query_chunks,
    symmetric_cross_entropy,
    symmetric_info_nce,
    top_singular_value,
    unit,
)
from pmrl_bench.train.method import Method

__all__ = [
    "LogitScale",
    "Method",
    "anchor_and_tuple",
    "cosine_mean",
    "directional_cross_entropy",
    "fused",
    "gram_volume",
    "leading_spectrum",
    "present_modalities",
    "query_chunks",
    "register_method",
    "symmetric_cross_entropy",
    "symmetric_info_nce",
    "top_singular_value",
    "unit",
]
