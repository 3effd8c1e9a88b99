"""CLIP towers (`CLIPModel`): frames/images through the vision tower, captions through the text tower."""

from __future__ import annotations

from torch import Tensor
from transformers import AutoConfig

from pmrl_bench.data.encoders import register_encoder
from pmrl_bench.data.encoders.hf_base import FramesEncoder, TextEncoder, pooled


@register_encoder("clip_vision")
class ClipVision(FramesEncoder):
    """CLIP image tower on sampled frames (projected `get_image_features`), frames mean-pooled."""

    family = "clip_vision"
    model_class = "CLIPModel"
    output = "get_image_features().pooler_output (projected image embedding)"

    def embed_frames(self, pixel_values: Tensor) -> Tensor:
        return pooled(self.model.get_image_features(pixel_values=pixel_values))


@register_encoder("clip_text")
class ClipText(TextEncoder):
    """CLIP text tower (projected `get_text_features`), truncated at the context length (77)."""

    family = "clip_text"
    model_class = "CLIPModel"
    output = "get_text_features().pooler_output (projected text embedding)"

    def default_max_length(self) -> int:
        return int(AutoConfig.from_pretrained(str(self.source.directory)).text_config.max_position_embeddings)

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        return pooled(self.model.get_text_features(**batch))
