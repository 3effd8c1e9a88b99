"""CLAP (`ClapModel`): audio in consecutive windows of the extractor's length, and the text tower.

The feature extractor is called with the rate explicitly (it refuses others) on windows no longer
than its maximum, so `rand_trunc` never crops at random; in `fusion` mode the extractor marks a random
clip of a batch as "longer" when none is, so `is_longer` is reset to False (deterministic, batch-independent).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from pmrl_bench.data.encoders import register_encoder
from pmrl_bench.data.encoders.hf_base import TextEncoder, WindowedAudioEncoder, pooled


@register_encoder("clap_audio")
class ClapAudio(WindowedAudioEncoder):
    """CLAP audio tower (projected `get_audio_features`) over consecutive windows (10 s at 48 kHz), mean-pooled."""

    family = "clap_audio"
    model_class = "ClapModel"
    output = "get_audio_features().pooler_output (projected audio embedding)"

    def setup(self) -> None:
        super().setup()
        from transformers import AutoConfig

        fused = bool(getattr(AutoConfig.from_pretrained(str(self.source.directory)).audio_config, "enable_fusion", False))
        if not fused and self.extractor.truncation == "fusion":
            # an unfused model takes one mel channel; windows never exceed the maximum, so rand_trunc never crops
            self.extractor.truncation = "rand_trunc"

    def default_window(self) -> int:
        return int(self.extractor.nb_max_samples)

    def preprocessing(self) -> dict[str, Any]:
        return {**super().preprocessing(), "is_longer": "forced False (windows never exceed the maximum)"}

    def embed_windows(self, windows: list[np.ndarray]) -> Tensor:
        feats = self.extractor(windows, sampling_rate=self.rate, return_tensors="pt")
        inputs = {"input_features": feats["input_features"].to(self.device, self._float_dtype())}
        if "is_longer" in feats:
            inputs["is_longer"] = torch.zeros_like(feats["is_longer"]).to(self.device)
        return pooled(self.model.get_audio_features(**inputs))


@register_encoder("clap_text")
class ClapText(TextEncoder):
    """CLAP text tower (projected `get_text_features`)."""

    family = "clap_text"
    model_class = "ClapModel"
    output = "get_text_features().pooler_output (projected text embedding)"

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        return pooled(self.model.get_text_features(**batch))
