"""BERT-style text encoders with sentence-transformers mean pooling (e.g. all-MiniLM-L6-v2)."""

from __future__ import annotations

import json

from torch import Tensor

from pmrl_bench.data.encoders import register_encoder
from pmrl_bench.data.encoders.hf_base import TextEncoder


@register_encoder("bert_mean")
class BertMean(TextEncoder):
    """Mean of the last hidden states over real tokens (attention mask), unnormalised, as sentence-transformers."""

    family = "bert_mean"
    model_class = "AutoModel"
    output = "masked mean of last_hidden_state"
    allowed_missing = ("pooler.",)
    model_inputs = ("input_ids", "attention_mask", "token_type_ids")

    def default_max_length(self) -> int:
        """sentence-transformers' max_seq_length if the directory has one, else the tokenizer's limit."""
        st_config = self.source.directory / "sentence_bert_config.json"
        if st_config.is_file():
            return int(json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length", 256))
        return super().default_max_length()

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
