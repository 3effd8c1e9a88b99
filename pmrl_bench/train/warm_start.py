"""The pre-aligned regime: a shared warm-start phase (same objective, seed and batches for every method)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pmrl_bench.data.features import SplitFeatures
from pmrl_bench.registry import get_method
from pmrl_bench.train.heads import ProjectionHeads
from pmrl_bench.train.method import Method
from pmrl_bench.train.trainer import TrainOutcome, log_line, train


def warm_checkpoint(path: Path | None) -> Path | None:
    """Where the warm-start phase checkpoints, beside the run's own checkpoint."""
    return None if path is None else path.with_name(path.stem + ".warm.pt")


def run_warm_start(
    modalities: list[str],
    heads: ProjectionHeads,
    split: SplitFeatures,
    cfg: dict[str, Any],
    seed: int,
    run_id: str,
    device: str = "cpu",
    checkpoint_path: Path | None = None,
    log: Callable[[str], None] = log_line,
    label: str = "",
) -> tuple[Method, TrainOutcome]:
    """Train `heads` for cfg['warm_start'] epochs with its objective (default parameters); resumes or skips if done.

    The warm objective's own parameters are discarded afterwards; the heads carry the alignment on.
    """
    warm = cfg["warm_start"]
    method = get_method(warm["objective"])(modalities).to(device)
    phase = {**cfg, "epochs": warm["epochs"], "lr": warm["lr"], "max_steps": None}
    outcome = train(method, heads, split, phase, seed, f"{run_id}:warm", device, warm_checkpoint(checkpoint_path),
                    log, f"{label} warm-start {warm['objective']}")
    return method, outcome


def method_phase(cfg: dict[str, Any]) -> dict[str, Any]:
    """The method's own training settings: the epochs left after the warm start (the same total for every method)."""
    warm = cfg.get("warm_start")
    return cfg if warm is None else {**cfg, "epochs": cfg["epochs"] - warm["epochs"]}
