"""The Python API: the README example runs; `import pmrl_bench` stays light; tables have the documented shape."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import pmrl_bench
from pmrl_bench.errors import BenchError
from pmrl_bench.paths import ROOT


def readme_example() -> str:
    """The Python block after the `api-example` marker of the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.search(r"<!-- api-example -->\n```python\n(.*?)```", text, re.S).group(1)


def test_readme_example_runs_and_returns_records_frame_and_tables(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    records, frame, tables = namespace["records"], namespace["frame"], namespace["tables"]
    assert [(r.method, r.seed, r.status) for r in records] == [("clip", 0, "ok"), ("clip", 1, "ok")]
    assert len(list((tmp_path / "my-results").rglob("*.json"))) == 4
    # one row per run x metric, the values of the records
    assert len(frame) == 4 * len(records[0].metrics)
    assert set(frame.columns) >= {"task", "method", "config_label", "regime", "config_hash", "seed", "metric", "value"}
    assert set(frame.regime) == {""}  # plain retrieval
    row = frame[(frame.method == "clip") & (frame.seed == 1) & (frame.metric == "t2va/R@1")]
    assert row.value.item() == records[1].metrics["t2va/R@1"]
    synthetic = tables["synthetic"]
    assert sorted(synthetic.method) == ["clip", "triangle"] and list(synthetic.n_ok) == [2, 2]
    clip = synthetic[synthetic.method == "clip"]["t2va/R@1"].item()
    assert clip == pytest.approx(sum(r.metrics["t2va/R@1"] for r in records) / 2)
    assert list(tables["ranking"].columns) == ["method", "mean_rank"]


def test_evaluate_without_results_dir_writes_nothing_and_bad_input_is_a_bench_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (record,) = pmrl_bench.evaluate("gram", overrides={"epochs": 1, "max_steps": 2})
    assert record.status == "ok" and record.method == "gram" and list(tmp_path.iterdir()) == []
    with pytest.raises(BenchError, match="did you mean 'gram'"):
        pmrl_bench.evaluate("gramm")
    with pytest.raises(BenchError, match="not a folder"):
        pmrl_bench.load_results(tmp_path / "nowhere")


def test_import_is_light_and_evaluate_stays_the_function():
    code = ("import sys, pmrl_bench; heavy = [m for m in ('torch', 'pandas', 'numpy') if m in sys.modules]; "
            "from pmrl_bench.evaluation.retrieval import evaluate; print(heavy, callable(pmrl_bench.evaluate), "
            "pmrl_bench.evaluate.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.split() == ["[]", "True", "pmrl_bench.api"]
