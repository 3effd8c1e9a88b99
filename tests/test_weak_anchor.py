"""The weak-anchor task (issue 13 part 6): vision is weak, not useless, and every direction is reported."""

from __future__ import annotations

import sys

import pytest
import torch

from pmrl_bench.config import resolve_config
from pmrl_bench.data.load import load_split
from pmrl_bench.evaluation.probe import probe_r2
from pmrl_bench.registry import get_adapter
from pmrl_bench.task import load_task


def test_probe_r2_by_hand():
    x = torch.arange(8, dtype=torch.float64).view(-1, 1)
    y = 2 * x + 1
    assert probe_r2(x, y, x, y, ridge=0.0) == pytest.approx(1.0)
    noise = torch.tensor([[1.0], [-1.0], [-1.0], [1.0]] * 2, dtype=torch.float64)  # orthogonal to x and 1
    # the best line through y + noise is y itself (noise has no x or constant part): R^2 = 1 - SSE/SST = 1 - 8 / sum((y + noise - mean)^2)
    target = y + noise
    expected = 1 - 8 / float(((target - target.mean()) ** 2).sum())
    assert probe_r2(x, target, x, target, ridge=0.0) == pytest.approx(expected, abs=1e-3)


def test_noisy_anchor_vision_probe_r2_is_about_a_third():
    spec = load_task("synthetic-noisy-anchor")
    data = resolve_config(spec, "clip")["data"]
    adapter = sys.modules[get_adapter("synthetic").__module__]
    splits = {r: load_split(spec, {"data": data, "encoders": {}}, r, "cpu") for r in ("train", "test")}
    latent = {r: adapter.generate(r, data["seed"], data["sizes"], data["latent_dim"], data["hidden"],
                                  data["modalities"])[1] for r in ("train", "test")}
    r2 = {
        m: probe_r2(splits["train"].modalities[m].values, latent["train"], splits["test"].modalities[m].values,
                    latent["test"])
        for m in spec.modalities
    }
    assert 0.25 < r2["vision"] < 0.35 and r2["text"] > 0.7 and r2["audio"] > 0.4
    assert [d.name for d in spec.retrieval] == ["t2v", "t2a", "t2va"] and spec.version == 2
