"""Class prompts of zero-shot classification: their texts, encoded through the feature cache into the test split.

The features travel in the split's `modalities` under the reserved key `prompts:<classification name>` (rows
"class#<label>", item_index = class index): not a modality, so training and retrieval never see them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch

from pmrl_bench.data.features import ModalityFeatures, SplitFeatures
from pmrl_bench.errors import BenchError
from pmrl_bench.task import ClassificationSpec, TaskSpec

PROMPT_ROW_PREFIX = "class#"


def prompt_key(spec: ClassificationSpec) -> str:
    """The reserved `SplitFeatures.modalities` key under which a zero-shot protocol's prompt features travel."""
    return f"prompts:{spec.name}"


def class_prompts(spec: ClassificationSpec, label_names: Sequence[str]) -> list[str]:
    """The prompt text of every class, in label order (`spec.prompt` with `{label}` replaced)."""
    if "{label}" not in spec.prompt:
        raise BenchError(f"classification {spec.name!r}: prompt {spec.prompt!r} has no {{label}} placeholder")
    return [spec.prompt.replace("{label}", name) for name in label_names]


def attach_class_prompts(task: TaskSpec, config: dict[str, Any], split: SplitFeatures, device: str = "cpu",
                         cache: Any = None) -> SplitFeatures:
    """`split` plus the encoded class prompts of every zero-shot protocol of the task (cached like any feature)."""
    from pmrl_bench.data.encoding import encode_texts

    zero_shot = [c for c in task.classification if c.mode == "zero_shot"]
    if not zero_shot:
        return split
    if not split.label_names:
        raise BenchError(f"task {task.name!r}: zero-shot classification needs class names, and the split has none")
    extra: dict[str, ModalityFeatures] = {}
    for spec in zero_shot:
        texts = class_prompts(spec, split.label_names)
        row_ids = tuple(f"{PROMPT_ROW_PREFIX}{name}" for name in split.label_names)
        values = encode_texts(config, spec.prompt_modality, texts, row_ids, str(split.info.get("dataset", task.name)),
                              "class_prompts", f"{task.name} class prompts", device, cache)
        extra[prompt_key(spec)] = ModalityFeatures(values=values, item_index=torch.arange(len(texts)), row_ids=row_ids)
    return dataclasses.replace(split, modalities={**split.modalities, **extra})
