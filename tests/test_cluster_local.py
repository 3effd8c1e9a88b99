"""Jobs through submitit's local executor: a sweep end to end, checkpoint-and-requeue, failures (no SLURM)."""

import os
import re
import signal
import time
from pathlib import Path

import torch
import yaml

import pmrl_bench.runner as runner
from pmrl_bench.cli import main
from pmrl_bench.cluster.executors import Profile, SweepTask, make_executor, run_task, task_spec
from pmrl_bench.cluster.sweep import load_sweep, plan_sweep, run_statuses
from pmrl_bench.results.record import read_result
from pmrl_bench.runner import RunRequest, checkpoint_path, execute, plan_run
from pmrl_bench.runtime import COMPILE_ENV
from tests.helpers import SMALL

# Long enough (~0.1 s per epoch on an idle 2-core machine) that a signal sent right after the epoch-1
# checkpoint lands in the middle of training.
PREEMPTIBLE = [("data.sizes", {"train": 2000, "val": 256, "test": 256}), ("epochs", 10), ("batch_size", 64),
               ("head_hidden", 128), ("embed_dim", 16)]


def wait_until(condition, timeout_s: float, what: str, poll_s: float = 0.05):
    """Poll `condition` until it returns something truthy; fail the test with `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def reference_run(tmp_path: Path, req: RunRequest):
    """The same run uninterrupted, in this process, with the job's single torch thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return execute(req.model_copy(update={"results_dir": str(tmp_path / "reference")}))
    finally:
        torch.set_num_threads(threads)


def test_local_executor_sweep_runs_in_background_processes(tmp_path, capsys):
    prof = tmp_path / "laptop.yaml"
    prof.write_text(yaml.safe_dump({"cpus_per_task": 1, "time_min": 5, "array_parallelism": 2}))
    sweep_file = tmp_path / "two.yaml"
    sweep_file.write_text(yaml.safe_dump({
        "methods": ["clip"], "tasks": ["synthetic"], "seeds": [0, 1], "set": dict(SMALL), "executor": "local",
        "results_dir": str(tmp_path / "results"), "logs_dir": str(tmp_path / "logs")}))
    assert main(["sweep", str(sweep_file), "--profile", str(prof)]) == 0
    out = capsys.readouterr().out
    assert "submitted 2 runs in 2 tasks" in out and "watch: python -m pmrl_bench status" in out
    sweep = load_sweep(str(sweep_file))
    planned = plan_sweep(sweep)
    wait_until(lambda: all(s.state == "done" for s in run_statuses(sweep, planned)), 90, "both runs done", 0.5)
    for p in planned:
        rec = read_result(p.path)
        assert rec.env["sweep"]["name"] == "two" and "submit_commit" in rec.env["sweep"]
        assert rec.metrics == reference_run(tmp_path, p.request).metrics
    assert main(["sweep", str(sweep_file), "--profile", str(prof)]) == 0
    assert "nothing to submit" in capsys.readouterr().out


def test_a_preempted_local_job_requeues_and_ends_bit_identical(tmp_path):
    req = RunRequest(method="clip", seed=3, overrides=PREEMPTIBLE, results_dir=str(tmp_path / "results"))
    planned = plan_run(req)
    ckpt = checkpoint_path(req.results_dir, planned.run_id)
    ex = make_executor("local", Profile(time_min=5), tmp_path / "logs", "pmrl-preempt")
    job = ex.submit(SweepTask(), task_spec("preempt", [planned], Profile(), None))
    log = tmp_path / "logs" / str(job.job_id) / f"{job.job_id}_0_log.err"

    wait_until(ckpt.is_file, 90, "the first epoch checkpoint")
    pid = int(re.search(r" pid (\d+):", log.read_text()).group(1))
    os.kill(pid, signal.SIGUSR2)  # what Slurm sends before a time limit or at preemption
    summaries = job.result()

    assert summaries == [{"run_id": planned.run_id, "status": "ok", "error": None}]
    assert "Requeued job" in log.with_suffix(".out").read_text()
    text = log.read_text()
    resumed = re.search(r"resumed from checkpoint at epoch (\d+)", text)
    assert resumed and int(resumed.group(1)) >= 1, text[-2000:]
    record = read_result(planned.path)
    assert record.protocol["resumed_from_epoch"] >= 1
    reference = reference_run(tmp_path, req)
    assert record.metrics == reference.metrics and record.per_query == reference.per_query
    assert not ckpt.exists() and not list(ckpt.parent.glob("*"))


def test_a_failing_run_writes_a_failed_record_and_the_task_goes_on(tmp_path, monkeypatch):
    reqs = [RunRequest(method="clip", seed=s, overrides=SMALL, results_dir=str(tmp_path)) for s in (0, 1)]
    planned = [plan_run(r) for r in reqs]
    ckpt = checkpoint_path(tmp_path, planned[0].run_id)
    real_execute = runner.execute

    def crash_after_a_checkpoint(req, *a, **k):
        if req.seed == 0:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            ckpt.write_bytes(b"partial state")
            raise OSError("feature file vanished\ntraceback noise")
        return real_execute(req, *a, **k)

    monkeypatch.setattr(runner, "execute", crash_after_a_checkpoint)
    summaries = run_task(task_spec("fails", planned, Profile(), "abc123"))
    assert [s["status"] for s in summaries] == ["failed", "ok"]
    failed = read_result(planned[0].path)
    assert failed.status == "failed" and failed.error == "OSError: feature file vanished"
    assert failed.env["sweep"] == {"name": "fails", "job_id": failed.env["sweep"]["job_id"], "restart_count": 0,
                                   "submit_commit": "abc123"}
    assert not ckpt.exists()
    assert read_result(planned[1].path).status == "ok"
    assert run_task(task_spec("fails", planned[1:], Profile(), None))[0]["skipped"]  # done: not run again


def test_compile_travels_in_the_job_spec(monkeypatch, tmp_path):
    planned = [plan_run(RunRequest(method="clip", seed=0, overrides=SMALL, results_dir=str(tmp_path)))]
    monkeypatch.setenv(COMPILE_ENV, "0")  # restored after the test
    assert task_spec("s", planned, Profile(), None)["compile"] is False
    monkeypatch.setenv(COMPILE_ENV, "1")
    spec = task_spec("s", planned, Profile(), None)
    assert spec["compile"] is True
    monkeypatch.setenv(COMPILE_ENV, "0")  # a cluster that passes no environment on: the spec still says so
    run_task(spec)
    assert os.environ[COMPILE_ENV] == "1" and read_result(planned[0].path).env["compile"] is True
