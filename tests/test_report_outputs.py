"""Suites, configuration labels and kinds, output-path refusals, --format exports and `export` (issue 14)."""

import csv
import io
import json
from dataclasses import replace

import pandas as pd
import pytest
from records_factory import make_record, simulated_ranks, write

from pmrl_bench.cli import main
from pmrl_bench.results.labels import derive_label, known_defaults, label_from, regime_label
from pmrl_bench.results.record import write_result
from pmrl_bench.results.table import entry_of, load_runs, task_entities


@pytest.fixture(scope="module")
def suite_results(tmp_path_factory):
    """The three default-suite tasks (three methods, pmrl with an ad hoc config) and one exploratory task."""
    root = tmp_path_factory.mktemp("suite")
    for i, task in enumerate(("synthetic", "synthetic-noisy-anchor", "tuxpaint")):
        for seed in range(3):
            for method, q in (("pmrl", 0.3), ("clip", 0.5), ("gram", 0.6)):
                write(root, task, method, seed, {"t2va/rank": simulated_ranks(150, q, seed, i)},
                      params={"tau1": 0.05} if method == "pmrl" else {})
            write(root, task, "pmrl", seed, {"t2va/rank": simulated_ranks(150, 0.9, seed, i)},
                  params={"tau1": 0.5}, config_hash="b" * 16)
    for seed in range(3):  # the exploratory task reverses the order: it must not change the suite's ranking
        for method, q in (("pmrl", 0.9), ("clip", 0.5), ("gram", 0.2)):
            write(root, "explore", method, seed, {"t2va/rank": simulated_ranks(150, q, seed)})
    return root


def lb(*argv):
    return main(["leaderboard", *argv])


def test_labels_from_the_methods_defaults():
    assert known_defaults("pmrl")["tau1"] == 0.05 and known_defaults("twin") == {}
    assert derive_label("pmrl", {"tau1": 0.5, "tau2": 0.1, "score": "sigma1"}) == "tau1=0.5"
    assert derive_label("pmrl", {"tau1": 0.05, "tau2": 0.1}) == ""
    assert derive_label("clip", {"temperature": 0.03, "learn_temperature": False}) == (
        "temperature=0.03, learn_temperature=false")
    assert label_from({"b": 2, "z": "x"}, {"a": 1, "b": 1}) == "b=2, z=x"


def test_regime_label_from_the_evaluation_section():
    rerank = {"k": 50, "epochs": 20, "lr": 1e-3, "hidden": 256, "batch_size": 256, "negatives": 3}
    robust = {"modality": "vision", "levels": [0.5], "missing": True}
    assert regime_label({"rerank": None, "robustness": None}) == "" and regime_label(None) == ""
    assert regime_label({"rerank": {**rerank, "k": 20}, "robustness": None}) == "rerank@20"
    assert regime_label({"rerank": rerank, "robustness": robust}) == "rerank@50, robustness vision"
    assert regime_label({"rerank": None, "robustness": {**robust, "modality": "audio"}}) == "robustness audio"
    assert regime_label("garbage") == ""


def test_evaluation_regimes_name_their_rows(tmp_path):
    """Rows trained alike but evaluated under a re-ranker or a robustness sweep say so (not a hash alone); the
    entry is the plain row; a record without `regime` gets it from its config; a recorded one is kept."""
    plain = {"rerank": None, "robustness": None}
    regimes = {"c" * 16: {**plain, "rerank": {"k": 50}},
               "d" * 16: {**plain, "robustness": {"modality": "vision", "levels": [1.0], "missing": True}}}
    for seed in range(2):
        for digest, evaluation in [("a" * 16, plain), *regimes.items()]:
            rec = make_record("synthetic", "clip", seed, {"t2va/rank": simulated_ranks(60, 0.5, seed)},
                              config_hash=digest, params={})
            write_result(tmp_path, rec.model_copy(update={"config": {**rec.config, "evaluation": evaluation}}))
        rec = make_record("synthetic", "clip", seed, {"t2va/rank": simulated_ranks(60, 0.5, seed)},
                          config_hash="e" * 16, params={}, regime="rerank@7")  # as recorded, not re-derived
        write_result(tmp_path, rec)
    by_hash = {e.config_hash[0]: e for e in task_entities(load_runs(tmp_path).runs, "synthetic")}
    assert by_hash["a"].label == "clip" and by_hash["a"].config_text == "default"
    assert by_hash["c"].label == "clip (default, rerank@50)" and by_hash["c"].kind == "default"
    assert by_hash["d"].label == "clip (default, robustness vision)"
    assert by_hash["e"].label == "clip (default, rerank@7)" and by_hash["e"].regime == "rerank@7"
    assert entry_of([by_hash["c"], by_hash["a"], by_hash["d"]]) is by_hash["a"]
    tuned = replace(by_hash["c"], kind="tuned", config_label="temperature=0.1")
    assert entry_of([tuned, by_hash["a"]]) is by_hash["a"]  # the plain regime first, even over a tuned row
    assert entry_of([tuned, by_hash["d"]]) is tuned and tuned.config_text == "tuned, rerank@50: temperature=0.1"
    assert tuned.name_text == "temperature=0.1, rerank@50"


def test_kinds_and_the_entry_rule(suite_results):
    runs = load_runs(suite_results).runs
    entities = task_entities(runs, "synthetic")
    pmrl = {e.config_label: e for e in entities if e.method == "pmrl"}
    assert (pmrl[""].kind, pmrl["tau1=0.5"].kind) == ("default", "ad hoc")
    assert (pmrl[""].label, pmrl["tau1=0.5"].label) == ("pmrl", "pmrl (tau1=0.5)")
    assert entry_of(list(pmrl.values())) is pmrl[""]  # never the better ad hoc one, never a hash order
    tuned = replace(pmrl["tau1=0.5"], kind="tuned")
    assert entry_of([pmrl[""], tuned]) is tuned
    assert entry_of([pmrl["tau1=0.5"]]) is None


def test_a_tuned_variant_is_not_the_entry(tmp_path):
    """A tuning with a fixed setting changed (imagebind anchor=text) stays beside the method's own tuning,
    even with more seeds; alone, it is the entry."""
    chosen = {"temperature": 0.1, "learn_temperature": False}
    for seed in range(3):
        write(tmp_path, "synthetic", "imagebind", seed, {"t2va/rank": simulated_ranks(100, 0.4, seed)},
              params=dict(chosen), selection={"chosen": chosen}, config_hash="a" * 16)
    for seed in range(5):
        write(tmp_path, "synthetic", "imagebind", seed, {"t2va/rank": simulated_ranks(100, 0.6, seed)},
              params={"anchor": "text", **chosen}, selection={"chosen": chosen}, config_hash="b" * 16)
    entities = {e.config_hash[0]: e for e in task_entities(load_runs(tmp_path).runs, "synthetic")}
    assert entities["a"].kind == entities["b"].kind == "tuned"
    assert entry_of(list(entities.values())) is entities["a"]
    assert entities["a"].label == "imagebind"
    assert entities["b"].label == "imagebind (anchor=text, temperature=0.1, learn_temperature=false)"
    assert entry_of([entities["b"]]) is entities["b"]


def test_suite_ranking_ignores_other_tasks(suite_results, tmp_path):
    out = tmp_path / "lb.md"
    assert lb("--results-dir", str(suite_results), "--out", str(out)) == 0
    md = out.read_text(encoding="utf-8")
    across = md.split("## Across tasks\n", 1)[1].split("\n## ", 1)[0]
    assert "Suite `default` (synthetic, synthetic-noisy-anchor, tuxpaint, synthetic-qa, tuxpaint-mc, tuxpaint-qa, tuxpaint-category)" in across
    rows = [ln.split("|")[1].strip() for ln in across.splitlines() if ln.startswith("| ")][1:]
    assert rows == ["gram", "clip", "pmrl"]  # pmrl's entry is its default, not the ad hoc tau1=0.5
    assert "## explore (not in suite `default`)" in md
    assert md.index("## explore") > md.index("## Across tasks")
    assert "exact permutation p" in across and "p = 0\n" not in across


def test_suite_refusals(suite_results, tmp_path, capsys):
    suites = tmp_path / "suites"
    assert lb("--results-dir", str(suite_results), "--suite", "defualt", "--out", str(tmp_path / "x.md")) == 2
    assert "unknown suite 'defualt'; did you mean 'default'?" in capsys.readouterr().err
    only = tmp_path / "only"
    only.mkdir()
    write(only, "synthetic", "gram", 0, {"t2va/rank": simulated_ranks(50, 0.5, 0)})
    assert lb("--results-dir", str(only), "--suite", "default") == 2
    err = capsys.readouterr().err
    assert "suite default names task(s) without results in this folder: synthetic-noisy-anchor, tuxpaint" in err
    assert not (only / "LEADERBOARD.md").exists() and not suites.exists()


@pytest.mark.parametrize("out,message", [
    ("synthetic/clip/{record}", "are result records; write elsewhere"),
    ("synthetic/clip", "is a folder; give a file path"),
    ("board.json", "are result records; write elsewhere"),
])
def test_output_paths_that_would_hurt_records_are_refused(suite_results, capsys, out, message):
    record = next((suite_results / "synthetic" / "clip").glob("*.json"))
    before = record.read_bytes()
    target = suite_results / out.format(record=record.name)
    assert lb("--results-dir", str(suite_results), "--out", str(target), "--format", "json") == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert record.read_bytes() == before and not (suite_results / "board.json").exists()


def test_unknown_format(suite_results, capsys):
    assert lb("--results-dir", str(suite_results), "--format", "xlsx") == 2
    assert "unknown format 'xlsx'" in capsys.readouterr().err


def test_csv_json_latex_html_formats(suite_results, tmp_path, capsys):
    assert lb("--results-dir", str(suite_results), "--format", "csv") == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    row = frame[(frame.task == "synthetic") & (frame.method == "gram") & (frame.metric == "t2va/R@1")].iloc[0]
    ranks = [simulated_ranks(150, 0.6, s, 0) for s in range(3)]
    assert row.value == pytest.approx(sum(100 * (r <= 1).mean() for r in ranks) / 3, abs=1e-6)
    assert row.mark == "significantly worse" and row.kind == "default" and row.n_ok == 3
    assert row.ci_low < row.value < row.ci_high
    best = frame[(frame.task == "synthetic") & (frame.metric == "t2va/R@1") & (frame.mark == "best")]
    assert list(best.config_label) == ["tau1=0.5"] and list(best.kind) == ["ad hoc"]
    assert set(frame[frame.config_label == "tau1=0.5"].kind) == {"ad hoc"}
    out = tmp_path / "lb.json"
    assert lb("--results-dir", str(suite_results), "--format", "json", "--out", str(out)) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert [r["method"] for r in doc["ranking"]] == ["gram", "clip", "pmrl"] and doc["suite"] == "default"
    assert lb("--results-dir", str(suite_results), "--format", "latex") == 0
    tex = capsys.readouterr().out
    assert r"\begin{tabular}" in tex and r"\textbf{" in tex and "pmrl (tau1=0.5)" in tex
    assert lb("--results-dir", str(suite_results), "--format", "html") == 0
    html = capsys.readouterr().out
    assert html.startswith("<!DOCTYPE html>") and 'class="sortable"' in html and "http" not in html


def test_export_tidy_csv(suite_results, tmp_path):
    out = tmp_path / "runs.csv"
    assert main(["export", "--results-dir", str(suite_results), "--out", str(out)]) == 0
    frame = pd.read_csv(out, keep_default_na=False)
    assert list(frame.columns) == ["task", "method", "kind", "regime", "config_label", "config_hash", "seed", "status",
                                   "metric", "value", "eval_set", "path"]
    n_metrics = 6  # R@1, R@5, R@10, MdR, MnR, MRR of the factory
    assert len(frame) == (3 * 12 + 9) * n_metrics  # 3 suite tasks x 4 configs x 3 seeds, 9 exploratory runs
    one = frame[(frame.task == "synthetic") & (frame.config_label == "tau1=0.5") & (frame.seed == 1)
                & (frame.metric == "t2va/R@1")]
    assert len(one) == 1 and one.iloc[0].value == pytest.approx(100 * (simulated_ranks(150, 0.9, 1, 0) <= 1).mean())
    assert len(one.iloc[0].eval_set) == 64
    with open(out, newline="", encoding="utf-8") as fh:  # a spreadsheet reads it as plain CSV
        assert next(csv.reader(fh))[0] == "task"


def test_bold_below_an_untested_entry_is_said(tmp_path):
    for method, q, seeds in (("clip", 0.5, 3), ("gram", 0.4, 3), ("pmrl", 0.9, 2)):
        for seed in range(seeds):
            write(tmp_path, "synthetic", method, seed, {"t2va/rank": simulated_ranks(100, q, seed)})
    assert lb("--results-dir", str(tmp_path)) == 0
    text = (tmp_path / "LEADERBOARD.md").read_text(encoding="utf-8").split("## synthetic\n", 1)[1].split("\n## ")[0]
    rows = {ln.split("|")[1].strip(): ln for ln in text.splitlines() if ln.startswith("| ")}
    assert "**" in rows["clip"] and rows["pmrl"].rstrip(" |").endswith("‡")
    assert "Untested entries above the bold one (too few seeds to test): pmrl in t2va MRR, pmrl in t2va R@1." in text


def test_single_seed_ad_hoc_configurations_leave_the_compact_table_for_the_task_page(tmp_path):
    for seed in range(3):
        write(tmp_path, "synthetic", "gram", seed, {"t2va/rank": simulated_ranks(150, 0.6, seed)})
    write(tmp_path, "synthetic", "gram", 0, {"t2va/rank": simulated_ranks(150, 0.5, 0)},  # a selection run
          params={"temperature": 0.03}, config_hash="c" * 16)
    out = tmp_path / "LEADERBOARD.md"
    assert lb("--results-dir", str(tmp_path), "--out", str(out)) == 0
    compact = out.read_text()
    page = (tmp_path / "LEADERBOARD_tasks" / "synthetic.md").read_text()
    assert "temperature=0.03" not in compact.split("## synthetic", 1)[1].split("Cells:", 1)[0].split("\n|", 1)[1]
    assert "1 more ad hoc configuration(s) with fewer than 3 seeds" in compact
    assert "| gram (temperature=0.03)" in page and "| gram " in compact
