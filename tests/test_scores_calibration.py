"""Sign-safe scores (issue 13 part 1): per-modality signs from train positives, secondary scores, the warning."""

from __future__ import annotations

import pytest
import torch

from pmrl_bench.cli import main
from pmrl_bench.config import resolve_config
from pmrl_bench.data.features import single_row_features
from pmrl_bench.data.load import load_split
from pmrl_bench.errors import BenchError
from pmrl_bench.evaluation.calibration import calibrate_scores, train_signs, zero_shot_pairs
from pmrl_bench.evaluation.retrieval import evaluate_direction, evaluate_primary
from pmrl_bench.evaluation.signs import first_rows, pair_cosines, positive_percentile, sign_of
from pmrl_bench.registry import get_method
from pmrl_bench.task import load_task
from pmrl_bench.train.heads import ProjectionHeads
from pmrl_bench.train.trainer import train


def test_pair_cosines_match_a_loop_over_every_pair():
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(7, 5, generator=g, dtype=torch.float64), dim=1)
    c = torch.nn.functional.normalize(torch.randn(4, 5, generator=g, dtype=torch.float64), dim=1)
    q_item = torch.tensor([0, 0, 1, 2, 3, 3, 3])
    c_item = torch.arange(4)
    pos, neg = pair_cosines(q, q_item, c, c_item)
    pairs = [(float(q[r] @ c[j]), int(q_item[r]) == j) for r in range(7) for j in range(4)]
    assert pos == pytest.approx(sum(v for v, p in pairs if p) / 7, abs=1e-12)
    assert neg == pytest.approx(sum(v for v, p in pairs if not p) / 21, abs=1e-12)


def test_candidate_items_with_several_rows_use_their_mean():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    c = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    pos, neg = pair_cosines(q, torch.tensor([0, 1]), c, torch.tensor([0, 0, 1]))
    # item 0's mean is (.5, .5), item 1's (0, -1): positives .5 and -1, negatives 0 and .5
    assert (pos, neg) == (pytest.approx(-0.25), pytest.approx(0.25))


def test_sign_of_and_positive_percentile_by_hand():
    assert (sign_of(-0.1), sign_of(0.0), sign_of(0.3)) == (-1.0, 1.0, 1.0)
    scores = torch.tensor([[3.0, 1.0, 2.0], [5.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    # row 0 positive first (0 of 2 negatives >=), row 1 last (2 of 2), row 2 tied with one (1 of 2)
    assert positive_percentile(scores) == pytest.approx((0 + 1 + 0.5) / 3)


def test_first_rows_picks_each_items_first_row():
    feats = single_row_features(torch.zeros(5, 2), ("a", "b", "c", "d", "e"))
    feats.item_index[:] = torch.tensor([1, 0, 1, 2, 0])
    assert first_rows(feats, 3).tolist() == [1, 0, 3]


def _trained(method_name: str, seed: int, **params):
    """The issue's example at small scale: pmrl tau1=0.5 tau2=0.03 with the cosine score (seed 0 ends with negative signs)."""
    spec = load_task("synthetic")
    sizes = ("data.sizes", {"train": 1024, "test": 256})
    cfg = resolve_config(spec, method_name, [sizes, ("epochs", 8), ("batch_size", 128), *params.items()])
    data = {"data": cfg["data"], "encoders": {}}
    tr, te = load_split(spec, data, "train", "cpu"), load_split(spec, data, "test", "cpu")
    torch.manual_seed(seed)
    heads = ProjectionHeads({m: tr.modalities[m].dim for m in spec.modalities}, 64, 256, 2)
    method = get_method(method_name)(spec.modalities, **cfg["method_params"])
    train(method, heads, tr, cfg["train"], seed, "test", log=lambda _: None)
    return spec, method, heads, tr, te


def test_issue_example_cosine_ranks_the_match_last_without_signs_and_well_with_them():
    spec, method, heads, tr, te = _trained("pmrl", 0, tau1=0.5, tau2=0.03, score="cosine_mean")
    cal = calibrate_scores(spec, method, heads, tr, "cpu")
    direction = spec.retrieval[0]
    raw = evaluate_direction(method, heads, te, direction, ["R@1"], "cpu").metrics
    fixed = evaluate_direction(method, heads, te, direction, ["R@1"], "cpu", signs=cal.signs_for(direction)).metrics
    pairs = cal.protocol["pairs"]
    assert pairs["text-vision"]["sign"] == -1.0 and pairs["text-vision"]["pos_cos"] < pairs["text-vision"]["neg_cos"]
    assert raw["t2va/R@1"] == 0.0  # the silent failure of the issue
    assert fixed["t2va/R@1"] > 40 and fixed["t2va/R@1"] > fixed["t2va.sigma1/R@1"]
    assert fixed["t2va.sigma1/R@1"] == raw["t2va.sigma1/R@1"]  # sigma_1 does not see signs
    assert cal.protocol["warning"] is None
    # validation (what selection and the tuner read) ranks with the configured score, calibrated as at test
    assert evaluate_primary(spec, method, heads, tr, te).metrics == {"t2va/R@1": fixed["t2va/R@1"]}
    method.params["score"] = "sigma1"
    assert evaluate_primary(spec, method, heads, tr, te).metrics == {"t2va/R@1": fixed["t2va.sigma1/R@1"]}
    method.params["score"] = "cosine_mean"
    method.sign_invariant = False  # as if pmrl did not declare invariance: the record would say so
    assert "ranks train positives below" in calibrate_scores(spec, method, heads, tr, "cpu").protocol["warning"]


def test_zero_shot_protocols_get_the_signs_retrieval_calibrates():
    """The pairs that zero-shot classification and multiple choice score, and their signs from the same train
    positives as retrieval's (the issue's example: text-vision -1 at seed 0); methods that see signs keep +1."""
    spec, method, heads, tr, _ = _trained("pmrl", 0, tau1=0.5, tau2=0.03, score="cosine_mean")
    cal = calibrate_scores(spec, method, heads, tr, "cpu")
    pairs = [("text", "vision"), ("text", "audio"), ("vision", "text")]
    signs = train_signs(method, heads, tr, pairs, "cpu")
    assert signs[("text", "vision")] == cal.signs[("text", "vision")] == -1.0
    assert signs[("text", "audio")] == cal.signs[("text", "audio")] and signs[("vision", "text")] == -1.0
    assert train_signs(method, heads, tr, [("text", "subtitles")], "cpu") == {("text", "subtitles"): 1.0}
    clip = get_method("clip")(spec.modalities)
    assert set(train_signs(clip, heads, tr, pairs, "cpu").values()) == {1.0}
    qa = load_task("tuxpaint-qa")
    assert zero_shot_pairs(qa) == [("vision", "audio")]  # pick: candidate pictures against the recording
    assert zero_shot_pairs(load_task("tuxpaint-mc")) == [("text", "audio"), ("text", "vision")]
    assert zero_shot_pairs(load_task("tuxpaint-category")) == [("audio", "text"), ("vision", "text")]


def test_flipping_one_modality_changes_the_sign_not_the_metrics():
    spec, method, heads, tr, te = _trained("gram", 1, score="cosine_mean")
    direction = spec.retrieval[0]

    def run():
        cal = calibrate_scores(spec, method, heads, tr, "cpu")
        out = evaluate_direction(method, heads, te, direction, ["R@1", "MnR"], "cpu", signs=cal.signs_for(direction))
        return cal.protocol["pairs"]["text-audio"]["sign"], out.metrics

    sign, metrics = run()
    with torch.no_grad():
        last = heads.heads["audio"][-1]
        last.weight.neg_()
        last.bias.neg_()
    flipped_sign, flipped = run()
    assert flipped_sign == -sign and flipped == metrics
    assert set(metrics) == {"t2va.neg_volume/R@1", "t2va.neg_volume/MnR", "t2va/R@1", "t2va/MnR"}


def test_methods_without_the_invariance_keep_their_signs():
    spec, method, heads, tr, _ = _trained("clip", 0)
    with torch.no_grad():
        heads.heads["audio"][-1].weight.neg_()
        heads.heads["audio"][-1].bias.neg_()
    cal = calibrate_scores(spec, method, heads, tr, "cpu")
    assert set(cal.signs.values()) == {1.0} and cal.protocol["sign_calibrated"] is False


@pytest.mark.parametrize(("method", "offered"), [("pmrl", "sigma1, cosine_mean"), ("gram", "neg_volume, cosine_mean")])
def test_a_score_the_method_does_not_offer_names_the_choices(method, offered, tmp_path, capsys):
    with pytest.raises(BenchError, match=f"does not offer it; choose one of {offered}$"):
        get_method(method)(["text", "vision", "audio"], score="cosine")
    sweep = tmp_path / "s.yaml"  # refused when planned (a sweep's dry run too), before anything trains
    sweep.write_text(f"methods: [{method}]\ntasks: [synthetic]\nseeds: [0]\nset:\n  score: cosine\n")
    assert main(["sweep", str(sweep), "--dry-run", "--results-dir", str(tmp_path / "res")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"--set score=cosine: {method} does not offer it; choose one of {offered}") and "\n" not in err
    assert not (tmp_path / "res").exists()
