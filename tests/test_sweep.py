"""Sweep and profile files, grid expansion, run identity, submission planning and `status` (no scheduler)."""

import json
from pathlib import Path

import pytest
import yaml

import pmrl_bench.cluster.executors as cluster
import pmrl_bench.cluster.sweep as sweep_mod
import pmrl_bench.runner as runner
from pmrl_bench.cli import main
from pmrl_bench.cluster.executors import (
    Profile,
    executor_parameters,
    load_profile,
    make_executor,
    submit_tasks,
)
from pmrl_bench.cluster.sweep import load_sweep, plan_sweep, read_state
from pmrl_bench.config import parse_overrides
from pmrl_bench.errors import BenchError
from pmrl_bench.paths import ROOT
from pmrl_bench.results.record import read_result, write_result
from pmrl_bench.runner import RunRequest, plan_run
from tests.helpers import SMALL, skip_without

SMALL_SET = dict(SMALL)


def write_sweep(tmp_path: Path, name: str = "tiny", **fields) -> Path:
    """A sweep file in tmp_path whose results and logs also stay in tmp_path."""
    body = {"methods": ["clip"], "tasks": ["synthetic"], "seeds": [0], "set": dict(SMALL_SET), "executor": "debug",
            "results_dir": str(tmp_path / "results"), "logs_dir": str(tmp_path / "logs"), **fields}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def test_grid_is_the_product_of_lists_times_zip_rows(tmp_path):
    path = write_sweep(tmp_path, methods=["clip", "gram"], seeds=[0, 1],
                       set={"lr": [0.001, 0.002], "head_hidden": 32}, zip={"epochs": [2, 3], "batch_size": [32, 64]})
    reqs = sweep_mod.expand(load_sweep(str(path)))
    assert len(reqs) == 2 * 2 * 2 * 2
    combos = {tuple((k, v) for k, v in r.overrides if k in ("lr", "epochs", "batch_size")) for r in reqs}
    assert combos == {(("lr", lr), ("epochs", e), ("batch_size", b))
                      for lr in (0.001, 0.002) for e, b in ((2, 32), (3, 64))}
    assert [(r.method, r.seed) for r in reqs[:3]] == [("clip", 0), ("clip", 1), ("clip", 0)]


def test_sweep_runs_have_exactly_the_identity_of_run(tmp_path):
    path = write_sweep(tmp_path, seeds=[0, 3], set={"epochs": 2, "lr": 0.002, "data.sizes.train": 256})
    planned = plan_sweep(load_sweep(str(path)))
    cli_style = parse_overrides(["epochs=2", "lr=0.002", "data.sizes.train=256"])
    for p in planned:
        direct = plan_run(RunRequest(method="clip", seed=p.request.seed, overrides=cli_style))
        assert (p.run_id, p.config_hash, p.path.relative_to(tmp_path / "results")) == (
            direct.run_id, direct.config_hash, direct.path.relative_to(Path("results")))


@pytest.mark.parametrize("fields, message", [
    ({"metods": ["clip"]}, "unknown sweep key 'metods'; did you mean 'methods'?"),
    ({"methods": ["clipp"]}, "methods: unknown method 'clipp'; did you mean 'clip'?"),
    ({"tasks": ["synthetik"]}, "tasks: unknown task 'synthetik'; did you mean 'synthetic'"),
    ({"seeds": []}, "seeds: List should have at least 1 item"),
    ({"methods": ["clip", "clip"]}, "methods: listed twice: ['clip']"),
    ({"set": {"lr": []}}, "set.lr: empty list, the grid would have no runs"),
    ({"set": {"lr": 0.1}, "zip": {"lr": [0.1]}}, "set.lr: also given under zip"),
    ({"zip": {"lr": [0.1, 0.2], "weight_decay": [0.0]}}, "zip: lists of different lengths (lr: 2, weight_decay: 1)"),
    ({"set": {"learning_rate": 0.1}}, "unknown --set key 'learning_rate'"),
    ({"runs_per_task": 0}, "runs_per_task: Input should be greater than or equal to 1"),
    ({"executor": "kubernetes"}, "executor: Input should be 'slurm', 'local' or 'debug'"),
])
def test_a_bad_sweep_file_fails_in_one_line_with_file_and_key(tmp_path, capsys, fields, message):
    path = write_sweep(tmp_path, **fields)
    assert main(["sweep", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and message in err, err


def test_sweep_file_that_is_not_a_mapping_or_not_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- clip\n- gram\n")
    with pytest.raises(BenchError, match="must be a mapping"):
        load_sweep(str(bad))
    bad.write_text("methods: [clip\n")
    with pytest.raises(BenchError, match="not valid YAML"):
        load_sweep(str(bad))
    with pytest.raises(BenchError, match="unknown sweep file 'nope'"):
        load_sweep("nope")


@pytest.mark.parametrize("body, message", [
    ({"partiton": "gpu"}, "unknown profile key 'partiton'; did you mean 'partition'?"),
    ({"time_min": 1, "signal_delay_s": 90}, "signal_delay_s (90) must be below time_min*60 (60)"),
    ({"cpus_per_task": "many"}, "cpus_per_task: Input should be a valid integer"),
    ({"setup": "module load cuda"}, "setup: Input should be a valid list"),
])
def test_a_bad_profile_fails_in_one_line_with_file_and_key(tmp_path, capsys, body, message):
    prof = tmp_path / "prof.yaml"
    prof.write_text(yaml.safe_dump(body))
    assert main(["sweep", str(write_sweep(tmp_path)), "--profile", str(prof), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(prof) in err and message in err, err


def test_unknown_profile_name_suggests_the_shipped_ones():
    with pytest.raises(BenchError, match="unknown profile 'locl'; did you mean 'local'"):
        load_profile("locl")


def test_shipped_profiles_and_sweeps_are_valid():
    for path in sorted((ROOT / "slurm" / "profiles").glob("*.yaml")):
        load_profile(str(path))
    for path in sorted((ROOT / "slurm" / "sweeps").glob("*.yaml")):
        sweep = load_sweep(str(path))
        assert plan_sweep(sweep)
    leaderboard = load_sweep("synthetic")
    assert len(plan_sweep(leaderboard)) == 4 * 2 * 5


def test_profile_maps_onto_submitit_parameters_and_sbatch_lines():
    profile = load_profile("example")
    params = executor_parameters(profile, "slurm", "pmrl-x")
    assert params == {
        "name": "pmrl-x", "timeout_min": 240, "cpus_per_task": 8, "mem_gb": 32, "gpus_per_node": 1,
        "slurm_partition": "gpu", "slurm_account": "my_project", "slurm_qos": "normal",
        "slurm_constraint": "a100", "slurm_array_parallelism": 64, "slurm_signal_delay_s": 120,
        "slurm_additional_parameters": {"requeue": True, "mail-type": "FAIL"},
        "slurm_setup": ["module load cuda/12.1", "source $HOME/venvs/pmrl/bin/activate"],
    }
    assert executor_parameters(profile, "local", "pmrl-x") == {
        "name": "pmrl-x", "timeout_min": 240, "cpus_per_task": 8, "mem_gb": 32, "gpus_per_node": 1}
    skip_without("srun")  # submitit writes `srun` into the script and looks it up first
    script = make_executor("slurm", profile, Path("/logs/x"), "pmrl-x")._executor._make_submission_file_text("CMD", "u")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --account=my_project", "#SBATCH --qos=normal",
                 "#SBATCH --constraint=a100", "#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --mem=32GB", "#SBATCH --time=240", "#SBATCH --signal=USR2@120", "#SBATCH --requeue",
                 "#SBATCH --mail-type=FAIL", "#SBATCH --job-name=pmrl-x", "#SBATCH --output=/logs/x/%j/%j_0_log.out",
                 "module load cuda/12.1"):
        assert line in script.splitlines(), line


class FakeExecutor:
    """Records map_array calls instead of submitting."""

    def __init__(self):
        self.calls = []

    def map_array(self, fn, specs):
        self.calls.append(list(specs))
        return [type("Job", (), {"job_id": f"{len(self.calls)}_{i}"})() for i in range(len(specs))]


def test_arrays_split_at_the_clusters_max_array_size(monkeypatch):
    fake = FakeExecutor()
    monkeypatch.setattr(cluster, "make_executor", lambda *a: fake)
    monkeypatch.setattr(cluster, "max_array_size", lambda: 3)
    specs = [{"runs": [i], "run_ids": [str(i)]} for i in range(7)]
    submitted = submit_tasks("slurm", Profile(), Path("/tmp/x"), "n", specs)
    assert [len(c) for c in fake.calls] == [3, 3, 1]
    assert [s["run_ids"] for _, s in submitted] == [[str(i)] for i in range(7)]


def test_local_executor_packs_tasks_into_array_parallelism_processes(monkeypatch):
    seen = {}

    def fake_make(executor, profile, folder, name):
        seen["time_min"] = profile.time_min
        return fake

    fake = FakeExecutor()
    monkeypatch.setattr(cluster, "make_executor", fake_make)
    specs = [{"runs": [i], "run_ids": [str(i)], "sweep": "s"} for i in range(5)]
    submitted = submit_tasks("local", Profile(array_parallelism=2, time_min=10), Path("/tmp/x"), "n", specs)
    assert [s["run_ids"] for _, s in submitted] == [["0", "1", "2"], ["3", "4"]]
    assert seen["time_min"] == 30


def test_max_array_size_comes_from_scontrol(monkeypatch):
    class Done:
        stdout = "KillWait                = 5 sec\nMaxArraySize            = 40001\nMaxJobCount = 10000\n"

    monkeypatch.setattr(cluster.subprocess, "run", lambda *a, **k: Done())
    assert cluster.max_array_size() == 40001

    def fail(*a, **k):
        raise FileNotFoundError("scontrol")

    monkeypatch.setattr(cluster.subprocess, "run", fail)
    assert cluster.max_array_size() == 1001


def test_scheduler_rows_of_pending_array_tasks_are_expanded(monkeypatch):
    class Done:
        returncode, stderr = 0, ""
        stdout = "12_[2-4,7%2]|PENDING\n12_0|COMPLETED\n12_1|CANCELLED by 0\n13|RUNNING\n"

    monkeypatch.setattr(cluster.subprocess, "run", lambda *a, **k: Done())
    assert cluster.job_states("slurm", ["12_0", "13"]) == {
        "12_0": "COMPLETED", "12_1": "CANCELLED", "12_2": "PENDING", "12_3": "PENDING", "12_4": "PENDING",
        "12_7": "PENDING", "13": "RUNNING"}


def test_an_unreachable_scheduler_is_an_error_not_a_failed_run(tmp_path, monkeypatch, capsys):
    class Refused:
        returncode, stdout = 1, ""
        stderr = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"

    monkeypatch.setattr(cluster.subprocess, "run", lambda *a, **k: Refused())
    with pytest.raises(BenchError, match="cannot ask SLURM about jobs 12: sacct: slurm_load_jobs error: Unable"):
        cluster.job_states("slurm", ["12_0"])
    path = write_sweep(tmp_path, executor="slurm")
    sweep = load_sweep(str(path))
    sweep_mod.write_state(sweep, {plan_sweep(sweep)[0].run_id: {"job_id": "12_0", "executor": "slurm"}})
    assert main(["sweep", str(path)]) == 2
    assert "is SLURM_CONF set and slurmctld up?" in capsys.readouterr().err


def test_dry_run_prints_the_plan_and_submits_nothing(tmp_path, capsys):
    path = write_sweep(tmp_path, seeds=[0, 1], runs_per_task=2)
    assert main(["sweep", str(path), "--dry-run", "--executor", "slurm", "--profile", "example"]) == 0
    out = capsys.readouterr().out
    assert "2 runs: 2 to submit" in out and "dry run: would submit 1 tasks; nothing submitted" in out
    assert "partition gpu" in out and "8 cpus" in out and "time 240 min" in out
    assert out.count("submit missing") == 2
    assert not (tmp_path / "logs").exists() and not (tmp_path / "results").exists()


def test_debug_sweep_skips_done_runs_and_retries_failed_and_new_ones(tmp_path, capsys, monkeypatch):
    path = write_sweep(tmp_path, seeds=[0, 1])
    real_execute = runner.execute

    def seed1_breaks(req, *a, **k):
        if req.seed == 1:
            raise RuntimeError("disk on fire\nsecond line")
        return real_execute(req, *a, **k)

    monkeypatch.setattr(runner, "execute", seed1_breaks)
    assert main(["sweep", str(path)]) == 0
    assert "ran 2 runs in this process: 2 runs: 1 done, 1 failed" in capsys.readouterr().out
    assert main(["status", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2 runs: 1 done, 1 failed, 0 running, 0 pending, 0 missing" in out
    assert "RuntimeError: disk on fire" in out and "second line" not in out
    sweep = load_sweep(str(path))
    first = {p.request.seed: p for p in plan_sweep(sweep)}
    done_before = first[0].path.read_text()
    failed = read_result(first[1].path)
    assert failed.status == "failed" and failed.env["sweep"]["name"] == "tiny"
    assert not list((tmp_path / "results").glob(".checkpoints/*"))

    monkeypatch.setattr(runner, "execute", real_execute)
    path.write_text(path.read_text().replace("- 1\n", "- 1\n- 2\n"))
    assert main(["sweep", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3 runs: 2 to submit (1 failed before, 1 new), 1 done (skipped)" in out
    assert first[0].path.read_text() == done_before  # a done run is never touched
    assert read_result(first[1].path).status == "ok"  # the failed record was replaced by the retry
    assert set(read_state(sweep)) == {p.run_id for p in plan_sweep(load_sweep(str(path)))}
    assert main(["sweep", str(path)]) == 0
    assert "nothing to submit" in capsys.readouterr().out


def test_status_reads_files_first_then_the_scheduler_and_resubmission_leaves_queued_runs(tmp_path, capsys,
                                                                                        monkeypatch):
    path = write_sweep(tmp_path, seeds=[0, 1, 2, 3, 4, 5, 6], executor="slurm")
    sweep = load_sweep(str(path))
    planned = plan_sweep(sweep)
    for p in (planned[4], planned[5]):  # failed before; run 4 is being retried by job 6_0
        write_result(sweep.results_dir, cluster._failed_record(p, "ValueError: first try failed", {}))
    jobs = {0: "5_0", 1: "5_1", 2: "5_2", 4: "6_0", 6: "7"}
    state = {planned[i].run_id: {"job_id": j, "executor": "slurm", "submitted_at": "t", "submit_commit": None}
             for i, j in jobs.items()}
    sweep_mod.write_state(sweep, state)
    log = sweep.folder / "5_2" / "5_2_0_log.err"
    log.parent.mkdir(parents=True)
    log.write_text("Traceback ...\nsubmitit ERROR\nMemoryError: out of memory\n")
    scheduler = {"5_0": "RUNNING", "5_1": "PENDING", "5_2": "OUT_OF_MEMORY", "6_0": "PENDING"}  # 7: purged
    monkeypatch.setattr(sweep_mod, "job_states", lambda ex, ids: scheduler)
    assert main(["status", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines[:7]] == ["running", "pending", "failed", "missing", "pending", "failed",
                                                    "failed"]
    assert "job 5_2 ended OUT_OF_MEMORY without a result: MemoryError: out of memory" in lines[2]
    assert "job 6_0 PENDING (retry of a failed run)" in lines[4]
    assert "ValueError: first try failed" in lines[5]
    assert "job 7 ended gone from the scheduler without a result: no log" in lines[6]
    assert "7 runs: 0 done, 3 failed, 1 running, 2 pending, 1 missing" in lines[-1]

    assert main(["sweep", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 to submit (3 failed before, 1 new), 0 done (skipped), 3 queued or running (left alone)" in out


def test_state_file_survives_as_plain_json(tmp_path):
    sweep = load_sweep(str(write_sweep(tmp_path)))
    sweep_mod.write_state(sweep, {"abc": {"job_id": "1_0", "executor": "slurm"}})
    data = json.loads((sweep.folder / "state.json").read_text())
    assert data["runs"] == {"abc": {"job_id": "1_0", "executor": "slurm"}} and data["sweep"] == "tiny"
    assert [p.name for p in sweep.folder.iterdir()] == ["state.json"]


def test_a_run_that_failed_inside_a_still_running_task_is_failed_not_running(tmp_path, capsys, monkeypatch):
    path = write_sweep(tmp_path, seeds=[0, 1], executor="slurm", runs_per_task=2)
    sweep = load_sweep(str(path))
    planned = plan_sweep(sweep)
    write_result(sweep.results_dir, cluster._failed_record(planned[0], "ValueError: bad split", {"job_id": "5"}))
    sweep_mod.write_state(sweep, {p.run_id: {"job_id": "5", "executor": "slurm", "submitted_at": "t"} for p in planned})
    monkeypatch.setattr(sweep_mod, "job_states", lambda ex, ids: {"5": "RUNNING"})
    assert main(["status", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("failed") and "ValueError: bad split" in lines[0]
    assert lines[1].startswith("running")


def test_a_refused_submission_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    class FailedJobError(Exception):
        pass

    def refuse(*a, **k):
        raise FailedJobError("sbatch: error: invalid partition specified: nope\nsbatch: error: failed")

    monkeypatch.setattr(sweep_mod, "submit_tasks", refuse)
    assert main(["sweep", str(write_sweep(tmp_path, executor="slurm"))]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "submission failed after 0 of 1 tasks" in err, err


def test_debug_sweep_with_a_device_this_machine_lacks_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    prof = tmp_path / "gpu.yaml"
    prof.write_text(yaml.safe_dump({"device": "cuda"}))
    monkeypatch.setattr(runner.torch.cuda, "is_available", lambda: False)
    assert main(["sweep", str(write_sweep(tmp_path)), "--profile", str(prof)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no CUDA device" in err, err


def test_a_preempted_job_awaiting_its_requeue_is_pending_and_not_resubmitted(tmp_path, capsys, monkeypatch):
    path = write_sweep(tmp_path, seeds=[0], executor="slurm")
    sweep = load_sweep(str(path))
    (p,) = plan_sweep(sweep)
    sweep_mod.write_state(sweep, {p.run_id: {"job_id": "9_0", "executor": "slurm", "submitted_at": "t"}})
    monkeypatch.setattr(sweep_mod, "job_states", lambda ex, ids: {"9_0": "PREEMPTED"})
    assert main(["status", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("pending")
    assert main(["sweep", str(path), "--dry-run"]) == 0
    assert "1 queued or running (left alone)" in capsys.readouterr().out
