"""Runs end to end on the synthetic task: records, determinism, resume, failures, atomic writes."""

import json
import os

import pytest
import torch

import pmrl_bench.registry as registry
import pmrl_bench.train.trainer as trainer
from pmrl_bench.files import atomic_write_text
from pmrl_bench.results.record import RunResult, read_result
from pmrl_bench.runner import RunRequest, checkpoint_path, execute, plan_run
from tests.helpers import SMALL


def _req(tmp_path, method="clip", seed=0, **kw):
    return RunRequest(method=method, seed=seed, overrides=SMALL + kw.pop("extra", []), results_dir=str(tmp_path), **kw)


def test_record_has_the_fixed_fields(tmp_path):
    rec = execute(_req(tmp_path))
    assert rec.status == "ok"
    data = json.loads(plan_run(_req(tmp_path)).path.read_text())
    for key in ("schema_version", "run_id", "config_hash", "method", "task", "seed", "status", "config", "metrics",
                "per_query", "eval_set", "protocol", "timing", "env", "created_at"):
        assert key in data
    assert set(data["metrics"]) == {"t2va/R@1", "t2va/R@5", "t2va/R@10", "t2va/MdR", "t2va/MnR"}
    ranks = data["per_query"]["t2va/rank"]
    assert len(ranks) == 128 and min(ranks) >= 1 and max(ranks) <= 128
    assert data["protocol"]["t2va"]["n_candidates"] == 128
    assert "pessimistic" in data["protocol"]["tie_rule"]
    assert data["env"]["torch"] and "git_commit" in data["env"] and data["env"]["cpu"]
    assert data["timing"]["train_s"] > 0
    assert data["metrics"]["t2va/R@1"] > 100 / 128 * 3  # learned something: well above chance
    assert data["task_meta"] == {"version": 1, "primary_metric": "t2va/R@1", "metrics": ["R@1", "R@5", "R@10", "MdR", "MnR"],
                                 "prefixes": ["t2va"], "query_group": None,
                                 "directions": {"R@1": "higher", "R@5": "higher", "R@10": "higher", "MdR": "lower",
                                                "MnR": "lower"}}
    assert data["limited"] is False


def test_same_seed_gives_identical_metrics(tmp_path):
    a = execute(_req(tmp_path / "a"))
    b = execute(_req(tmp_path / "b"))
    c = execute(_req(tmp_path / "c", seed=1))
    assert a.per_query == b.per_query and a.metrics == b.metrics
    assert a.run_id == b.run_id != c.run_id


@pytest.mark.parametrize("dropout", [0.0, 0.1])  # dropout draws from torch's global generator, which must resume too
def test_resume_from_checkpoint_is_bit_identical(tmp_path, monkeypatch, dropout):
    full = execute(_req(tmp_path / "full", extra=[("epochs", 4), ("dropout", dropout)]))

    real_save = trainer._save_checkpoint

    def save_then_die(path, state):
        real_save(path, state)
        if state["epoch"] == 2:
            raise KeyboardInterrupt  # the job is killed right after the epoch-2 checkpoint

    monkeypatch.setattr(trainer, "_save_checkpoint", save_then_die)
    req = _req(tmp_path / "resumed", extra=[("epochs", 4), ("dropout", dropout)])
    with pytest.raises(KeyboardInterrupt):
        execute(req)
    ckpt = checkpoint_path(req.results_dir, plan_run(req).run_id)
    assert ckpt.is_file() and not plan_run(req).path.exists()
    monkeypatch.setattr(trainer, "_save_checkpoint", real_save)
    resumed = execute(req)
    assert resumed.protocol["resumed_from_epoch"] == 2
    assert resumed.per_query == full.per_query and resumed.metrics == full.metrics
    assert resumed.train_curve == full.train_curve and resumed.selected_epoch == full.selected_epoch
    assert not ckpt.exists()


def test_nan_loss_writes_failed_record_with_step(tmp_path, monkeypatch):
    cls = registry.get_method("clip")

    class Exploding(cls):
        calls = 0

        def loss(self, z):
            Exploding.calls += 1
            value = super().loss(z)
            return value * float("nan") if Exploding.calls >= 5 else value

    monkeypatch.setattr(registry, "get_method", lambda name: Exploding)
    rec = execute(_req(tmp_path))
    assert rec.status == "failed" and rec.failed_step == 5
    assert "non-finite loss" in rec.error
    on_disk = read_result(plan_run(_req(tmp_path)).path)
    assert on_disk.status == "failed" and on_disk.metrics == {}
    assert not list((tmp_path / ".checkpoints").glob("*.pt"))


def test_evaluation_error_is_recorded_not_raised(tmp_path, monkeypatch):
    cls = registry.get_method("clip")

    class Broken(cls):
        def similarity(self, query, candidates):
            raise ValueError("scores exploded\nsecond line")

    monkeypatch.setattr(registry, "get_method", lambda name: Broken)
    rec = execute(_req(tmp_path))
    assert rec.status == "failed" and rec.error == "ValueError: scores exploded"


def test_interrupted_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "x" / "r.json"
    atomic_write_text(target, '{"old": true}')

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, '{"new": true}')
    assert target.read_text() == '{"old": true}'
    assert [p.name for p in target.parent.iterdir()] == ["r.json"]


def test_record_model_refuses_unknown_fields():
    with pytest.raises(ValueError):
        RunResult.model_validate({"bogus": 1})


def test_features_are_float32_and_deterministic():
    from pmrl_bench.data.load import load_split
    from pmrl_bench.task import load_task

    spec = load_task("synthetic")
    cfg = {"data": dict(spec.adapter_args), "encoders": {}}
    a = load_split(spec, cfg, "test")
    b = load_split(spec, cfg, "test")
    assert a.item_ids == b.item_ids and len(a.item_ids) == 1000
    for m in spec.modalities:
        assert a.modalities[m].values.dtype == torch.float32
        assert torch.equal(a.modalities[m].values, b.modalities[m].values)
    train = load_split(spec, cfg, "train")
    assert not set(train.item_ids) & set(a.item_ids)


def test_error_during_a_preemption_is_not_recorded_as_a_failure(tmp_path, monkeypatch):
    from pmrl_bench import runner

    cls = registry.get_method("clip")

    class Preempted(cls):
        def similarity(self, query, candidates):
            runner.INTERRUPTED.set()  # as submitit's USR2 handler does before requeueing
            raise RuntimeError("scontrol requeue died with SIGTERM")

    monkeypatch.setattr(registry, "get_method", lambda name: Preempted)
    req = _req(tmp_path, extra=[("select", "last")])  # no validation passes: the first similarity call is the test's
    try:
        with pytest.raises(RuntimeError, match="scontrol"):
            execute(req)
    finally:
        runner.INTERRUPTED.clear()
    assert not plan_run(req).path.exists()
    assert checkpoint_path(req.results_dir, plan_run(req).run_id).is_file()  # the requeued job resumes from it
