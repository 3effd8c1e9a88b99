"""Audio Spectrogram Transformer (`ASTModel`): pooled output over consecutive windows of `max_length` frames."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from pmrl_bench.data.encoders import register_encoder
from pmrl_bench.data.encoders.hf_base import WindowedAudioEncoder


@register_encoder("ast_audio")
class AstAudio(WindowedAudioEncoder):
    """AST pooler output (mean of the CLS and distillation tokens) over 10.24 s windows at 16 kHz, mean-pooled."""

    family = "ast_audio"
    model_class = "ASTModel"
    output = "pooler_output (mean of CLS and distillation tokens)"

    def default_window(self) -> int:
        return int(self.extractor.max_length) * self.rate // 100  # 10 ms frame shift

    def preprocessing(self) -> dict:
        return {**super().preprocessing(), "fbank_backend": "numpy (transformers, no torchaudio)"}

    def embed_windows(self, windows: list[np.ndarray]) -> Tensor:
        feats = self.extractor(windows, sampling_rate=self.rate, return_tensors="pt")
        return self.model(input_values=feats["input_values"].to(self.device, self._float_dtype())).pooler_output
