"""Runtime hygiene: --threads defaults to the allotted CPUs, --limit quick checks, progress lines, -v / -q."""

import json
import os

import pytest
import torch

from pmrl_bench import runtime
from pmrl_bench.cli import main
from pmrl_bench.data.features import ModalityFeatures, SplitFeatures, first_items
from pmrl_bench.runtime import Progress, allotted_cpus, apply_threads
from tests.helpers import SMALL_ARGS


@pytest.fixture
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_allotted_cpus_is_the_affinity_mask_capped_by_slurm(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)
    assert allotted_cpus({}) == 3  # not os.cpu_count()
    assert allotted_cpus({"SLURM_CPUS_PER_TASK": "2"}) == 2
    assert allotted_cpus({"SLURM_CPUS_PER_TASK": "16"}) == 3
    assert allotted_cpus({"SLURM_CPUS_PER_TASK": ""}) == 3


def test_threads_default_and_option(monkeypatch, keep_threads, tmp_path, capsys):
    monkeypatch.setattr(runtime, "allotted_cpus", lambda environ=None: 1)
    torch.set_num_threads(2)
    assert apply_threads(None) == 1 and torch.get_num_threads() == 1
    assert main(["run", "--method", "clip", "--threads", "2", "--limit", "70", *SMALL_ARGS,
                 "--results-dir", str(tmp_path)]) == 0
    assert torch.get_num_threads() == 2
    with pytest.raises(SystemExit):
        main(["run", "--method", "clip", "--threads", "0"])
    assert "--threads: 0 is not a positive integer" in capsys.readouterr().err


def test_first_items_keeps_every_row_of_the_first_items():
    text = ModalityFeatures(torch.arange(10.0).view(5, 2), torch.tensor([0, 0, 1, 2, 2]), ("a#0", "a#1", "b#0", "c#0", "c#1"))
    split = SplitFeatures("test", ("a", "b", "c"), {"text": text}, labels=torch.tensor([4, 5, 6]), groups=("g", "h", "i"))
    cut = first_items(split, 2)
    assert cut.item_ids == ("a", "b") and cut.modalities["text"].row_ids == ("a#0", "a#1", "b#0")
    assert cut.modalities["text"].values.tolist() == [[0, 1], [2, 3], [4, 5]]
    assert cut.labels.tolist() == [4, 5] and cut.groups == ("g", "h") and cut.info["limited_from"] == 3
    assert first_items(split, 3) is split


def test_limit_runs_a_marked_quick_check_that_never_replaces_the_full_run(tmp_path, capsys):
    assert main(["run", "--method", "clip", "--limit", "70", *SMALL_ARGS, "--results-dir", str(tmp_path)]) == 0
    (path,) = tmp_path.rglob("*.json")
    rec = json.loads(path.read_text())
    assert rec["limited"] is True and rec["config"]["limit"] == 70
    # SMALL_ARGS: 512 train, 128 val, 128 test items; one text query per item on synthetic
    assert rec["protocol"]["train"]["n_items"] == 70 and rec["protocol"]["train"]["limited_from"] == 512
    assert rec["protocol"]["test"]["n_items"] == 128 and rec["protocol"]["test"]["max_queries"] == 70
    assert rec["protocol"]["t2va"]["n_queries"] == 70 and rec["protocol"]["t2va"]["n_candidates"] == 128
    assert len(rec["per_query"]["t2va/rank"]) == 70 and max(rec["per_query"]["t2va/rank"]) <= 128
    assert rec["protocol"]["val"]["n_items"] == 128 and rec["protocol"]["val"]["n_queries"] == {"t2va": 70}
    capsys.readouterr()
    assert main(["run", "--method", "clip", *SMALL_ARGS, "--results-dir", str(tmp_path)]) == 0
    assert "skip:" not in capsys.readouterr().err  # the full run has its own run_id
    assert len(list(tmp_path.rglob("*.json"))) == 2


def test_progress_logs_periodic_lines_when_stderr_is_not_a_terminal(capsys):
    runtime.setup_logging(0)
    with Progress(10, "demo split", every_s=0.0) as bar:
        for _ in range(5):
            bar.update(2)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 6  # one per update and one at the end
    assert lines[0].startswith("demo split: 2/10 items (") and lines[-1].startswith("demo split: 10/10 items (")
    with Progress(10, "quiet", enabled=False, every_s=0.0) as bar:
        bar.update(10)
    runtime.setup_logging(-1)
    with Progress(10, "at -q", every_s=0.0) as bar:
        bar.update(10)
    assert capsys.readouterr().err == ""


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compile_option_scores_pmrl_compiled_and_says_so_in_the_record(monkeypatch, tmp_path):
    monkeypatch.setenv(runtime.COMPILE_ENV, "0")  # restored after the test: main sets it to 1
    monkeypatch.setattr(runtime, "_COMPILED", {})
    args = ["run", "--method", "pmrl", "--limit", "70", *SMALL_ARGS]
    assert main([*args, "--results-dir", str(tmp_path / "eager")]) == 0
    assert runtime._COMPILED == {} and not runtime.compile_requested()
    assert main([*args, "--compile", "--results-dir", str(tmp_path / "compiled")]) == 0
    assert os.environ[runtime.COMPILE_ENV] == "1" and len(runtime._COMPILED) == 1
    eager, compiled = (json.loads(next((tmp_path / d).rglob("*.json")).read_text()) for d in ("eager", "compiled"))
    assert eager["env"]["compile"] is False and compiled["env"]["compile"] is True
    assert compiled["run_id"] == eager["run_id"]  # the same run: compiling changes float rounding only
    assert compiled["metrics"] == eager["metrics"]  # sigma_1 scores at most one float32 ulp apart: the same ranks
