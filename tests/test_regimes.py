"""Pre-aligned regime, robustness levels and the shared re-ranker (issue 13 parts 3-5), and their bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pmrl_bench import runner
from pmrl_bench.config import resolve_config, run_id
from pmrl_bench.errors import BenchError
from pmrl_bench.evaluation.rerank import MatchingHead, mine_negatives, rerank_ranks
from pmrl_bench.evaluation.robustness import add_noise
from pmrl_bench.registry import get_method
from pmrl_bench.results.record import read_result
from pmrl_bench.runner import RunRequest, execute, plan_run
from tests.helpers import SMALL


def _req(tmp_path, method="clip", seed=0, extra=()):
    return RunRequest(method=method, seed=seed, overrides=[*SMALL, *extra], results_dir=str(tmp_path))


# ------------------------------------------------------------------------------------------------ config


def test_defaults_leave_run_ids_unchanged():
    base = resolve_config("synthetic", "pmrl")
    assert base["train"]["warm_start"] is None and base["evaluation"] == {"rerank": None, "robustness": None}
    # run ids of the default configs (validation split and best-epoch selection included), pinned
    assert run_id(base, 0) == "ab1b9f9a52880a0b"
    assert run_id(resolve_config("synthetic", "clip"), 0) == "e08f2be4b44934c5"
    without = {k: v for k, v in base.items() if k != "evaluation"}
    without["train"] = {k: v for k, v in base["train"].items() if k != "warm_start"}
    assert run_id(base, 0) == run_id(without, 0)
    assert run_id(resolve_config("synthetic", "pmrl", [("warm_start", True)]), 0) != run_id(base, 0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([("train.warm_start.objective", "clop")], "not a registered method; choose one of clip, gram, imagebind, pmrl"),
        ([("warm_start.epochs", 20)], "must be below train.epochs=3"),
        ([("robustness.modality", "text")], r"is a query modality; choose a candidate-only modality \(\['audio', 'vision'\]\)"),
        ([("robustness.modality", "depth")], r"not one of \['text', 'vision', 'audio'\]"),
        ([("robustness.modality", "vision"), ("robustness.levels", [1, -0.5])], "greater than or equal to 0"),
        ([("score", "cosine")], "choose one of sigma1, cosine_mean"),
    ],
)
def test_bad_regime_settings_are_one_line_before_training(tmp_path, overrides, message):
    with pytest.raises(BenchError, match=message) as info:
        execute(_req(tmp_path, "pmrl", extra=overrides))
    assert "\n" not in str(info.value)
    assert not list(tmp_path.rglob("*.json"))


def test_rerank_k_above_the_candidates_is_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "check_results_dir", lambda path: None)
    with pytest.raises(BenchError, match=r"only 128 candidates; choose k between 1 and 128"):
        execute(_req(tmp_path, extra=[("rerank.k", 129)]))
    assert not list(tmp_path.rglob("*.json"))


# --------------------------------------------------------------------------------------------- robustness


def test_noise_is_a_multiple_of_each_features_std():
    values = torch.stack([torch.arange(1000.0), 5 * torch.ones(1000)], 1)
    values[::2, 1] = -5  # std 5 (about)
    noisy = add_noise(values, 2.0, seed=3)
    diff = noisy - values
    assert torch.allclose(diff.std(0) / values.std(0), torch.full((2,), 2.0), rtol=0.1)
    assert torch.equal(add_noise(values, 0.0, seed=3), values)
    assert torch.equal(add_noise(values, 2.0, seed=3), noisy)


def test_robustness_levels_in_the_record(tmp_path):
    extra = [("robustness.modality", "vision"), ("robustness.levels", [0, 1, 4])]
    rec = execute(_req(tmp_path, extra=extra))
    assert rec.status == "ok"
    # level 0 is the clean evaluation, and more noise does not help on average
    assert rec.per_query["t2va.noise0/rank"] == rec.per_query["t2va/rank"]
    assert rec.metrics["t2va.noise4/MnR"] > rec.metrics["t2va/MnR"]
    assert rec.protocol["robustness"]["directions"]["t2va"] == {
        "noise": {"0": "t2va.noise0", "1": "t2va.noise1", "4": "t2va.noise4"}, "missing": "t2va.missing"
    }
    assert len(rec.per_query["t2va.missing/rank"]) == 128 and rec.protocol["t2va.missing"]["candidates"] == ["audio"]


# ------------------------------------------------------------------------------------------------ re-ranker


def test_mined_negatives_never_pick_the_positive_and_follow_the_scores():
    g = torch.Generator().manual_seed(0)
    scores = torch.tensor([[0.0, 9.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 5.0, -9.0], [0.0, 0.0, 0.0, 0.0]])
    draws = torch.cat([mine_negatives(scores, 1, g) for _ in range(2000)], 1)
    assert not bool((draws == torch.arange(4).view(-1, 1)).any())
    # row 0 / its std (4.5) = (0, 2, 0, 0); the positive (column 0) zeroed: p(1) = e^2 / (e^2 + 2) = 0.787
    assert (draws[0] == 1).float().mean() == pytest.approx(np.exp(2) / (np.exp(2) + 2), abs=0.03)
    row1 = torch.bincount(draws[1], minlength=4)[[0, 2, 3]].float() / 2000  # equal scores: uniform
    assert torch.allclose(row1, torch.full((3,), 1 / 3), atol=0.05)


def test_rerank_ranks_by_hand():
    class Fixed(MatchingHead):  # match logit = the vision vector's first coordinate
        def forward(self, vectors):
            return vectors[1][..., 0]

    method = get_method("clip")(["text", "vision"])
    query = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # first stage (cosine): candidates 0 > 1 > 2 > 3; logits (first coordinate): 0.9, 0.8, 0.1, 0.99
    cands = {"vision": torch.nn.functional.normalize(torch.tensor([[0.9, 0.1], [0.8, 0.3], [0.1, 0.2], [0.99, -1.0]]), dim=1)}
    head = Fixed(2, 2, 4)
    first, second = rerank_ranks(method, head, "text", query, torch.tensor([1, 3]), cands, k=2)
    # query 0's match (item 1) is 2nd in the first stage, inside the top 2, re-ranked by logits: 0.994 > 0.936 -> 2
    cos = cands["vision"][:, 0]
    assert first.tolist()[0] == 2 and second.tolist()[0] == 1 + int(cos[0] >= cos[1])
    # query 1's match (item 3) is outside the top 2: it keeps its first-stage rank
    assert second.tolist()[1] == first.tolist()[1] == int((cands["vision"] @ query[1] >= cands["vision"][3] @ query[1]).sum())


def test_rerank_stores_both_stages(tmp_path):
    rec = execute(_req(tmp_path, extra=[("rerank.k", 10), ("rerank.epochs", 2)]))
    first, second = np.array(rec.per_query["t2va/rank"]), np.array(rec.per_query["t2va.rerank/rank"])
    outside = first > 10
    assert np.array_equal(second[outside], first[outside]) and second[~outside].max() <= 10
    assert rec.protocol["rerank"]["k"] == 10 and "t2va.rerank/R@1" in rec.metrics


# --------------------------------------------------------------------------------------------- warm start


def test_warm_start_is_shared_and_recorded(tmp_path):
    extra = [("warm_start.epochs", 2), ("epochs", 3)]
    clip = execute(_req(tmp_path, "clip", extra=extra))
    gram = execute(_req(tmp_path, "gram", extra=extra))
    assert clip.protocol["warm_start"] == gram.protocol["warm_start"]  # same phase for every method
    warm = clip.protocol["warm_start"]
    assert warm["objective"] == "clip" and warm["steps"] == 2 * (512 // 64) and "t2va/R@1" in warm["test_metrics"]
    assert clip.protocol["train_steps"] == 512 // 64  # the remaining epoch
    # the model right after the warm start, per query, on the run's own eval set: a paired test is possible
    ranks = np.asarray(warm["per_query"]["t2va/rank"])
    assert len(ranks) == len(clip.per_query["t2va/rank"]) and warm["eval_set"]["t2va"] == clip.eval_set["t2va"]
    assert 100 * (ranks == 1).mean() == pytest.approx(warm["test_metrics"]["t2va/R@1"])
    assert set(warm["per_query"]) == {k for k in clip.per_query if k.split("/")[0] in warm["eval_set"]}
    assert not list((tmp_path / ".checkpoints").glob("*.pt"))


def test_resume_skips_a_finished_warm_start(tmp_path, monkeypatch):
    extra = [("warm_start.epochs", 2), ("epochs", 3)]
    reference = execute(_req(tmp_path / "a", "pmrl", extra=extra))
    from pmrl_bench.train import trainer

    real, calls = trainer._save_checkpoint, []

    def die_in_method_phase(path, state):
        real(path, state)
        calls.append(path.name)
        if not path.name.endswith(".warm.pt"):
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "_save_checkpoint", die_in_method_phase)
    with pytest.raises(KeyboardInterrupt):
        execute(_req(tmp_path / "b", "pmrl", extra=extra))
    monkeypatch.setattr(trainer, "_save_checkpoint", real)
    logs = []
    monkeypatch.setattr(trainer, "log_line", logs.append)
    from pmrl_bench.train import warm_start

    monkeypatch.setattr(warm_start, "log_line", logs.append)
    resumed = execute(_req(tmp_path / "b", "pmrl", extra=extra))
    assert resumed.metrics == reference.metrics and resumed.protocol["warm_start"] == reference.protocol["warm_start"]
    assert read_result(plan_run(_req(tmp_path / "b", "pmrl", extra=extra)).path).status == "ok"
