"""Frozen encoders: a registry of encoder families, each turning raw inputs into pooled feature rows.

A task's YAML names one encoder per modality, e.g. `encoders: {text: {family: bert_mean, model: ...}}`.
A family is a factory registered with `@register_encoder("family")` that takes the spec mapping and
returns a `FrozenEncoder`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from torch import Tensor

from pmrl_bench.errors import unknown_name


class FrozenEncoder(Protocol):
    """A frozen feature extractor for one modality."""

    modality: str

    def identity(self) -> dict[str, Any]:
        """Every field that changes the output bytes (model id and revision or weights hash, preprocessing,
        decoder/resampler backends and versions); it becomes part of the feature-cache key."""
        ...

    def encode(self, inputs: Sequence[Any]) -> Tensor:
        """`[len(inputs), D]` float32 pooled, unnormalised features (texts, or media references)."""
        ...


ENCODER_FAMILIES: dict[str, Callable[[dict[str, Any]], FrozenEncoder]] = {}


@cache
def family_modules() -> dict[str, str]:
    """Family name -> module that registers it, found by reading the `@register_encoder("...")` decorators of
    this package's files (so a family's module, and transformers, are imported only when it is used)."""
    from pmrl_bench.registry import _decorated_names

    table = {}
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if not path.name.startswith("_"):
            for family, _ in _decorated_names(path, "register_encoder"):
                table[family] = f"{__name__}.{path.stem}"
    return table


def register_encoder(family: str) -> Callable[[Callable[[dict[str, Any]], FrozenEncoder]], Callable[[dict[str, Any]], FrozenEncoder]]:
    """Decorator: register an encoder factory under a family name."""

    def decorator(factory: Callable[[dict[str, Any]], FrozenEncoder]) -> Callable[[dict[str, Any]], FrozenEncoder]:
        if family in ENCODER_FAMILIES:
            raise ValueError(f"duplicate encoder family {family!r}")
        ENCODER_FAMILIES[family] = factory
        return factory

    return decorator


def build_encoder(spec: dict[str, Any]) -> FrozenEncoder:
    """Instantiate the encoder described by a task's `encoders.<modality>` mapping."""
    family = spec.get("family", "")
    if family not in ENCODER_FAMILIES and family in family_modules():
        importlib.import_module(family_modules()[family])
    if family not in ENCODER_FAMILIES:
        raise unknown_name("encoder family", family, set(ENCODER_FAMILIES) | set(family_modules()))
    return ENCODER_FAMILIES[family](spec)
