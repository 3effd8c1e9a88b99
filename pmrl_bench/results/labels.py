"""Configuration labels: the method parameters that differ from the method's declared defaults (issue 10.5),
and the evaluation regime (re-ranker, robustness) a run was evaluated under (issue 13).

Records written before the protocol recorded `config_label` get theirs derived here, against the
defaults the registry reads from the method file's syntax tree (no torch import); records written before
`regime` was recorded get theirs derived from their config's `evaluation` section.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from pmrl_bench.registry import method_defaults, method_names

TUNED, DEFAULT, AD_HOC = "tuned", "default", "ad hoc"


@cache
def known_defaults(method: str) -> dict[str, Any]:
    """The registered method's declared defaults (read without importing it); {} for an unknown method."""
    if method not in method_names():
        return {}
    return method_defaults(method)


def _value_text(value: Any) -> str:
    """A parameter value as written in a label: 0.5, true, sigma1."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def changed_keys(params: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    """The parameters that differ from the defaults or have none (defaults' order, then the others sorted)."""
    keys = [k for k in defaults if k in params] + sorted(k for k in params if k not in defaults)
    return [k for k in keys if k not in defaults or params[k] != defaults[k]]


def label_from(params: dict[str, Any], defaults: dict[str, Any]) -> str:
    """'k=v, ...' for the parameters that differ from the defaults (`changed_keys`)."""
    return ", ".join(f"{k}={_value_text(params[k])}" for k in changed_keys(params, defaults))


def derive_label(method: str, params: dict[str, Any]) -> str:
    """The configuration label of a record without one; all parameters when the method's defaults are unknown."""
    return label_from(params, known_defaults(method))


def regime_label(evaluation: Mapping[str, Any] | None) -> str:
    """The evaluation regime of a config's `evaluation` section: 'rerank@50, robustness vision'; '' = plain."""
    evaluation = evaluation if isinstance(evaluation, Mapping) else {}
    parts = []
    if isinstance(rerank := evaluation.get("rerank"), Mapping):
        parts.append(f"rerank@{rerank.get('k', '?')}")
    if isinstance(robust := evaluation.get("robustness"), Mapping):
        parts.append(f"robustness {robust.get('modality', '?')}")
    return ", ".join(parts)


def with_regime(text: str, regime: str) -> str:
    """A kind or configuration label followed by the evaluation regime: 'tuned, rerank@50' ('tuned' when plain)."""
    return ", ".join(part for part in (text, regime) if part)
