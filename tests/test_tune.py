"""Issue 10 part 4: search spaces, the choice on validation only, final runs with `selection`, the tune sweep."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import pmrl_bench.registry as registry
from pmrl_bench.cli import main
from pmrl_bench.cluster.sweep import load_sweep, plan_sweep
from pmrl_bench.errors import BenchError
from pmrl_bench.plan import plan_run
from pmrl_bench.results.record import RunResult, read_result, write_result
from pmrl_bench.tune import MAX_CONFIGS, configurations, make_plan, search_space, space_hash
from tests.helpers import SMALL


@pytest.mark.parametrize("method", ["pmrl", "clip", "imagebind", "gram"])
def test_every_method_declares_a_space_within_the_budget(method):
    space = search_space(method)
    assert 1 < len(configurations(space)) <= MAX_CONFIGS
    assert set(space) <= set(registry.get_method(method).defaults)


def test_declared_spaces_are_the_suggested_ones():
    assert search_space("pmrl") == {"tau1": [0.2, 0.5, 1.0], "tau2": [0.03, 0.05], "score": ["sigma1", "cosine_mean"]}
    assert search_space("gram") == {"temperature": [0.07, 0.1, 0.2], "label_smoothing": [0.0, 0.1],
                                    "score": ["neg_volume", "cosine_mean"]}
    for method in ("pmrl", "gram"):  # the sign-invariant methods tune their primary score among those offered
        cls = registry.get_method(method)
        assert cls.sign_invariant and set(search_space(method)["score"]) == set(cls.scores)
        assert len(configurations(search_space(method))) == MAX_CONFIGS
    assert configurations({"a": [1, 2], "b": [3]}) == [{"a": 1, "b": 3}, {"a": 2, "b": 3}]
    assert configurations({}) == [{}]


@pytest.mark.parametrize(("space", "expected"), [
    ({"temperature": [0.01 * k for k in range(1, 14)]}, "13 configurations; at most 12"),
    ({"tau9": [1, 2]}, "parameter in the search space"),
    ({"temperature": []}, "non-empty list"),
])
def test_bad_search_space_is_one_line_exit_2(space, expected, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(registry.get_method("clip"), "search_space", space)
    assert main(["tune", "--method", "clip", "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err and not any(tmp_path.rglob("*.json"))


def test_tuned_parameter_and_select_last_are_refused_before_training(tmp_path):
    for extra, expected in ((["--set", "temperature=0.05"], "temperature is tuned"),
                            (["--set", "select=last"], "leave train.select at best_val")):
        res = subprocess.run([sys.executable, "-m", "pmrl_bench", "tune", "--method", "clip", "--results-dir",
                              str(tmp_path), *extra], capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and expected in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.rglob("*.json"))


def _fake_record(req, val_score: float, test_r1: float) -> None:
    planned = plan_run(req)
    write_result(Path(req.results_dir), RunResult(
        run_id=planned.run_id, config_hash=planned.config_hash, method=req.method, task="synthetic", seed=req.seed,
        status="ok", config=planned.config, metrics={"t2va/R@1": test_r1}, created_at="now",
        protocol={"select": {"val_score": val_score}}))


def test_the_choice_reads_validation_never_test(tmp_path):
    plan = make_plan("gram", "synthetic", list(SMALL), [0, 1], [0], str(tmp_path))
    assert plan.choose() is None  # nothing ran yet
    reqs = plan.selection_requests()
    assert len(reqs) == 24 and [r.seed for r in reqs[:2]] == [0, 1]
    # config index 4 has the best mean validation score; config 0 has by far the best test numbers
    for i, req in enumerate(reqs):
        cfg = i // 2
        _fake_record(req, val_score={4: 50.0, 5: 50.0}.get(cfg, 10.0) + (req.seed - 0.5 if cfg == 4 else 0.0),
                     test_r1=99.0 if cfg == 0 else 1.0)
    sel = plan.choose()
    # ties (index 4 vs 5 at 50.0): the first
    assert sel["chosen"] == {"temperature": 0.1, "label_smoothing": 0.0, "score": "neg_volume"}
    assert sel["val_score"] == 50.0 and sel["n_configs"] == 12 and sel["seeds"] == [0, 1]
    assert "evaluation_only" not in sel  # plain tuning: the selection (and so the run ids) as before
    assert sel["space_hash"] == space_hash(search_space("gram"))
    final = plan.final_requests(sel)
    hand = plan_run(reqs[8].model_copy(update={"seed": 0}))  # the same settings chosen by hand
    assert plan_run(final[0]).run_id != hand.run_id and final[0].selection == sel


def test_tune_end_to_end_with_a_small_space(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(registry.get_method("clip"), "search_space", {"temperature": [0.05, 0.2]})
    args = ["tune", "--method", "clip", "--results-dir", str(tmp_path), "--seeds", "3",
            *[f"--set={k}={v}".replace("'", "") for k, v in SMALL], "--set", "epochs=2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 configurations x 1 selection seed(s) x 2 epochs = 4 epochs, then 1 final seed(s)" in out
    records = [read_result(p) for p in sorted(tmp_path.rglob("*.json"))]
    finals = [r for r in records if r.selection]
    assert len(records) == 3 and len(finals) == 1 and finals[0].seed == 3
    picked = max((r for r in records if not r.selection), key=lambda r: r.protocol["select"]["val_score"])
    assert finals[0].selection["chosen"] == {"temperature": picked.config["method_params"]["temperature"]}
    assert finals[0].config_label == picked.config_label and "temperature=" in picked.config_label
    assert main(args) == 0 and "skip:" in capsys.readouterr().err  # selection runs are not redone
    # the re-ranker only changes evaluation: tuning with it reuses the plain selection runs, same winner
    assert main([*args, "--set", "rerank=true", "--set", "rerank.epochs=1", "--set", "rerank.k=5"]) == 0
    assert capsys.readouterr().err.count("skip:") == 2
    records = [read_result(p) for p in sorted(tmp_path.rglob("*.json"))]
    (final,) = [r for r in records if r.selection and r.selection.get("evaluation_only")]
    assert len(records) == 4 and final.selection["chosen"] == finals[0].selection["chosen"]
    assert final.selection["evaluation_only"] == ["rerank", "rerank.epochs", "rerank.k"]
    assert "t2va.rerank/R@1" in final.metrics and final.regime == "rerank@5"
    assert final.metrics["t2va/R@1"] == finals[0].metrics["t2va/R@1"]  # trained alike: same first stage


def test_empty_space_runs_the_defaults_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(registry.get_method("clip"), "search_space", {})
    plan = make_plan("clip", "synthetic", list(SMALL), [0], [0], str(tmp_path))
    (req,) = plan.selection_requests()
    _fake_record(req, 5.0, 5.0)
    sel = plan.choose()
    assert sel["chosen"] == {} and sel["n_configs"] == 1 and "defaults" in sel["rule"]
    assert "empty search space" in plan.cost_line()


def test_tune_sweep_plans_selection_then_finals(tmp_path, capsys):
    body = {"methods": ["gram"], "tasks": ["synthetic"], "seeds": [0, 1], "set": dict(SMALL), "executor": "debug",
            "results_dir": str(tmp_path / "results"), "logs_dir": str(tmp_path / "logs"), "tune": True,
            "defaults": ["gram"]}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    sweep = load_sweep(str(path))
    first = plan_sweep(sweep)
    # 12 selection runs (seed 0) + the default row's seed 1 (its seed 0 is the selection run of the defaults)
    assert len(first) == 13 and not any(p.request.selection for p in first)
    assert main(["sweep", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "tune gram on synthetic: 12 configurations x 1 selection seed(s) x 3 epochs = 36 epochs, then" in out
    assert "1 tuning cell(s) wait for their selection runs" in out
    for i, p in enumerate(first):
        if p.request.seed == 0:
            _fake_record(p.request, float(i), 0.0)
    second = plan_sweep(sweep)
    finals = [p for p in second if p.request.selection]
    assert len(second) == 15 and [p.request.seed for p in finals] == [0, 1]
    assert finals[0].request.selection["chosen"] == {"temperature": 0.2, "label_smoothing": 0.1, "score": "cosine_mean"}
    # the same sweep with evaluation-only settings reuses those selection runs: only its final seeds and
    # default rows are new, and they carry the re-ranker and the robustness sweep
    body["set"] = {**dict(SMALL), "rerank": True, "robustness.modality": "vision", "robustness.levels": [[0.5]]}
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    regime = plan_sweep(load_sweep(str(path)))
    shared = {p.run_id for p in first} & {p.run_id for p in regime}
    assert len(shared) == 12 and all(p.done for p in regime if p.run_id in shared)
    new = [p for p in regime if p.run_id not in shared]
    assert sorted((p.request.seed, bool(p.request.selection)) for p in new) == [(0, False), (0, True), (1, False),
                                                                                 (1, True)]
    for p in new:
        assert p.config["evaluation"]["rerank"]["k"] == 50 and p.config["evaluation"]["robustness"]["levels"] == [0.5]
    sel = next(p for p in new if p.request.selection).request.selection
    assert sel["chosen"] == finals[0].request.selection["chosen"] and sel["val_score"] == 11.0
    assert sel["evaluation_only"] == ["rerank", "robustness.modality", "robustness.levels"]
    assert sel["rule"].startswith(finals[0].request.selection["rule"]) and "evaluation-only" in sel["rule"]
    assert main(["sweep", str(path), "--dry-run"]) == 0
    assert "selection runs shared with the plain task: rerank, robustness.modality" in capsys.readouterr().out


def test_a_rerank_depth_the_final_runs_cannot_use_is_refused_before_selection_trains(tmp_path, capsys):
    args = ["tune", "--method", "clip", "--results-dir", str(tmp_path), *[f"--set={k}={v}".replace("'", "")
                                                                           for k, v in SMALL]]
    assert main([*args, "--set", "rerank.k=129"]) == 2  # SMALL's test split has 128 candidates
    err = capsys.readouterr().err.strip()
    assert err == "error: --set evaluation.rerank.k=129: the test split has only 128 candidates; choose k between 1 " \
                  "and 128" and not any(tmp_path.rglob("*.json"))


def test_training_overrides_stay_in_the_selection_runs(tmp_path):
    plain = make_plan("clip", "synthetic", [*SMALL, ("epochs", 2)], [0], [0], str(tmp_path))
    both = make_plan("clip", "synthetic", [*SMALL, ("epochs", 2), ("evaluation.rerank.k", 5), ("rerank.epochs", 1)],
                     [0], [0], str(tmp_path))
    assert both.eval_keys == ("evaluation.rerank.k", "rerank.epochs") and plain.eval_keys == ()
    assert [plan_run(r).run_id for r in both.selection_requests()] == [
        plan_run(r).run_id for r in plain.selection_requests()]
    other = make_plan("clip", "synthetic", [*SMALL, ("epochs", 3), ("rerank", True)], [0], [0], str(tmp_path))
    assert not {plan_run(r).run_id for r in other.selection_requests()} & {
        plan_run(r).run_id for r in plain.selection_requests()}  # a training override still counts


def test_make_plan_refuses_no_seeds(tmp_path):
    with pytest.raises(BenchError, match="at least one selection seed"):
        make_plan("clip", "synthetic", [], [], [0], str(tmp_path))


def test_debug_tune_sweep_runs_both_stages_in_one_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(registry.get_method("gram"), "search_space", {"temperature": [0.05, 0.2]})
    body = {"methods": ["gram"], "tasks": ["synthetic"], "seeds": [1], "set": {**dict(SMALL), "epochs": 2},
            "executor": "debug", "results_dir": str(tmp_path / "results"), "logs_dir": str(tmp_path / "logs"),
            "tune": True}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    assert main(["sweep", str(path)]) == 0
    assert "selection done: submitting the final seeds" in capsys.readouterr().out
    records = [read_result(p) for p in sorted((tmp_path / "results").rglob("*.json"))]
    (final,) = [r for r in records if r.selection]
    assert len(records) == 3 and final.seed == 1 and final.selection["n_configs"] == 2
    assert main(["sweep", str(path)]) == 0
    assert "nothing to submit" in capsys.readouterr().out  # skip-done: both stages are done
