"""Config resolution, --set overrides and run identity."""

import pytest

from pmrl_bench.config import config_hash, parse_overrides, resolve_config, run_id
from pmrl_bench.errors import BenchError
from pmrl_bench.task import load_task, parse_task_file, task_files


def test_every_task_file_validates():
    for name, path in task_files().items():
        spec = parse_task_file(path)
        assert spec.name == name
        assert spec.primary_metric.split("/")[0] in spec.prefixes


def test_task_file_with_unknown_key_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((task_files()["synthetic"]).read_text() + "epoch: 3\n")
    with pytest.raises(BenchError, match=r"bad.yaml: epoch: Extra inputs"):
        parse_task_file(bad)


def test_include_inherits_and_overrides():
    base, noisy = load_task("synthetic"), load_task("synthetic-noisy-anchor")
    assert noisy.retrieval[-1] == base.retrieval[0] and noisy.train == base.train and noisy.kind == base.kind
    assert noisy.adapter_args["modalities"]["vision"] != base.adapter_args["modalities"]["vision"]


def test_include_merges_nested_sections_deeply_and_lists_replace(tmp_path):
    (tmp_path / "child.yaml").write_text(
        f"include: {task_files()['synthetic']}\nname: child\ntrain: {{epochs: 5}}\n"
        "adapter_args: {modalities: {text: {dim: 32}}}\nmetrics: [R@1, MnR]\n")
    base, child = load_task("synthetic"), parse_task_file(tmp_path / "child.yaml")
    assert child.train.epochs == 5 and base.train.epochs == 20
    assert child.train.batch_size == base.train.batch_size == 256 and child.train.dropout == base.train.dropout
    text = child.adapter_args["modalities"]["text"]
    assert text["dim"] == 32 and text["noise"] == 0.5  # the parent's other keys of a nested mapping stay
    assert child.adapter_args["modalities"]["audio"] == base.adapter_args["modalities"]["audio"]
    assert child.metrics == ["R@1", "MnR"]  # a list replaces the parent's


@pytest.mark.parametrize(("line", "message"), [
    ("metrics: [R@1, R@l]", r"metrics: .*unknown metric 'R@l'; did you mean .*'R@1'"),
    ("metrics: [R@1, acc]", r"metric 'acc' needs 'correct' outcomes"),
    ("primary_metric: t2va/R@50", r"'R@50' is not among metrics"),
    ("primary_metric: t2va/acc", r"'acc' is not among metrics"),
])
def test_unknown_or_misplaced_metric_fails_when_the_task_is_loaded(tmp_path, line, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(task_files()["synthetic"].read_text() + line + "\n")
    with pytest.raises(BenchError, match=message):
        parse_task_file(bad)


def test_a_metric_typo_stops_run_before_training(tmp_path, monkeypatch, capsys):
    import pmrl_bench.task as task_module
    from pmrl_bench.cli import main

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "typo.yaml").write_text(task_files()["synthetic"].read_text().replace("MnR]", "MnR, MRR10]"))
    monkeypatch.setattr(task_module, "TASKS_DIR", tasks)
    task_module.load_task.cache_clear()
    try:
        assert main(["run", "--method", "clip", "--task", "typo", "--results-dir", str(tmp_path / "r")]) == 2
    finally:
        task_module.load_task.cache_clear()
    err = capsys.readouterr().err
    assert "unknown metric 'MRR10'; did you mean 'MRR'" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_overrides_resolve_short_and_dotted_keys():
    cfg = resolve_config("synthetic", "pmrl", parse_overrides(["tau1=0.5", "train.epochs=3", "data.seed=7"]))
    assert cfg["method_params"]["tau1"] == 0.5
    assert cfg["train"]["epochs"] == 3
    assert cfg["data"]["seed"] == 7
    assert isinstance(resolve_config("synthetic", "pmrl", [("tau1", 1)])["method_params"]["tau1"], float)


def test_identity_ignores_location_but_not_outcome_keys():
    base = resolve_config("synthetic", "pmrl")
    moved = resolve_config("synthetic", "pmrl", [("data_dir", "/elsewhere")])
    assert config_hash(base) == config_hash(moved)
    assert run_id(base, 0) == run_id(moved, 0)
    assert run_id(base, 0) != run_id(base, 1)
    changed = resolve_config("synthetic", "pmrl", [("tau2", 0.2)])
    assert config_hash(changed) != config_hash(base)


def test_unknown_and_ambiguous_keys():
    with pytest.raises(BenchError, match="did you mean 'train.epochs'|did you mean 'epochs'"):
        resolve_config("synthetic", "pmrl", [("epoch", 3)])
    with pytest.raises(BenchError, match="unknown method"):
        resolve_config("synthetic", "pmrll")
