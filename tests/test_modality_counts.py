"""`Method.modality_counts` holds for every tuple a task gives a method, and planning refuses a task that breaks it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import pmrl_bench
from pmrl_bench.config import resolve_config
from pmrl_bench.errors import BenchError
from pmrl_bench.registry import (
    _NOT_LITERAL,
    _literal_attrs,
    counts_text,
    get_method,
    method_modality_counts,
    scanned,
)
from pmrl_bench.task import EvaluationConfig, load_task, scored_tuples


def test_scored_tuples_of_the_builtin_tasks_by_hand():
    noisy = load_task("synthetic-noisy-anchor")
    assert scored_tuples(noisy, noisy.evaluation) == {
        "training": ["text", "vision", "audio"],
        "t2v": ["text", "vision"],
        "t2a": ["text", "audio"],
        "t2va": ["text", "vision", "audio"],
    }
    synthetic = load_task("synthetic")
    missing = EvaluationConfig.model_validate({"robustness": {"modality": "audio"}})
    assert scored_tuples(synthetic, missing) == {
        "training": ["text", "vision", "audio"],
        "t2va": ["text", "vision", "audio"],
        "t2va without audio": ["text", "vision"],
    }
    noise_only = EvaluationConfig.model_validate({"robustness": {"modality": "audio", "missing": False}})
    assert list(scored_tuples(synthetic, noise_only)) == ["training", "t2va"]
    mc, qa = load_task("tuxpaint-mc"), load_task("synthetic-qa")  # multiple choice scores; open-ended trains a head
    assert scored_tuples(mc, mc.evaluation) == {"training": ["text", "vision", "audio"], "mc": ["text", "vision", "audio"]}
    assert scored_tuples(qa, qa.evaluation) == {"training": ["text", "vision", "audio"]}
    category = load_task("tuxpaint-category")  # zero-shot: input + prompts; the linear probe scores nothing
    assert scored_tuples(category, category.evaluation) == {
        "training": ["text", "vision", "audio"], "v_zs": ["vision", "text"], "a_zs": ["audio", "text"]}

def test_counts_in_words():
    assert [counts_text(c) for c in [(3, 3), (2, 4), (2, None)]] == ["3", "2 to 4", "2 or more"]


def test_counts_read_without_import_equal_the_classes():
    """The planning check reads `modality_counts` from the syntax tree; it must agree with the imported class."""
    for name in scanned("method"):
        assert method_modality_counts(name) == get_method(name).modality_counts, name
    assert method_modality_counts("triangle") == method_modality_counts("symile") == (3, 3)
    assert method_modality_counts("clip") == (2, None)


def test_attributes_a_syntax_tree_cannot_tell_are_marked(tmp_path: Path):
    src = tmp_path / "m.py"
    src.write_text(
        "@register_method('a')\nclass A(Method):\n    modality_counts = (2, 3)\n\n"
        "@register_method('b')\nclass B(Triangle):\n    defaults = {}\n\n"
        "@register_method('c')\nclass C(toolkit.Method):\n    modality_counts = tuple([2, 2])\n"
    )
    assert _literal_attrs(src, "a") == ({"modality_counts": (2, 3)}, True)
    assert _literal_attrs(src, "b") == ({"defaults": {}}, False)  # inherits from Triangle: needs the import
    assert _literal_attrs(src, "c") == ({"modality_counts": _NOT_LITERAL}, True)
    assert _literal_attrs(src, "d") is None


@pytest.mark.parametrize("method", ["triangle", "symile"])
def test_three_modality_methods_refuse_two_modality_directions_at_planning(method):
    with pytest.raises(BenchError) as err:
        resolve_config("synthetic-noisy-anchor", method)
    message = str(err.value)
    assert "t2v (text+vision: 2), t2a (text+audio: 2)" in message and "t2va" not in message
    assert "(3, 3)" in message and "choose another method" in message


def test_robustness_missing_and_warm_start_objectives_are_checked():
    resolve_config("synthetic", "triangle")  # every tuple has 3 modalities
    resolve_config("synthetic-noisy-anchor", "clip")  # clip scores 2 or more
    with pytest.raises(BenchError, match=r"t2va without audio \(text\+vision: 2\); turn evaluation.robustness"):
        resolve_config("synthetic", "triangle", [("evaluation.robustness.modality", "audio")])
    resolve_config("synthetic", "triangle", [("evaluation.robustness", {"modality": "audio", "missing": False})])
    with pytest.raises(BenchError, match="warm-start objective 'triangle' scores tuples of 3"):
        resolve_config("synthetic-noisy-anchor", "clip", [("warm_start.objective", "triangle"), ("epochs", 3),
                                                         ("warm_start.epochs", 1)])


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pmrl_bench", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def test_run_sweep_and_evaluate_refuse_before_training_and_write_nothing(tmp_path: Path):
    results = tmp_path / "results"
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"methods": ["triangle"], "tasks": ["synthetic", "synthetic-noisy-anchor"],
                                     "seeds": [0], "executor": "local", "results_dir": str(results),
                                     "logs_dir": str(tmp_path / "logs")}))
    root = Path(pmrl_bench.__file__).parent.parent
    for args in (["run", "--method", "triangle", "--task", "synthetic-noisy-anchor", "--results-dir", str(results)],
                 ["sweep", str(sweep), "--dry-run"]):
        res = _cli(root, *args)
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "t2v (text+vision: 2)" in lines[0]
    with pytest.raises(BenchError, match=r"modality_counts \(3, 3\)"):
        pmrl_bench.evaluate("triangle", "synthetic-noisy-anchor", results_dir=results)
    assert not results.exists() and not (tmp_path / "logs").exists()
