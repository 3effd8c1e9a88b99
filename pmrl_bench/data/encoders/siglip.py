"""SigLIP towers (`SiglipModel`): frames/images through the vision tower, captions padded to the fixed length."""

from __future__ import annotations

from torch import Tensor
from transformers import AutoConfig

from pmrl_bench.data.encoders import register_encoder
from pmrl_bench.data.encoders.hf_base import FramesEncoder, TextEncoder, pooled


@register_encoder("siglip_vision")
class SiglipVision(FramesEncoder):
    """SigLIP image tower on sampled frames (attention-pool head output), frames mean-pooled."""

    family = "siglip_vision"
    model_class = "SiglipModel"
    output = "get_image_features().pooler_output (attention-pooled image embedding)"

    def embed_frames(self, pixel_values: Tensor) -> Tensor:
        return pooled(self.model.get_image_features(pixel_values=pixel_values))


@register_encoder("siglip_text")
class SiglipText(TextEncoder):
    """SigLIP text tower; texts padded to the model's full length, as SigLIP was trained."""

    family = "siglip_text"
    model_class = "SiglipModel"
    output = "get_text_features().pooler_output (text embedding, no attention mask)"
    padding = "max_length"
    model_inputs = ("input_ids",)

    def default_max_length(self) -> int:
        return int(AutoConfig.from_pretrained(str(self.source.directory)).text_config.max_position_embeddings)

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        return pooled(self.model.get_text_features(**batch))
