"""A real sweep on a one-node SLURM cluster started by .ci/slurm-up (`eval "$(.ci/slurm-up)"` first).

Skipped with the up script's reason when no cluster answers, except in CI (CI=true), where that fails.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from pmrl_bench.cli import main
from pmrl_bench.cluster.sweep import load_sweep, plan_sweep, read_state, run_statuses
from pmrl_bench.paths import ROOT
from pmrl_bench.results.record import read_result
from pmrl_bench.runner import checkpoint_path
from tests.helpers import SMALL
from tests.test_cluster_local import PREEMPTIBLE, reference_run, wait_until

pytestmark = pytest.mark.slurm


def slurm_unavailable() -> str | None:
    """Why no SLURM cluster can be used here, or None when its node answers idle."""
    conf = os.environ.get("SLURM_CONF")
    state = os.environ.get("PMRL_SLURM_STATE") or (str(Path(conf).parent) if conf else None)
    if state and (Path(state) / "UNAVAILABLE").is_file():
        return (Path(state) / "UNAVAILABLE").read_text().strip()
    if not conf:
        return 'SLURM unavailable: SLURM_CONF is not set (start a cluster: eval "$(.ci/slurm-up)")'
    if not Path(conf).is_file():
        return f"SLURM unavailable: SLURM_CONF={conf} does not exist"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"SLURM unavailable: sinfo failed: {exc}"
    if out.stdout.strip() != "idle":
        return f"SLURM unavailable: node state {(out.stdout.strip() or out.stderr.strip())[:200]!r}, expected 'idle'"
    return None


@pytest.fixture(scope="module")
def slurm_profile(tmp_path_factory) -> Path:
    """A profile for the CI cluster; jobs import this checkout."""
    reason = slurm_unavailable()
    if reason:
        if os.environ.get("CI") == "true" or os.environ.get("PMRL_REQUIRE_SLURM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    path = tmp_path_factory.mktemp("profile") / "ci.yaml"
    path.write_text(yaml.safe_dump({"partition": "debug", "cpus_per_task": 1, "mem_gb": 1, "time_min": 10,
                                    "array_parallelism": 2, "signal_delay_s": 60,
                                    "setup": [f"export PYTHONPATH={ROOT}"]}))
    return path


def write_sweep(tmp_path: Path, name: str, **fields) -> Path:
    """A sweep file run by SLURM whose results and logs stay in tmp_path."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"methods": ["clip"], "tasks": ["synthetic"], "executor": "slurm",
                                    "results_dir": str(tmp_path / "results"), "logs_dir": str(tmp_path / "logs"),
                                    **fields}))
    return path


def settled(sweep, planned):
    """The statuses once no run is running or pending any more (else None)."""
    statuses = run_statuses(sweep, planned)
    return statuses if all(s.state in ("done", "failed", "missing") for s in statuses) else None


def sacct_states(job_id: str, *flags: str) -> list[str]:
    """`sacct -X -j <id>` rows as 'JobID State'."""
    out = subprocess.run(["sacct", "-X", "-n", "-P", *flags, "-o", "JobID,State", "-j", job_id],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return [line.replace("|", " ") for line in out.splitlines() if line.strip()]


def test_array_sweep_skips_done_runs_records_failures_and_retries_them(slurm_profile, tmp_path, capsys):
    small = {k: v for k, v in SMALL if k != "data.sizes"}
    path = write_sweep(tmp_path, "array", seeds=[0, 1], set=small,
                       zip={"data.sizes": [{"train": 512, "val": 128, "test": 128}, {"train": 512, "val": 128}]})  # no test split: fails
    assert main(["sweep", str(path), "--profile", str(slurm_profile)]) == 0
    out = capsys.readouterr().out
    assert "4 runs: 4 to submit" in out and "squeue -j" in out
    array = re.search(r"submitted 4 runs in 4 tasks: job (\d+)", out).group(1)

    assert main(["sweep", str(path), "--profile", str(slurm_profile)]) == 0  # while queued: nothing again
    assert "0 to submit (0 failed before, 0 new), 0 done (skipped), 4 queued or running" in capsys.readouterr().out

    sweep = load_sweep(str(path))
    planned = plan_sweep(sweep)
    statuses = wait_until(lambda: settled(sweep, planned), 90, "the array to finish", 1.0)
    by_state = {s.planned.run_id: s for s in statuses}
    assert sorted(s.state for s in statuses) == ["done", "done", "failed", "failed"]
    assert all("synthetic data has splits" in s.detail for s in statuses if s.state == "failed")
    completed = [f"{array}_{i} COMPLETED" for i in range(4)]
    wait_until(lambda: sorted(sacct_states(array)) == completed, 30, f"sacct to show {completed}", 0.5)
    assert main(["status", str(path)]) == 0
    assert "4 runs: 2 done, 2 failed, 0 running, 0 pending, 0 missing" in capsys.readouterr().out

    assert main(["sweep", str(path), "--profile", str(slurm_profile)]) == 0
    out = capsys.readouterr().out
    assert "4 runs: 2 to submit (2 failed before, 0 new), 2 done (skipped)" in out
    retry = re.search(r"submitted 2 runs in 2 tasks: job (\d+)", out).group(1)
    state = read_state(sweep)
    assert {rid for rid, e in state.items() if e["job_id"].startswith(f"{retry}_")} == {
        rid for rid, s in by_state.items() if s.state == "failed"}
    wait_until(lambda: settled(sweep, planned), 90, "the retry to finish", 1.0)
    for p in planned:
        record = read_result(p.path)
        job = record.env["sweep"]["job_id"]
        assert job.startswith(f"{retry}_" if by_state[p.run_id].state == "failed" else f"{array}_")
    assert not list((tmp_path / "results").glob(".checkpoints/*"))


def test_a_preempted_job_requeues_resumes_and_ends_bit_identical(slurm_profile, tmp_path, capsys):
    path = write_sweep(tmp_path, "preempt", seeds=[5], set=dict(PREEMPTIBLE))
    sweep = load_sweep(str(path))
    (planned,) = plan_sweep(sweep)
    assert main(["sweep", str(path), "--profile", str(slurm_profile)]) == 0
    capsys.readouterr()
    job_id = read_state(sweep)[planned.run_id]["job_id"]
    wait_until(checkpoint_path(sweep.results_dir, planned.run_id).is_file, 60, "the epoch-1 checkpoint")
    # preemption as SLURM signals it: TERM (submitit notes it), then USR2 (submitit checkpoints and requeues).
    # submitit's own SlurmJob._interrupt sends both back to back; when USR2 is handled first, the job counts
    # as timed out and the late TERM can kill its `scontrol requeue` (seen once in CI), so wait in between
    out = sweep.folder / job_id / f"{job_id}_0_log.out"
    subprocess.check_call(["scancel", job_id, "--signal", "TERM"])
    wait_until(lambda: out.is_file() and "Bypassing signal SIGTERM" in out.read_text(), 30, "submitit to note the SIGTERM", 0.2)
    subprocess.check_call(["scancel", job_id, "--signal", "USR2"])
    reference = reference_run(tmp_path, planned.request)

    wait_until(lambda: planned.path.is_file(), 90, "the requeued job's record", 0.5)
    record = read_result(planned.path)
    assert record.status == "ok" and record.metrics == reference.metrics and record.per_query == reference.per_query
    assert record.protocol["resumed_from_epoch"] >= 1 and record.env["sweep"]["restart_count"] == 1
    log = (sweep.folder / job_id / f"{job_id}_0_log.err").read_text()
    assert "restart count 1" in log and re.search(r"resumed from checkpoint at epoch [1-9]", log), log[-2000:]
    wait_until(lambda: "REQUEUED" in " ".join(sacct_states(job_id, "-D")), 30, "a REQUEUED row in sacct -D")
    assert not checkpoint_path(sweep.results_dir, planned.run_id).exists()
