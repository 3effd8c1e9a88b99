"""`compare`: the report of docs/statistics.md 7.4 and its refusals."""

import numpy as np
import pytest
from records_factory import digest, simulated_ranks, write

from pmrl_bench.cli import main
from pmrl_bench.report.stats import crossed_t_test, seed_query_parts


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    for seed in range(4):
        write(root, "synthetic", "pmrl", seed, {"t2va/rank": simulated_ranks(400, 0.7, seed)})
        write(root, "synthetic", "gram", seed, {"t2va/rank": simulated_ranks(400, 0.5, seed)})
    for seed in range(2):
        write(root, "synthetic", "clip", seed, {"t2va/rank": simulated_ranks(400, 0.6, seed)})
    write(root, "synthetic", "clip", 2, {}, status="failed")
    write(root, "synthetic", "imagebind", 0, {"t2va/rank": simulated_ranks(400, 0.6, 0)})
    write(root, "synthetic", "gram", 0, {"t2va/rank": simulated_ranks(400, 0.5, 0)}, config_hash="b" * 16)
    for seed in range(3):
        write(root, "synthetic", "other", seed, {"t2va/rank": simulated_ranks(400, 0.5, seed)},
              eval_set={"t2va": digest("other split")})
    return root


def run(capsys, *argv):
    rc = main(["compare", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_full_report(results, capsys):
    rc, out, err = run(capsys, "--results-dir", str(results), "--task", "synthetic", "--methods", "pmrl", "gram",
                       "--config", "gram=aaaa")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == ("task synthetic, metric t2va/R@1 (higher is better), N = 400 queries, eval set "
                        + digest("synthetic:t2va/rank")[:8])
    assert "seeds 0 1 2 3 (4 used); failed: none" in lines[1]
    ya = np.stack([100.0 * (simulated_ranks(400, 0.7, s) <= 1) for s in range(4)])
    yb = np.stack([100.0 * (simulated_ranks(400, 0.5, s) <= 1) for s in range(4)])
    res = crossed_t_test(seed_query_parts(ya), seed_query_parts(yb))
    assert lines[3].startswith(f"difference pmrl - gram = {float(res.delta):.2f}  95% CI [{float(res.ci_low):.2f}, ")
    assert f"t = {float(res.t):.3f}  nu = {float(res.nu):.1f}" in lines[3]
    assert lines[4].startswith("variance shares: queries ") and "seeds" in lines[4]
    assert lines[5].startswith("robustness: two-level bootstrap, 10,000 resamples: 95% CI [")
    assert "warning" not in out


def test_two_seeds_warns_under_powered(results, capsys):
    rc, out, _ = run(capsys, "--results-dir", str(results), "--task", "synthetic", "--methods", "clip", "pmrl")
    assert rc == 0
    assert "failed: 2" in out and "warning: under-powered: fewer than 3 seeds" in out


def test_one_seed_uses_sign_flip(results, capsys):
    rc, out, _ = run(capsys, "--results-dir", str(results), "--task", "synthetic", "--methods", "imagebind", "pmrl",
                     "--metric", "t2va/MnR")
    assert rc == 0
    assert "metric t2va/MnR (lower is better)" in out
    assert "sign-flip p = " in out and "conditional on these runs; seed variance not included" in out
    assert "warning: seed variance not estimable (one seed)" in out


def test_median_rank_is_bootstrap_only(results, capsys):
    rc, out, _ = run(capsys, "--results-dir", str(results), "--task", "synthetic", "--methods", "pmrl", "clip",
                     "--metric", "t2va/MdR")
    assert rc == 0
    assert "(bootstrap)" in out and "MdR is not tested by the t-test" in out and "robustness" in out


def test_output_is_deterministic(results, capsys):
    argv = ("--results-dir", str(results), "--task", "synthetic", "--methods", "pmrl", "clip")
    assert run(capsys, *argv)[1] == run(capsys, *argv)[1]


@pytest.mark.parametrize("argv,message", [
    (["--methods", "pmrl", "other"], "different eval sets on synthetic/t2va: pmrl "),
    (["--methods", "pmrl", "gramm"], "unknown method 'gramm'; did you mean 'gram'?"),
    (["--methods", "pmrl", "gram", "--config", "gram=tau9"], "unknown configuration of gram 'tau9'"),
    (["--methods", "pmrl", "clip", "--metric", "t2va/R@l"], "unknown metric 't2va/R@l'; did you mean"),
    (["--methods", "pmrl", "clip", "--metric", "t2v/R@1"], "unknown metric 't2v/R@1'"),
    (["--methods", "pmrl", "pmrl"], "two different methods"),
])
def test_refusals_are_one_line_exit_2(results, capsys, argv, message):
    rc, out, err = run(capsys, "--results-dir", str(results), "--task", "synthetic", *argv)
    assert rc == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_unknown_task(results, capsys):
    rc, _, err = run(capsys, "--results-dir", str(results), "--task", "synthetc", "--methods", "pmrl", "gram")
    assert rc == 2 and "unknown task 'synthetc'; did you mean 'synthetic'?" in err


def test_eval_set_refusal_names_both_digests(results, capsys):
    _, _, err = run(capsys, "--results-dir", str(results), "--task", "synthetic", "--methods", "pmrl", "other")
    assert digest("synthetic:t2va/rank")[:8] in err and digest("other split")[:8] in err


def test_unverified_run_on_other_gallery_is_refused(tmp_path, capsys):
    for seed in range(3):
        write(tmp_path, "synthetic", "pmrl", seed, {"t2va/rank": simulated_ranks(50, 0.7, seed)})
        write(tmp_path, "synthetic", "gram", seed, {"t2va/rank": simulated_ranks(50, 0.4, seed)}, eval_set={},
              n_candidates=150)
    rc, out, err = run(capsys, "--results-dir", str(tmp_path), "--task", "synthetic", "--methods", "pmrl", "gram")
    assert rc == 2 and out == "" and "other gallery size" in err and len(err.strip().splitlines()) == 1


def test_one_query_is_refused(tmp_path, capsys):
    for seed in range(3):
        write(tmp_path, "synthetic", "pmrl", seed, {"t2va/rank": np.array([1])})
        write(tmp_path, "synthetic", "gram", seed, {"t2va/rank": np.array([3])})
    rc, _, err = run(capsys, "--results-dir", str(tmp_path), "--task", "synthetic", "--methods", "pmrl", "gram")
    assert rc == 2 and "fewer than 2 queries" in err


def test_several_configurations_take_the_rule_chosen_one_and_say_so(results, capsys):
    rc, out, err = run(capsys, "--results-dir", str(results), "--task", "synthetic", "--methods", "pmrl", "gram")
    assert rc == 0
    assert "note: gram: using its default configuration [aaaaaaaa] (the rule: tuned, else default)" in err
    assert "seeds 0 1 2 3 (4 used)" in out.splitlines()[2]
    rc, out, err = run(capsys, "--results-dir", str(results), "--task", "synthetic", "--methods", "pmrl", "gram",
                       "--config", "gram=bbbb")
    assert rc == 0 and "note:" not in err and "seeds 0 (1 used)" in out.splitlines()[2]


def test_tuned_configuration_is_the_entry_and_ad_hoc_ones_are_labelled(tmp_path, capsys):
    for seed in range(3):
        write(tmp_path, "synthetic", "pmrl", seed, {"t2va/rank": simulated_ranks(200, 0.3, seed)},
              params={"tau1": 0.05, "tau2": 0.1})
        write(tmp_path, "synthetic", "pmrl", seed, {"t2va/rank": simulated_ranks(200, 0.6, seed)},
              params={"tau1": 0.5, "tau2": 0.1}, config_hash="b" * 16)
        write(tmp_path, "synthetic", "gram", seed, {"t2va/rank": simulated_ranks(200, 0.5, seed)})
    rc, out, err = run(capsys, "--results-dir", str(tmp_path), "--task", "synthetic", "--methods", "pmrl", "gram")
    assert rc == 0 and "using its default configuration [aaaaaaaa]" in err and "ad hoc: tau1=0.5 [bbbbbbbb]" in err
    default_line = out.splitlines()[1]
    rc, out, err = run(capsys, "--results-dir", str(tmp_path), "--task", "synthetic", "--methods", "pmrl", "gram",
                       "--config", "pmrl=tau1=0.5")
    assert rc == 0 and "note" not in err
    assert float(out.splitlines()[1].split()[1]) > float(default_line.split()[1]) + 10  # quality 0.6 vs 0.3


def test_all_files_of_a_method_invalid(tmp_path, capsys):
    for seed in range(3):
        write(tmp_path, "synthetic", "gram", seed, {"t2va/rank": simulated_ranks(200, 0.5, seed)})
        bad = write(tmp_path, "synthetic", "pmrl", seed, {"t2va/rank": simulated_ranks(200, 0.5, seed)})
        bad.write_text("{", encoding="utf-8")
    rc, out, err = run(capsys, "--results-dir", str(tmp_path), "--task", "synthetic", "--methods", "pmrl", "gram")
    assert rc == 2 and "error: all 3 result file(s) of pmrl on synthetic failed validation" in err
