"""Issue 13: each method against its own warm start (stored per-query outcomes, crossed paired t-test, Holm)."""

import numpy as np
import pytest
from records_factory import make_record

from pmrl_bench.cli import main
from pmrl_bench.report.stats.outcomes import metric_def
from pmrl_bench.report.warm_start import warm_pair, warm_start_section, warm_tests
from pmrl_bench.results.record import write_result
from pmrl_bench.results.table import load_runs, task_entities

# R@1 per query: after [100, 100, 0, 100], warm start [0, 100, 0, 0] -> d = [100, 0, 0, 100]:
# mean 50, sd sqrt(4 * 50^2 / 3) = 57.735, se 28.868, t = 1.7321 on 3 df, two-sided p = 0.18169
ONE_SEED = {"after": [[1, 1, 3, 1]], "warm": [[2, 1, 5, 4]]}
# two seeds with equal per-seed means (no seed variance): unit means after [100, 50, 50, 100], warm [50, 50, 0, 0]
# -> d = [50, 0, 50, 100]: mean 50, sd 40.825, se 20.412, t = 2.4495 on 3 df, p = 0.091721
TWO_SEEDS = {"after": [[1, 1, 3, 1], [1, 3, 1, 1]], "warm": [[2, 1, 5, 4], [1, 2, 5, 4]]}
THREE_SEEDS = {"after": TWO_SEEDS["after"] + [[1, 1, 1, 1]], "warm": TWO_SEEDS["warm"] + [[1, 1, 1, 1]]}


def _write(root, method, case, digest="a" * 16, warm_set=None):
    for seed, (after, warm) in enumerate(zip(case["after"], case["warm"], strict=True)):
        rec = make_record("synthetic-prealigned", method, seed, {"t2va/rank": np.array(after)}, config_hash=digest)
        warm_start = {"objective": "clip", "epochs": 1, "per_query": {"t2va/rank": warm},
                      "eval_set": {"t2va": warm_set or rec.eval_set["t2va"]}}
        write_result(root, rec.model_copy(update={"protocol": {**rec.protocol, "warm_start": warm_start}}))


def test_paired_test_against_the_warm_start_by_hand(tmp_path):
    _write(tmp_path, "clip", ONE_SEED)
    _write(tmp_path, "gram", TWO_SEEDS)
    entities = task_entities(load_runs(tmp_path).runs, "synthetic-prealigned")
    pairs = [warm_pair(e, "t2va", metric_def("R@1")) for e in entities]
    test, p_holm = warm_tests(pairs)
    assert test.delta == pytest.approx([50.0, 50.0])
    assert test.se == pytest.approx([np.sqrt(4 * 50**2 / 3) / 2, np.sqrt(2 * 50**2 / 3) / 2])
    assert test.p == pytest.approx([0.18169011381620936, 0.09172111331157186], rel=1e-9)  # = scipy ttest_rel
    assert p_holm == pytest.approx([2 * 0.09172111331157186] * 2, rel=1e-9)  # Holm: max(2 x 0.091721, 0.181690)
    # the section tests configurations with at least 3 seeds only, like the task tables' marks
    assert warm_start_section(entities, "t2va/R@1") == [
        "### Against the warm start: `t2va/R@1`", "",
        "2 configuration(s) with fewer than 3 seeds (tuning selection runs, exploratory runs) are not tested here."]


def test_the_section_shows_configurations_with_three_seeds_and_counts_the_others(tmp_path):
    _write(tmp_path, "clip", THREE_SEEDS)
    _write(tmp_path, "gram", ONE_SEED)
    entities = task_entities(load_runs(tmp_path).runs, "synthetic-prealigned")
    lines = "\n".join(warm_start_section(entities, "t2va/R@1")).splitlines()
    clip = next(line for line in lines if line.startswith("| clip"))
    # unit means after [100, 66.7, 66.7, 100], warm [66.7, 66.7, 33.3, 33.3]: d = [33.3, 0, 33.3, 66.7], mean 33.3;
    # a single test, so Holm leaves its p alone
    assert "| 50.0 ±" in clip and "| 83.3 ±" in clip and "+33.3 [" in clip
    test, _ = warm_tests([warm_pair(next(e for e in entities if e.method == "clip"), "t2va", metric_def("R@1"))])
    assert clip.rstrip(" |").endswith(f"{test.p[0]:.2g}")
    assert not any(line.startswith("| gram") for line in lines)
    assert lines[-1].startswith("1 configuration(s) with fewer than 3 seeds")


def test_leaderboard_shows_the_section_and_records_without_warm_outcomes_have_none(tmp_path):
    _write(tmp_path, "clip", THREE_SEEDS)
    rec = make_record("synthetic-prealigned", "gram", 0, {"t2va/rank": np.array([1, 2, 1, 1])})
    write_result(tmp_path, rec)  # written before warm-start outcomes were stored: still valid, not in the section
    out = tmp_path / "lb.md"
    assert main(["leaderboard", "--results-dir", str(tmp_path), "--out", str(out)]) == 0
    text = out.read_text()
    section = text[text.index("### Against the warm start"):]
    assert "| clip " in section and "| gram " not in section and "0.27" in section


def test_warm_outcomes_on_another_eval_set_make_the_record_invalid(tmp_path):
    _write(tmp_path, "clip", ONE_SEED, warm_set="f" * 64)
    table = load_runs(tmp_path)
    assert not table.runs and "not on the run's eval set" in table.problems[0].reason
