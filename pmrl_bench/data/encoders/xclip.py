"""X-CLIP (`XCLIPModel`): video-level embeddings from T frames, and prompt-free text embeddings.

X-CLIP's forward pass conditions the text on the video (prompt generation); as a frozen encoder the
text side uses `get_text_features`, which drops that conditioning (recorded in the identity).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from transformers import AutoConfig

from pmrl_bench.data.encoders import register_encoder
from pmrl_bench.data.encoders.hf_base import FramesEncoder, TextEncoder, decode_all, pooled
from pmrl_bench.data.items import MediaRef
from pmrl_bench.errors import BenchError


@register_encoder("xclip_video")
class XClipVideo(FramesEncoder):
    """X-CLIP video encoder on the checkpoint's number of frames (cross-frame attention + MIT pooling)."""

    family = "xclip_video"
    model_class = "XCLIPModel"
    output = "get_video_features().pooler_output (projected video embedding)"

    def setup(self) -> None:
        super().setup()
        num_frames = int(AutoConfig.from_pretrained(str(self.source.directory)).vision_config.num_frames)
        if "frames" in self.spec and self.frames != num_frames:
            raise BenchError(f"xclip_video: the checkpoint takes {num_frames} frames; frames={self.frames} is not supported")
        self.frames = num_frames

    def preprocessing(self) -> dict[str, Any]:
        return {**super().preprocessing(), "pooling": "X-CLIP video head (MIT) over the sampled frames"}

    def encode(self, inputs: Sequence[MediaRef]) -> Tensor:
        """[len(inputs), D] float32 video embeddings (a still image is repeated over the frames)."""
        flat = []
        for frames in decode_all(self.frames_of, inputs, self.decode_workers):
            flat.extend(frames * self.frames if len(frames) == 1 else frames)
        pixels = self.processor(images=flat, return_tensors="pt")["pixel_values"]
        pixels = pixels.reshape(len(inputs), self.frames, *pixels.shape[-3:])
        with torch.inference_mode():
            out = self.model.get_video_features(pixel_values=pixels.to(self.device, self._float_dtype()))
        return pooled(out).float().cpu()


@register_encoder("xclip_text")
class XClipText(TextEncoder):
    """X-CLIP text tower without the video-conditioned prompts (`get_text_features`)."""

    family = "xclip_text"
    model_class = "XCLIPModel"
    output = "get_text_features().pooler_output (projected, without video-conditioned prompts)"

    def default_max_length(self) -> int:
        return int(AutoConfig.from_pretrained(str(self.source.directory)).text_config.max_position_embeddings)

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        return pooled(self.model.get_text_features(**batch))
