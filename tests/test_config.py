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
    assert noisy.retrieval == base.retrieval and noisy.train == base.train
    assert noisy.adapter_args["modalities"]["vision"] != base.adapter_args["modalities"]["vision"]


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
