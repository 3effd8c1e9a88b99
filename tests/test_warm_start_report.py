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
    lines = warm_start_section(entities, "t2va/R@1")
    assert lines[0] == "### Against the warm start: `t2va/R@1`"
    clip = next(line for line in "\n".join(lines).splitlines() if line.startswith("| clip"))
    assert "25.0 ± 79.6" in clip and "75.0 ± 79.6" in clip and "+50.0 [-41.9, +141.9]" in clip  # t(3) x 28.868
    assert clip.rstrip(" |").endswith("0.18")


def test_leaderboard_shows_the_section_and_records_without_warm_outcomes_have_none(tmp_path):
    _write(tmp_path, "clip", TWO_SEEDS)
    rec = make_record("synthetic-prealigned", "gram", 0, {"t2va/rank": np.array([1, 2, 1, 1])})
    write_result(tmp_path, rec)  # written before warm-start outcomes were stored: still valid, not in the section
    out = tmp_path / "lb.md"
    assert main(["leaderboard", "--results-dir", str(tmp_path), "--out", str(out)]) == 0
    text = out.read_text()
    section = text[text.index("### Against the warm start"):]
    assert "| clip " in section and "| gram " not in section and "0.092" in section


def test_warm_outcomes_on_another_eval_set_make_the_record_invalid(tmp_path):
    _write(tmp_path, "clip", ONE_SEED, warm_set="f" * 64)
    table = load_runs(tmp_path)
    assert not table.runs and "not on the run's eval set" in table.problems[0].reason
